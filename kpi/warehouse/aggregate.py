"""The aggregator: newly committed ingest events into the DuckDB warehouse, exactly once.

One run:
1. takes an exclusive file lock (two runs never overlap);
2. reads a safe high-water mark of `events.id` (on PostgreSQL under a brief SHARE lock, so that
   no transaction still in flight can later commit an id below it);
3. copies the catalogue (only versions that changed) and the implementers;
4. reads the accepted events with watermark < id <= high-water mark in id ranges, and appends
   each batch to the warehouse's events in one DuckDB transaction together with the days it
   touches and the new watermark: a crash at any point, then a re-run, counts nothing twice;
5. publishes the rollups of the touched days (see kpi/warehouse/published.py) and records the run in
   the ingest store's `aggregation_runs`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Engine, func, insert, select

from kpi.catalogue.labels import gendered_forms, normalise_label
from kpi.catalogue.versions import version_key
from kpi.settings import Settings
from kpi.store.db import (
    aggregation_runs,
    catalogue_versions,
    concept_collections,
    concept_labels,
    concept_successors,
    concepts,
    events,
    implementers,
    make_engine,
    outcome_counts,
)
from kpi.warehouse import models, private, published
from kpi.warehouse.models import registered, transaction

# Ids per read from the ingest store: bounded memory (a few hundred MB at most) and
# DuckDB transactions of a useful size.
BATCH_IDS = 200_000
# A backlog of at least this many ids is read by worker threads (see _batches).
PARALLEL_MIN_IDS = 1_000_000
READ_WORKERS = 4

Progress = Callable[[int, int], None]
"""Called as progress(ids_done, ids_total) after each batch."""


class AggregationBusy(RuntimeError):
    """Another aggregation holds the warehouse lock."""


@dataclass(frozen=True)
class RunSummary:
    """What one aggregation run did."""

    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    events_read: int
    days_recomputed: int
    previous_watermark: int
    watermark: int
    catalogue_copied: bool
    snapshot: int


@contextmanager
def aggregation_lock(settings: Settings) -> Iterator[None]:
    """Hold the warehouse's exclusive lock, or raise AggregationBusy at once."""
    settings.warehouse_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.warehouse_path / private.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AggregationBusy("an aggregation is already running") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def safe_high_water_mark(engine: Engine) -> int:
    """The highest events.id below which no transaction can still commit a row.

    SQLite serialises writers, so max(id) is safe. On PostgreSQL, sequence values are handed
    out before commit, so a row with a smaller id may still be in flight: SHARE mode waits for
    every open inserting transaction and blocks new ones for the instant of the max(id).
    """
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("lock table events in share mode")
        return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())


