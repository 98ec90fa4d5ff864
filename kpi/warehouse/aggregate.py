"""The aggregator: newly committed ingest events into the DuckDB warehouse, exactly once.

One run:
1. takes an exclusive file lock (two runs never overlap);
2. reads a safe high-water mark of `events.id` (on PostgreSQL under a brief SHARE lock, so that
   no transaction still in flight can later commit an id below it);
3. copies the catalogue (only versions that changed) and the implementers;
4. reads the accepted events with watermark < id <= high-water mark in id ranges, and appends
   them to the warehouse's events (a few ranges at a time, in id order) in one DuckDB
   transaction together with the days they touch and the new watermark: a crash at any point,
   then a re-run, counts nothing twice;
5. publishes the rollups of the touched days (see kpi/warehouse/published.py): a small backlog
   as additions to those days, a large one (ADD_MAX_EVENTS) by recomputing them; and records
   the run in the ingest store's `aggregation_runs`.
"""

from __future__ import annotations

import fcntl
import hashlib
import multiprocessing
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, Select, func, insert, literal_column, select, text

from kpi.catalogue.versions import version_key
from kpi.settings import Settings
from kpi.store.db import (
    OTHER_ACCEPTED,
    aggregation_runs,
    concept_collections,
    concept_labels,
    concept_successors,
    concepts,
    events,
    implementers,
    make_engine,
    outcome_counts,
)
from kpi.warehouse import label_keys, models, private, published
from kpi.warehouse.models import one_thread, registered, transaction
from kpi.warehouse.store_arrow import (
    EVENT_TYPES,
    ArrowStore,
    MixedTypes,
    compile_qmark,
    read_result,
    result_folder,
    store_source,
    with_label_keys,
    with_label_norm,
    worker_select,
)

# Ids per read from the ingest store: bounded memory (a few hundred MB at most) and
# DuckDB transactions of a useful size.
BATCH_IDS = 200_000
# A backlog of at least this many ids is read by workers (see _batches).
PARALLEL_MIN_IDS = 1_000_000
# A backlog of fewer ids is read through the engine's own driver, row by row, on PostgreSQL
# too: for so few rows, opening an ADBC connection costs more than it saves.
ROWS_MAX_IDS = 20_000
READ_WORKERS = 4
# Batches are appended to the warehouse (and the watermark committed) once they hold this many
# events, or at the end of the backlog: inserts of ~1 M rows cost DuckDB a third less than
# five times as many of 200 k, which leave partial row groups for the checkpoint to rewrite.
APPEND_MIN_ROWS = 1_000_000
# A run that reads fewer events than this publishes them as additions: the sums of its rows go
# into new files beside the files of each day (and of each closed month and quarter) they
# touch, instead of recomputing those days from all of their events (see
# kpi.warehouse.published). A run that reads more marks their days dirty, to be recomputed
# whole: once most of a day's events are new, that costs no more, and staging them as
# additions would copy them once more. (Events, not ids: ids have gaps, large ones on
# PostgreSQL, whose sequences skip the ids of rolled-back and deleted rows.)
ADD_MAX_EVENTS = 500_000
# A catalogue version with at least this many labels has them read and normalised by worker
# processes (see _sync_catalogue); a smaller one here (no process start-up for a few labels).
LABEL_WORKERS_MIN = 20_000

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
    days_recomputed: int  # days whose rollups were published: recomputed whole, or added to
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
        synced["catalogue"] = _sync_catalogue(con, engine, settings)
        _sync_implementers(con, engine)
        _sync_quality(con, engine)

    read = 0
    held: list[pa.Table] = []  # batches read but not appended yet
    held_rows = 0
    # While workers read, they keep the other core busy: this thread appends on one DuckDB
    # thread (a full refresh of 10 M events: 1.6-1.9 CPU-s less, and on PostgreSQL, whose
    # server shares the cores too, 4 % faster; bench/RESULTS.md)
    with one_thread(con) if _read_by_workers(engine, previous, high) else nullcontext():
        # sync() runs before the first batch is appended, while the first batches are read
        for upper, batch in _batches(settings, engine, previous, high, before=sync):
            held.extend(batch)
            held_rows += sum(t.num_rows for t in batch)
            if held_rows >= APPEND_MIN_ROWS or upper == high:
                # The batches, the days they touch and the watermark that covers them: one
                # transaction. Fewer, larger inserts: DuckDB writes whole row groups at once
                # instead of logging small ones and rewriting them at the checkpoint.
                with transaction(con):
                    for part in _by_kind(held):
                        _append_events(con, part, upper)
                    private.set_meta(con, "watermark", str(upper))
                read += held_rows
                held, held_rows = [], 0
            if progress:
                progress(upper - previous, high - previous)
    catalogue_copied = synced["catalogue"]

    manifest = published.read_manifest(settings)
    if int(manifest.get("seq", 0)) and str(manifest.get("format")) != published.FORMAT:
        # published by a version whose files had another shape: readers ignore them, so every
        # day and dimension is written again, from the private events
        with transaction(con):
            models.run(con, "private/mark_all_days_dirty")
            private.mark_unpublished(con, *published.DIMENSIONS)
    # the events above the published watermark: this run's, or a crashed run's
    added = published.stage_changes(con, manifest, recompute=read >= ADD_MAX_EVENTS)
    # changed since last published, or never published (first run, crash before publishing)
    marked = private.unpublished_dimensions(con)
    dims = [d for d in published.DIMENSIONS
            if d in marked or d not in manifest.get("dimensions", {})]
    dirty = len(models.run(con, "private/dirty_days").fetchall())
    # Nothing new, nothing published: the snapshot id (a cache key) stays the same. Months
    # and quarters without their sums (one has just ended, or an upgrade added a table of
    # them) are written without waiting for new events.
    snapshot = int(manifest.get("seq", 0))
    if dirty or added or dims or published.missing_spans(manifest.get("rollups", {})):
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
        days_recomputed=dirty + added, previous_watermark=previous, watermark=high,
        catalogue_copied=catalogue_copied, snapshot=snapshot,
    )