def run_aggregation(
    settings: Settings, engine: Engine | None = None, progress: Progress | None = None
) -> RunSummary:
    """Move newly committed events into the warehouse and publish the touched days."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    own_engine = engine is None
    if engine is None:
        engine = make_engine(settings)
    try:
        with aggregation_lock(settings):
            con = private.connect_private(settings)
            try:
                summary = _run(con, settings, engine, progress, started, t0)
            finally:
                con.close()
        with engine.begin() as conn:
            conn.execute(insert(aggregation_runs).values(
                started_at=summary.started_at, finished_at=summary.finished_at,
                duration_seconds=summary.duration_seconds, events_read=summary.events_read,
                days_recomputed=summary.days_recomputed, watermark=summary.watermark,
            ))
        return summary
    finally:
        if own_engine:
            engine.dispose()


def _run(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    engine: Engine,
    progress: Progress | None,
    started: datetime,
    t0: float,
) -> RunSummary:
    previous = int(private.get_meta(con, "watermark", "0") or 0)
    # The mark first, the catalogue after: an event replayed from quarantine below the mark
    # was replayed after its catalogue version was loaded, so the copy below includes it.
    high = safe_high_water_mark(engine)
    if high < previous:
        raise RuntimeError(
            f"the ingest store's events end at id {high}, but the warehouse in "
            f"{settings.warehouse_path} has read up to id {previous}: it was built from another "
            "store; move it away and run the aggregation again to rebuild it"
        )
    synced: dict[str, bool] = {}

    def sync() -> None:
        synced["catalogue"] = _sync_catalogue(con, engine)
        _sync_implementers(con, engine)
        _sync_quality(con, engine)

    read = 0
    # sync() runs before the first batch is appended, while the first batches are being read
    for upper, batch in _batches(settings, engine, previous, high, before=sync):
        # The batch, the days it touches and the watermark that covers it: one transaction.
        with transaction(con):
            for table in batch:
                _append_events(con, table)
            private.set_meta(con, "watermark", str(upper))
        read += sum(t.num_rows for t in batch)
        if progress:
            progress(upper - previous, high - previous)
    catalogue_copied = synced["catalogue"]

    private.assign_concept_keys(con)
    manifest = published.read_manifest(settings)
    # changed since last published, or never published (first run, crash before publishing)
    dims = [d for d in published.DIMENSIONS
            if private.unpublished(con, d) or d not in manifest.get("dimensions", {})]
    dirty = len(models.run(con, "private/dirty_days").fetchall())
    # Nothing new, nothing published: the snapshot id (a cache key) stays the same.
    snapshot = int(manifest.get("seq", 0))
    if dirty or dims:
        newest = models.run(con, "private/newest_catalogue_version").fetchone()
        snapshot = published.publish(
            con, settings, dims,
            extra={"watermark": high, "catalogue_version": newest[0] if newest else None},
        ).seq
        private.mark_published(con, *dims)
        con.execute("checkpoint")
    finished = datetime.now(UTC)
    return RunSummary(
        started_at=started, finished_at=finished,
        duration_seconds=round(time.perf_counter() - t0, 6), events_read=read,
        days_recomputed=dirty, previous_watermark=previous, watermark=high,
        catalogue_copied=catalogue_copied, snapshot=snapshot,
    )


# --------------------------------------------------------------------------------------------
# Events

def _batches(
    settings: Settings, engine: Engine, low: int, high: int,
    before: Callable[[], None] = lambda: None,
) -> Iterator[tuple[int, list[pa.Table]]]:
    """(upper id, Arrow tables) for each id range of the backlog, in id order.

    Rows never pass through Python one by one (see _fetch): SQLite joins each column's values
    into one string, PostgreSQL sends CSV (COPY ... TO STDOUT), and Arrow splits or parses them
    in C++. Both release the GIL, so a large backlog is read by threads (one per core, up to
    READ_WORKERS) while this thread appends to DuckDB; results still arrive in id order, so
    each commit's watermark stays exact.

    `before()` is called in this thread before the first batch is handed out, even when there
    is none; with a large backlog the first reads are already running meanwhile.
    """
    ranges = [(lo, min(lo + BATCH_IDS, high)) for lo in range(low, high, BATCH_IDS)]
    workers = min(os.cpu_count() or 1, READ_WORKERS)
    norm_cache: dict[str, str] = {}
    url = engine.url.render_as_string(hide_password=False)
    # (an in-memory SQLite database exists once per connection: read it on one)
    if high - low < PARALLEL_MIN_IDS or workers < 2 or ":memory:" in url:
        before()
        with engine.connect() as conn:
            for lo, hi in ranges:
                yield hi, _read_events(conn.connection.dbapi_connection, engine.dialect.name,
                                       lo, hi, norm_cache)
        return
    local = threading.local()
    opened: list[Any] = []
    lock = threading.Lock()

    def read(lo: int, hi: int) -> list[pa.Table]:
        raw = getattr(local, "raw", None)
        if raw is None:
            raw = local.raw = engine.raw_connection()
            with lock:
                opened.append(raw)
        return _read_events(raw.dbapi_connection, engine.dialect.name, lo, hi, norm_cache)

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="aggregate-read") as pool:
            todo = iter(ranges)
            pending: deque[tuple[int, Future]] = deque(
                (hi, pool.submit(read, lo, hi)) for lo, hi in islice(todo, 3 * workers))
            try:
                before()
                while pending:
                    hi, future = pending.popleft()
                    tables = future.result()
                    following = next(todo, None)
                    if following:
                        pending.append((following[1], pool.submit(read, *following)))
                    yield hi, tables
            finally:
                for _, future in pending:
                    future.cancel()
    finally:
        for raw in opened:
            raw.close()


# concept_used events are nearly all of the volume and need fewer columns: they are read by a
# narrower query, the other types by a full one.
_USED_COLUMNS = ("implementer_id", "day", "concept_uri", "esco_version", "language",
                 "context", "count")
_OTHER_COLUMNS = (*_USED_COLUMNS, "type", "label", "concept_type")
_NULLABLE = frozenset({"concept_uri", "label", "concept_type"})  # the rest are NOT NULL
_TYPES = {"implementer_id": pa.int32(), "day": pa.date32(), "count": pa.int64()}
_SEP = "\x1f"  # joins one column's values; a value holding it sends the batch to _fetch_rows


def _where(used: bool, placeholder: str) -> str:
    kind = "type = 'concept_used'" if used else "type <> 'concept_used'"
    return (f"from events where id > {placeholder} and id <= {placeholder} "
            f"and status = 'accepted' and {kind}")


def _sqlite_sql(columns: tuple[str, ...], used: bool) -> str:
    """One row: count(*), then per column all its values joined by _SEP.

    Rows never pass through Python one by one: SQLite joins each column in C, Arrow splits it
    (a third of the cost of fetching tuples). group_concat skips NULLs, so a nullable column
    is either prefixed ('x' || value, '' for NULL) or, for concept_used rows, whose URI is
    never NULL when accepted, counted: a batch that breaks the rule is read by _fetch_rows.
    """
    parts = ["count(*)"]
    if used:
        parts += [f"count({c})" for c in columns if c in _NULLABLE]
        parts += [f"group_concat({c}, char(31))" for c in columns]
    else:
        parts += [f"group_concat(coalesce('x' || {c}, ''), char(31))" if c in _NULLABLE
                  else f"group_concat({c}, char(31))" for c in columns]
    return f"select {', '.join(parts)} {_where(used, '?')}"


def _postgresql_sql(columns: tuple[str, ...], used: bool) -> str:
    # CSV: text quoted when needed, NULL an empty unquoted field, empty text "".
    cols = ", ".join("to_char(day, 'YYYY-MM-DD')" if c == "day" else c for c in columns)
    return f"copy (select {cols} {_where(used, '%s')}) to stdout (format csv)"


_SQL: dict[tuple[str, bool], str] = {}


def _sql(dialect: str, used: bool) -> str:
    sql = _SQL.get((dialect, used))
    if sql is None:
        columns = _USED_COLUMNS if used else _OTHER_COLUMNS
        build = _postgresql_sql if dialect == "postgresql" else _sqlite_sql
        sql = _SQL[(dialect, used)] = build(columns, used)
    return sql


def _fetch(dbapi: Any, dialect: str, used: bool, low: int, high: int) -> pa.Table | None:
    """Accepted events of one kind with low < id <= high as an Arrow table (None if none)."""
    columns = _USED_COLUMNS if used else _OTHER_COLUMNS
    cursor = dbapi.cursor()
    try:
        if dialect == "postgresql":
            out = bytearray()
            with cursor.copy(_sql(dialect, used), (low, high)) as copy:
                for block in copy:
                    out += block
            return _parse_csv(bytes(out), columns) if out else None
        if dialect != "sqlite":
            raise RuntimeError(f"the aggregator reads SQLite or PostgreSQL, not {dialect}")
        row = cursor.execute(_sql(dialect, used), (low, high)).fetchone()
    finally:
        cursor.close()
    n = row[0]
    if not n:
        return None
    counts, joined = (row[1:-len(columns)], row[-len(columns):]) if used else ((), row[1:])
    if any(c != n for c in counts):
        return _fetch_rows(dbapi, columns, used, low, high)
    data = {}
    for name, text in zip(columns, joined, strict=True):
        values = pc.split_pattern(pa.array([text], pa.large_string()), _SEP).flatten()
        if len(values) != n:  # a value held the separator
            return _fetch_rows(dbapi, columns, used, low, high)
        if name in _NULLABLE and not used:
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.large_string()),
                                pc.utf8_slice_codeunits(values, 1))
        data[name] = values.cast(_TYPES.get(name, pa.string()))
    return pa.table(data)


def _fetch_rows(dbapi: Any, columns: tuple[str, ...], used: bool, low: int,
                high: int) -> pa.Table:
    """The same as _fetch through plain rows: slower, for values the fast path cannot carry."""
    cursor = dbapi.cursor()
    try:
        cursor.execute(f"select {', '.join(columns)} {_where(used, '?')}", (low, high))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    cols = list(zip(*rows, strict=True))
    return pa.table({n: pa.array(c).cast(_TYPES.get(n, pa.string()))
                     for n, c in zip(columns, cols, strict=True)})


def _parse_csv(data: bytes, columns: tuple[str, ...]) -> pa.Table:
    return pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(column_names=list(columns), block_size=1 << 24),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={c: _TYPES.get(c, pa.string()) for c in columns},
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False),
    )


def _read_events(
    dbapi: Any, dialect: str, low: int, high: int, norm_cache: dict[str, str]
) -> list[pa.Table]:
    """Accepted events with low < id <= high, as Arrow tables (one per query that found any)."""
    tables = []
    used = _fetch(dbapi, dialect, True, low, high)
    if used is not None:
        tables.append(used)
    other = _fetch(dbapi, dialect, False, low, high)
    if other is not None:
        # Normalised once per distinct label, not per row.
        labels = other.column("label")
        distinct = pc.unique(labels)
        norms = []
        for label in distinct.to_pylist():
            norm = None
            if label is not None:
                norm = norm_cache.get(label)
                if norm is None:
                    norm = norm_cache[label] = normalise_label(label)
            norms.append(norm)
        positions = pc.index_in(labels, value_set=distinct)
        tables.append(other.append_column(
            "label_norm", pc.take(pa.array(norms, pa.string()), positions)))
    return tables


def _append_events(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> None:
    # concept_used events come with fewer columns (see _USED_COLUMNS)
    model = "private/append_events" if "type" in batch.column_names else (
        "private/append_used_events")
    with registered(con, event_batch=batch):
        models.run(con, model)
        models.run(con, "private/mark_batch_days_dirty")


# --------------------------------------------------------------------------------------------
# Catalogue, implementers, data quality


def _sync_catalogue(con: duckdb.DuckDBPyConnection, engine: Engine) -> bool:
    """Copy the catalogue versions that are new or changed; True when anything changed."""
    with engine.connect() as conn:
        source = {
            row.version: (str(row.loaded_at), row.source, int(row.concepts), int(row.labels),
                          row.languages or "")
            for row in conn.execute(select(catalogue_versions))
        }
    held = {
        row[0]: (row[1], row[2], int(row[3]), int(row[4]), row[5] or "")
        for row in models.run(con, "private/catalogue_versions").fetchall()
    }
    changed = [v for v in source if held.get(v) != source[v]]
    gone = [v for v in held if v not in source]
    if not changed and not gone:
        return False
    with transaction(con):
        for version in (*changed, *gone):
            models.run(con, "private/forget_catalogue_version", {"version": version})
        with engine.connect() as conn:
            for version in changed:
                _copy_version(con, conn, version)
        for version in changed:
            loaded_at, src, n_concepts, n_labels, languages = source[version]
            models.run(con, "private/add_catalogue_version", {
                "version": version, "loaded_at": loaded_at, "source": src,
                "concepts": n_concepts, "labels": n_labels, "languages": languages})
        for rank, version in enumerate(sorted(source, key=version_key), start=1):
            models.run(con, "private/rank_catalogue_version", {"version": version, "rank": rank})
        models.run(con, "private/concept_info")
        models.run(con, "private/fill_concept_types")
        private.mark_unpublished(con, *published.CATALOGUE_DIMENSIONS)
    return True


def _copy_version(con: duckdb.DuckDBPyConnection, conn: Connection, version: str) -> None:
    rows = conn.execute(
        select(concepts.c.uri, concepts.c.concept_type, concepts.c.status)
        .where(concepts.c.version == version)
    ).all()
    if rows:
        uri, ctype, status = (list(c) for c in zip(*rows, strict=True))
        version_concepts = pa.table({"uri": uri, "concept_type": ctype, "status": status})
        with registered(con, version_concepts=version_concepts):
            models.run(con, "private/copy_catalogue_concepts", {"version": version})
    _copy_members(con, conn, version)
    cache: dict[str, str] = {}
    result = conn.execution_options(yield_per=100_000).execute(
        select(concept_labels.c.uri, concept_labels.c.language, concept_labels.c.kind,
               concept_labels.c.label).where(concept_labels.c.version == version)
    )
    for part in result.partitions():
        uri, lang, kind, label = (list(c) for c in zip(*part, strict=True))
        norm = []
        for text in label:
            n = cache.get(text)
            if n is None:
                n = cache[text] = normalise_label(text)
            norm.append(n)
        version_labels = pa.table({
            "uri": uri, "language": lang, "kind": kind, "label": label, "label_norm": norm,
            "form_norms": pa.array([gendered_forms(text) for text in label],
                                   pa.list_(pa.string())),
        })
        with registered(con, version_labels=version_labels):
            models.run(con, "private/copy_catalogue_labels", {"version": version})


def _copy_members(con: duckdb.DuckDBPyConnection, conn: Connection, version: str) -> None:
    """Copy one version's collection members and the URIs it says it replaced."""
    members = conn.execute(
        select(concept_collections.c.collection, concept_collections.c.uri)
        .where(concept_collections.c.version == version)
    ).all()
    version_collections = pa.table({
        "collection": pa.array([m[0] for m in members], pa.string()),
        "uri": pa.array([m[1] for m in members], pa.string()),
    })
    replaced = conn.execute(
        select(concept_successors.c.uri, concept_successors.c.successor_uri,
               concept_successors.c.source)
        .where(concept_successors.c.version == version)
    ).all()
    version_successors = pa.table({
        "uri": pa.array([r[0] for r in replaced], pa.string()),
        "successor_uri": pa.array([r[1] for r in replaced], pa.string()),
        "source": pa.array([r[2] for r in replaced], pa.string()),
    })
    with registered(con, version_collections=version_collections,
                    version_successors=version_successors):
        models.run(con, "private/copy_catalogue_collections", {"version": version})
        models.run(con, "private/copy_catalogue_successors", {"version": version})