# --------------------------------------------------------------------------------------------
# Events

def _batches(
    settings: Settings, engine: Engine, low: int, high: int,
    before: Callable[[], None] = lambda: None,
) -> Iterator[tuple[int, list[pa.Table]]]:
    """(upper id, Arrow tables) for each id range of the backlog, in id order.

    A large backlog is read by workers (one per core, up to READ_WORKERS) while this thread
    appends to DuckDB: threads with ADBC on PostgreSQL, processes with ADBC on SQLite (see
    kpi.warehouse.store_arrow: no Python object per row, and no second SQLite library in
    this process). Results still arrive in id order, so each commit's watermark stays exact.
    A small backlog is read here, through the engine's driver.

    `before()` is called in this thread before the first batch is handed out, even when there
    is none; with a large backlog the first reads are already running meanwhile.
    """
    ranges = [(lo, min(lo + BATCH_IDS, high)) for lo in range(low, high, BATCH_IDS)]
    workers = _read_workers()
    norm_cache: dict[str, str] = {}
    if not _read_by_workers(engine, low, high):
        before()
        if not ranges:
            return
        store = ArrowStore(engine, rows=high - low < ROWS_MAX_IDS)
        try:
            for lo, hi in ranges:
                yield hi, _read_events(store, lo, hi, norm_cache)
        finally:
            store.close()
        return

    local = threading.local()
    opened: list[ArrowStore] = []
    lock = threading.Lock()

    def store_here() -> ArrowStore:
        store = getattr(local, "store", None)
        if store is None:
            store = local.store = ArrowStore(engine)
            with lock:
                opened.append(store)
        return store

    pool: Executor
    folder = None
    if engine.dialect.name == "sqlite":
        pool = _process_pool(workers)
        source = store_source(engine)
        folder = result_folder()

        def submit(lo: int, hi: int) -> Future:
            return pool.submit(worker_select, source, tuple(
                compile_qmark(_events_in(used, lo, hi), engine.dialect)
                for used in (True, False)), "events", folder)
    else:
        pool = ThreadPoolExecutor(workers, thread_name_prefix="aggregate-read")

        def submit(lo: int, hi: int) -> Future:
            return pool.submit(lambda: _read_events(store_here(), lo, hi, norm_cache))

    try:
        with pool:
            todo = iter(ranges)
            pending: deque[tuple[int, int, Future]] = deque(
                (lo, hi, submit(lo, hi)) for lo, hi in islice(todo, 3 * workers))
            try:
                before()
                while pending:
                    lo, hi, future = pending.popleft()
                    try:
                        tables = future.result()
                        if folder is not None:
                            tables = read_result(tables)
                    except MixedTypes:  # values ADBC cannot type: this range row by row
                        tables = _read_events(store_here(), lo, hi, norm_cache)
                    following = next(todo, None)
                    if following:
                        pending.append((*following, submit(*following)))
                    yield hi, tables
            finally:
                for *_, future in pending:
                    future.cancel()
    finally:
        for store in opened:
            store.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _read_workers() -> int:
    return min(os.cpu_count() or 1, READ_WORKERS)


def _read_by_workers(engine: Engine, low: int, high: int) -> bool:
    """Whether the backlog of ids low..high is read by workers (see _batches)."""
    return (high - low >= PARALLEL_MIN_IDS and _read_workers() >= 2
            and _separate_connections(engine))


def _by_kind(tables: list[pa.Table]) -> list[pa.Table]:
    """The tables of several batches as one table per kind (concept_used or the others)."""
    kinds: dict[bool, list[pa.Table]] = {}
    for table in tables:
        kinds.setdefault("type" in table.column_names, []).append(table)
    return [pa.concat_tables(group, promote_options="permissive") for group in kinds.values()]


def _process_pool(workers: int) -> ProcessPoolExecutor:
    # Spawned, not forked: this process runs DuckDB's threads (and the entry script must guard
    # its top level with `if __name__ == "__main__"`, as multiprocessing requires).
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _separate_connections(engine: Engine) -> bool:
    """Whether other connections see the same store (an in-memory SQLite database exists once
    per connection: it is read on one)."""
    url = engine.url
    return not (engine.dialect.name == "sqlite"
                and (not url.database or url.database == ":memory:"
                     or "mode=memory" in str(url)))


# concept_used events are nearly all of the volume and need fewer columns: they are read by a
# narrower query, the other types by a full one, through their own partial index
# (OTHER_ACCEPTED: the condition as the index says it, not as parameters).
_USED_COLUMNS = ("implementer_id", "day", "concept_uri", "esco_version", "language",
                 "context", "count")
_OTHER_COLUMNS = (*_USED_COLUMNS, "type", "label", "concept_type")
_EVENTS_SQL = {
    True: select(*(events.c[c] for c in _USED_COLUMNS))
    .where(events.c.status == "accepted", events.c.type == "concept_used"),
    False: select(*(events.c[c] for c in _OTHER_COLUMNS)).where(text(OTHER_ACCEPTED)),
}


def _events_in(used: bool, low: int, high: int) -> Select:
    return _EVENTS_SQL[used].where(events.c.id > low, events.c.id <= high)


def _read_events(
    store: ArrowStore, low: int, high: int, norm_cache: dict[str, str]
) -> list[pa.Table]:
    """Accepted events with low < id <= high, as Arrow tables (one per query that found any)."""
    tables = []
    used = store.select(_events_in(True, low, high), EVENT_TYPES)
    if used.num_rows:
        tables.append(used)
    other = store.select(_events_in(False, low, high), EVENT_TYPES)
    if other.num_rows:
        tables.append(with_label_norm(other, norm_cache))  # once per distinct label
    return tables