def _digest(rows: list[Any]) -> str:
    return hashlib.sha256(repr(sorted(map(tuple, rows), key=repr)).encode()).hexdigest()


def _sync_implementers(con: duckdb.DuckDBPyConnection, engine: Engine) -> bool:
    """Copy the implementers; True when they changed."""
    with engine.connect() as conn:
        rows = conn.execute(select(implementers.c.id, implementers.c.name,
                                   implementers.c.country, implementers.c.sector)).all()
    digest = _digest(rows)
    if private.get_meta(con, "implementers_hash") == digest:
        return False
    store_implementers = pa.table({
        "id": pa.array([r.id for r in rows], pa.int32()),
        "name": pa.array([r.name for r in rows], pa.string()),
        "country": pa.array([r.country for r in rows], pa.string()),
        "sector": pa.array([r.sector for r in rows], pa.string()),
    })
    with transaction(con), registered(con, store_implementers=store_implementers):
        models.run(con, "private/replace_implementers")
        private.set_meta(con, "implementers_hash", digest)
        private.mark_unpublished(con, "implementers")
    return True


def _sync_quality(con: duckdb.DuckDBPyConnection, engine: Engine) -> bool:
    """Re-read the (small, mutable) outcome counters and the still-quarantined events; True
    when they changed. Data quality reports rejected, quarantined and flagged events (counted,
    but with a problem such as esco_version_mismatch)."""
    with engine.connect() as conn:
        counted = conn.execute(
            select(outcome_counts.c.received_on, outcome_counts.c.implementer_id,
                   outcome_counts.c.outcome, outcome_counts.c.reason, outcome_counts.c.events)
            .where(outcome_counts.c.outcome.in_(("rejected", "quarantined", "flagged")))
        ).all()
        waiting = conn.execute(
            select(events.c.received_on, events.c.implementer_id,
                   events.c.quarantine_reason, func.count())
            .where(events.c.status == "quarantined")
            .group_by(events.c.received_on, events.c.implementer_id,
                      events.c.quarantine_reason)
        ).all()
    digest = _digest([*counted, ("waiting",), *waiting])
    if private.get_meta(con, "quality_hash") == digest:
        return False

    def table(rows: list[Any], names: tuple[str, ...], types: tuple[pa.DataType, ...]):
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        return pa.table({n: pa.array(list(c), t) for n, c, t in zip(names, cols, types,
                                                                    strict=True)})

    outcome_counters = table(
        counted, ("day", "implementer_id", "outcome", "reason", "events"),
        (pa.date32(), pa.int32(), pa.string(), pa.string(), pa.int64()))
    still_waiting = table(
        waiting, ("day", "implementer_id", "reason", "n"),
        (pa.date32(), pa.int32(), pa.string(), pa.int64()))
    with transaction(con), registered(con, outcome_counters=outcome_counters,
                                      still_waiting=still_waiting):
        models.run(con, "private/quality_daily")
        private.set_meta(con, "quality_hash", digest)
        private.mark_unpublished(con, "quality_daily")
    return True