def _append_events(con: duckdb.DuckDBPyConnection, batch: pa.Table, watermark: int) -> None:
    """Append a batch to the private events, each row marked with the watermark it is committed
    with."""
    # concept_used events come with fewer columns (see _USED_COLUMNS)
    model = "private/append_events" if "type" in batch.column_names else (
        "private/append_used_events")
    with registered(con, event_batch=_with_concepts(con, batch)):
        models.run(con, model, {"watermark": watermark})


def _with_concepts(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> pa.Table:
    """The batch with each event's concept as stored (sql/private/batch_concepts.sql),
    concept_key and catalogue_type, instead of its concept_uri.

    Looked up once per distinct URI and given to the events by position in Arrow: joining
    every event to the catalogue in DuckDB made appending a sixth dearer (10 M events: 7.8 ->
    6.5 CPU-s, bench/RESULTS.md)."""
    uris = pc.dictionary_encode(batch["concept_uri"]).combine_chunks()
    distinct = uris.dictionary  # (a null URI is a null index, not an entry)
    # the events are stored with their concepts' keys: the URIs that have none get one first
    private.assign_concept_keys(con, distinct)
    positions = pa.array(range(len(distinct)), pa.int32())
    with registered(con, batch_uris=pa.table({"pos": positions, "uri": distinct})):
        concepts = models.arrow(con, "private/batch_concepts")
    if concepts.num_rows != len(distinct):
        raise RuntimeError("batch_concepts must give one row per URI")
    return (batch.drop_columns(["concept_uri"])
            .append_column("concept_key", pc.take(concepts["concept_key"], uris.indices))
            .append_column("catalogue_type", pc.take(concepts["catalogue_type"], uris.indices)))


# --------------------------------------------------------------------------------------------
# Catalogue, implementers, data quality


def _sync_catalogue(con: duckdb.DuckDBPyConnection, engine: Engine, settings: Settings
                    ) -> bool:
    """Copy the catalogue versions that are new or changed; True when anything changed."""
    source = label_keys.releases(engine)
    held = {
        row[0]: (row[1], row[2], int(row[3]), int(row[4]), row[5] or "")
        for row in models.run(con, "private/catalogue_versions").fetchall()
    }
    changed = [v for v in source if held.get(v) != source[v]]
    gone = [v for v in held if v not in source]
    if not changed and not gone:
        return False
    # label keys kept from an earlier copy or load of the same release (kpi.warehouse.label_keys)
    kept = {v: table for v in changed
            if (table := label_keys.cached(settings, v, source[v])) is not None}
    with transaction(con):
        for version in (*changed, *gone):
            models.run(con, "private/forget_catalogue_version", {"version": version})
        store = ArrowStore(engine)
        pool = None
        try:
            # A large release's labels are read and normalised by worker processes, in parts,
            # while this thread copies its concepts (normalise_label is Python: 385,000 labels
            # take about a second of one core).
            workers = _read_workers()
            large = [v for v in changed if v not in kept and source[v][3] >= LABEL_WORKERS_MIN]
            parts: dict[str, list[Future]] = {}
            if large and workers >= 2 and _separate_connections(engine):
                pool = _process_pool(workers)
                where = store_source(engine)
                folder = result_folder()
                for version in large:
                    parts[version] = [pool.submit(worker_select, where, (compile_qmark(
                        _labels_of(version, engine.dialect.name, part, workers),
                        engine.dialect),), "labels", folder) for part in range(workers)]
            for version in changed:
                if version in kept:
                    _copy_version(con, store, version, labels=[kept[version]])
                else:
                    copied = _copy_version(con, store, version, parts.get(version))
                    label_keys.keep(settings, version, source[version], copied)
        finally:
            store.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
                shutil.rmtree(folder, ignore_errors=True)
        for version in changed:
            loaded_at, src, n_concepts, n_labels, languages = source[version]
            models.run(con, "private/add_catalogue_version", {
                "version": version, "loaded_at": loaded_at, "source": src,
                "concepts": n_concepts, "labels": n_labels, "languages": languages})
        for rank, version in enumerate(sorted(source, key=version_key), start=1):
            models.run(con, "private/rank_catalogue_version", {"version": version, "rank": rank})
        models.run(con, "private/concept_info")
        private.assign_concept_keys(con)  # the successors' keys, which the events take now
        models.run(con, "private/fill_concept_types")
        private.mark_unpublished(con, *published.CATALOGUE_DIMENSIONS)
    label_keys.forget_others(settings, source)
    return True


def _copy_version(con: duckdb.DuckDBPyConnection, store: ArrowStore, version: str,
                  parts: list[Future] | None = None, labels: list[pa.Table] | None = None
                  ) -> list[pa.Table]:
    """Copy one version's concepts, members and labels; `parts`: its labels being read (with
    their keys) by worker processes; `labels`: its labels with their keys already at hand;
    else they are read here. Returns the labels copied, with their keys."""
    version_concepts = store.select(
        select(concepts.c.uri, concepts.c.concept_type, concepts.c.status)
        .where(concepts.c.version == version))
    if version_concepts.num_rows:
        with registered(con, version_concepts=version_concepts):
            models.run(con, "private/copy_catalogue_concepts", {"version": version})
    _copy_members(con, store, version)
    tables = labels or []
    try:
        tables += [table for part in parts or () for table in read_result(part.result())]
    except MixedTypes:  # values SQLite's ADBC driver cannot type: read them here
        parts = None
    if parts is None and labels is None:
        read = store.select(_labels_of(version, store.dialect))
        tables = [with_label_keys(read)] if read.num_rows else []
    for version_labels in tables:
        with registered(con, version_labels=version_labels):
            models.run(con, "private/copy_catalogue_labels", {"version": version})
    return tables


def _labels_of(version: str, dialect: str, part: int = 0, parts: int = 1) -> Select:
    """One version's labels, or one of `parts` disjoint parts of them."""
    query = select(concept_labels.c.uri, concept_labels.c.language, concept_labels.c.kind,
                   concept_labels.c.label).where(concept_labels.c.version == version)
    if parts > 1:
        row = (literal_column("rowid") if dialect == "sqlite"
               else func.abs(func.hashtext(concept_labels.c.uri)))
        query = query.where(row % parts == part)
    return query


def _copy_members(con: duckdb.DuckDBPyConnection, store: ArrowStore, version: str) -> None:
    """Copy one version's collection members and the URIs it says it replaced."""
    version_collections = store.select(
        select(concept_collections.c.collection, concept_collections.c.uri)
        .where(concept_collections.c.version == version))
    version_successors = store.select(
        select(concept_successors.c.uri, concept_successors.c.successor_uri,
               concept_successors.c.source).where(concept_successors.c.version == version))
    with registered(con, version_collections=version_collections,
                    version_successors=version_successors):
        models.run(con, "private/copy_catalogue_collections", {"version": version})
        models.run(con, "private/copy_catalogue_successors", {"version": version})


def _digest(rows: list[Any]) -> str:
    """A digest of rows read in a fixed order (their query sorts them): sorting them here by
    their text cost more than the query itself, some 10 ms a run with 7,000 rows."""
    return hashlib.sha256(repr([tuple(row) for row in rows]).encode()).hexdigest()


def _sync_implementers(con: duckdb.DuckDBPyConnection, engine: Engine) -> bool:
    """Copy the implementers; True when they changed."""
    with engine.connect() as conn:
        rows = conn.execute(select(implementers.c.id, implementers.c.name,
                                   implementers.c.country, implementers.c.sector)
                            .order_by(implementers.c.id)).all()
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
            .order_by(outcome_counts.c.received_on, outcome_counts.c.implementer_id,
                      outcome_counts.c.outcome, outcome_counts.c.reason)
        ).all()
        keys = (events.c.received_on, events.c.implementer_id, events.c.quarantine_reason)
        waiting = conn.execute(
            select(*keys, func.count())
            .where(events.c.status == "quarantined")
            .group_by(*keys)
            .order_by(*keys)
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
