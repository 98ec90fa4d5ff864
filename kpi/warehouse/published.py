"""The warehouse: DuckDB files written by the aggregator alone, and what readers open.

DuckDB lets one process write a database file, and a file open for writing cannot be opened
read-only by another process. The dashboard workers and the export must keep answering while an
aggregation runs, so readers never open the aggregator's file. Instead:

* ``<warehouse>/aggregator.duckdb`` is private to the aggregator: a copy of the accepted events
  (the source every daily rollup is recomputed from), the catalogue and implementer copies, the
  watermark, and the days whose rollups changed but are not yet published.
* ``<warehouse>/published/`` is what readers see: the daily rollups as Parquet files partitioned
  by day (``usage_daily/day=2026-07-01/r00000012_<uuid>.parquet``), rewritten only for the days
  a run touched, and the small dimension tables as single Parquet files. Every file is written
  once under a new name and never modified.
* ``<warehouse>/published/manifest.json`` names the current file(s) of every day and dimension.
  It is replaced atomically (write, fsync, ``os.replace``) once every file it names is on disk,
  so a reader sees either the previous run's state or the new one, never half of a run.
  Superseded files are deleted only after a grace period, so that a reader which read the
  previous manifest a moment ago can still scan them.

``open_reader(settings)`` returns an in-memory DuckDB connection with one view per published
table over the files of the current manifest: no process ever holds a lock that another needs.
Open one per request (it costs a few milliseconds); `snapshot_id` tells when to re-open.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from kpi.settings import Settings

# Bumped whenever the private tables change shape.
FORMAT = "2"
# Formats this version upgrades in place (see `_upgrade`): 1 had URIs in the rollups.
UPGRADABLE = ("1",)
MANIFEST = "manifest.json"
PRIVATE_DB = "aggregator.duckdb"
PUBLISHED = "published"
LOCK_FILE = "aggregate.lock"
# How long a superseded Parquet file stays on disk after the manifest stopped naming it: a
# reader opened before the switch keeps working this long.
RETIRE_GRACE_SECONDS = 900.0

# --------------------------------------------------------------------------------------------
# The private database

PRIVATE_SCHEMA = (
    """
    create table if not exists meta (key varchar primary key, value varchar)
    """,
    # Accepted ingest events, grouped per batch by every field the indicators need (no
    # comments): count = sum of their `count`s, events = how many ingest events. Grouping a
    # batch before it is stored makes the copy a fraction of the events it stands for.
    # concept_type: the proposed concept's type for concept_proposed, else the catalogue's type
    # of concept_uri. label_norm: normalise_label(label), computed in Python.
    """
    create table if not exists events (
        implementer_id integer, type varchar, day date, concept_uri varchar,
        concept_type varchar, esco_version varchar, language varchar, context varchar,
        label varchar, label_norm varchar, count bigint, events bigint)
    """,
    # A small integer per concept URI, assigned once and never changed: the rollups carry the
    # key, not the 60-odd-character URI, which makes them a seventh of the size and the
    # indicators' GROUP BYs several times faster. Published as the concept_keys dimension.
    """
    create table if not exists concept_keys (uri varchar primary key, key integer not null)
    """,
    # Days whose rollups changed since they were last published.
    "create table if not exists dirty_days (day date primary key)",
    """
    create table if not exists cat_versions (
        version varchar primary key, rank integer, loaded_at varchar, source varchar,
        concepts bigint, labels bigint)
    """,
    """
    create table if not exists cat_concepts (
        version varchar, uri varchar, concept_type varchar, status varchar)
    """,
    """
    create table if not exists cat_labels (
        version varchar, uri varchar, language varchar, kind varchar, label varchar,
        label_norm varchar)
    """,
    # Per URI: its type, status in the newest loaded version, and the newest version holding it.
    """
    create table if not exists concept_info (
        uri varchar primary key, concept_type varchar, status varchar,
        current_version varchar, in_newest boolean)
    """,
    """
    create table if not exists implementers (
        id integer, name varchar, country varchar, sector varchar)
    """,
    """
    create table if not exists quality_daily (
        day date, implementer_id integer, outcome varchar, reason varchar, events bigint,
        still_quarantined bigint)
    """,
)

# Daily rollups, recomputed from the private events for the dirty days only. Weeks, months and
# quarters are sums over them (see sql/). No ORDER BY: readers sort what they show.
ROLLUPS: dict[str, str] = {
    # Sorted by concept within a day: smaller files, and readers group runs of equal keys.
    "usage_daily": """
        select e.day, k.key as concept_key, e.concept_type, e.implementer_id, e.language,
               e.context, sum(e.count)::bigint as usage, sum(e.events)::bigint as events
        from events as e
        join concept_keys as k on k.uri = e.concept_uri
        where e.type = 'concept_used' and e.day in (select day from dirty_days)
        group by all
        order by e.day, concept_key
    """,
    "labels_daily": """
        select e.day, k.key as concept_key, e.concept_type, e.implementer_id, e.language,
               e.context, e.label_norm, e.label,
               sum(e.count)::bigint as usage, sum(e.events)::bigint as events
        from events as e
        join concept_keys as k on k.uri = e.concept_uri
        where e.type = 'label_added' and e.day in (select day from dirty_days)
        group by all
        order by e.day, concept_key
    """,
    "proposals_daily": """
        select e.day, e.concept_type, e.label_norm, e.label, k.key as broader_key,
               e.implementer_id, e.language, e.context,
               sum(e.count)::bigint as usage, sum(e.events)::bigint as events
        from events as e
        left join concept_keys as k on k.uri = e.concept_uri
        where e.type = 'concept_proposed' and e.day in (select day from dirty_days)
        group by all
    """,
    "feedback_daily": """
        select e.day, k.key as concept_key, e.concept_type, e.implementer_id, e.language,
               e.context, e.label_norm, e.label,
               sum(e.count)::bigint as usage, sum(e.events)::bigint as events
        from events as e
        join concept_keys as k on k.uri = e.concept_uri
        where e.type = 'translation_feedback' and e.day in (select day from dirty_days)
        group by all
        order by e.day, concept_key
    """,
    # Every accepted event, whatever its type: active implementers and ESCO versions in use.
    "activity_daily": """
        select day, implementer_id, type, concept_type, language, context, esco_version,
               sum(count)::bigint as usage, sum(events)::bigint as events
        from events
        where day in (select day from dirty_days)
        group by all
    """,
}

# Column names and types of every published table, so that a reader gets the same (empty)
# views before the first aggregation. tests/test_aggregate.py checks them against the files.
SCHEMAS: dict[str, tuple[tuple[str, str], ...]] = {
    "usage_daily": (
        ("concept_key", "integer"), ("concept_type", "varchar"), ("implementer_id", "integer"),
        ("language", "varchar"), ("context", "varchar"), ("usage", "bigint"),
        ("events", "bigint"), ("day", "date"),
    ),
    "labels_daily": (
        ("concept_key", "integer"), ("concept_type", "varchar"), ("implementer_id", "integer"),
        ("language", "varchar"), ("context", "varchar"), ("label_norm", "varchar"),
        ("label", "varchar"), ("usage", "bigint"), ("events", "bigint"), ("day", "date"),
    ),
    "proposals_daily": (
        ("concept_type", "varchar"), ("label_norm", "varchar"), ("label", "varchar"),
        ("broader_key", "integer"), ("implementer_id", "integer"), ("language", "varchar"),
        ("context", "varchar"), ("usage", "bigint"), ("events", "bigint"), ("day", "date"),
    ),
    "feedback_daily": (
        ("concept_key", "integer"), ("concept_type", "varchar"), ("implementer_id", "integer"),
        ("language", "varchar"), ("context", "varchar"), ("label_norm", "varchar"),
        ("label", "varchar"), ("usage", "bigint"), ("events", "bigint"), ("day", "date"),
    ),
    "activity_daily": (
        ("implementer_id", "integer"), ("type", "varchar"), ("concept_type", "varchar"),
        ("language", "varchar"), ("context", "varchar"), ("esco_version", "varchar"),
        ("usage", "bigint"), ("events", "bigint"), ("day", "date"),
    ),
    "quality_daily": (
        ("day", "date"), ("implementer_id", "integer"), ("outcome", "varchar"),
        ("reason", "varchar"), ("events", "bigint"), ("still_quarantined", "bigint"),
    ),
    "concepts": (
        ("uri", "varchar"), ("concept_type", "varchar"), ("status", "varchar"),
        ("current_version", "varchar"), ("in_newest", "boolean"),
    ),
    "concept_keys": (("key", "integer"), ("uri", "varchar")),
    "concept_labels": (
        ("uri", "varchar"), ("language", "varchar"), ("kind", "varchar"), ("label", "varchar"),
        ("label_norm", "varchar"),
    ),
    "concept_names": (("uri", "varchar"), ("language", "varchar"), ("label", "varchar")),
    "concept_label_norms": (
        ("concept_key", "integer"), ("language", "varchar"), ("label_norm", "varchar"),
    ),
    "catalogue_versions": (
        ("version", "varchar"), ("rank", "integer"), ("loaded_at", "varchar"),
        ("concepts", "bigint"), ("labels", "bigint"),
    ),
    "implementers": (
        ("id", "integer"), ("name", "varchar"), ("country", "varchar"), ("sector", "varchar"),
    ),
}

# Dimensions: one Parquet file each, rewritten when their source changed.
DIMENSIONS: dict[str, str] = {
    # concept_labels and concept_names hold the labels of the newest version holding each
    # concept, so a concept that a new release dropped keeps its last labels.
    "concepts": "select * from concept_info order by uri",
    "concept_keys": "select key, uri from concept_keys order by key",
    "concept_labels": """
        select l.uri, l.language, l.kind, l.label, l.label_norm
        from cat_labels as l
        join concept_info as c on c.uri = l.uri and c.current_version = l.version
        order by l.uri, l.language, l.kind, l.label
    """,
    "concept_names": """
        select l.uri, l.language, min(l.label) as label
        from cat_labels as l
        join concept_info as c on c.uri = l.uri and c.current_version = l.version
        where l.kind = 'preferred'
        group by l.uri, l.language
        order by l.uri, l.language
    """,
    "catalogue_versions": """
        select version, rank, loaded_at, concepts, labels from cat_versions order by rank
    """,
    # The normalised labels each concept has per language, by concept key: what
    # candidate_alt_labels compares implementers' labels with, ready for its anti-join.
    "concept_label_norms": """
        select distinct k.key as concept_key, l.language, l.label_norm
        from cat_labels as l
        join concept_info as c on c.uri = l.uri and c.current_version = l.version
        join concept_keys as k on k.uri = l.uri
        order by concept_key, l.language, l.label_norm
    """,
    "implementers": "select id, name, country, sector from implementers order by id",
    "quality_daily": """
        select * from quality_daily order by day, implementer_id, outcome, reason
    """,
}
CATALOGUE_DIMENSIONS = ("concepts", "concept_labels", "concept_names", "catalogue_versions",
                        "concept_label_norms")


def private_path(settings: Settings) -> Path:
    return settings.warehouse_path / PRIVATE_DB


def published_dir(settings: Settings) -> Path:
    return settings.warehouse_path / PUBLISHED


def connect_private(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open (and create) the aggregator's private database. Only the aggregator calls this."""
    settings.warehouse_path.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(private_path(settings)),
        # Bounded memory: DuckDB spills to disk past the limit; the aggregator stays < 2 GB.
        config={"memory_limit": "1GB", "preserve_insertion_order": False},
    )
    for statement in PRIVATE_SCHEMA:
        con.execute(statement)
    held = get_meta(con, "format")
    if held is None:
        set_meta(con, "format", FORMAT)
    elif held in UPGRADABLE:
        _upgrade(con)
    elif held != FORMAT:
        con.close()
        raise RuntimeError(
            f"the warehouse in {settings.warehouse_path} has format {held}, this version "
            f"writes {FORMAT}: move that folder away and run the aggregation to rebuild it"
        )
    return con


def _upgrade(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a format-1 warehouse to this format: its rollups are rebuilt on the next run.

    The private events are kept (the ingest store may no longer hold the oldest of them);
    every day is marked dirty, so the next publish rewrites every rollup with concept keys.
    """
    con.begin()
    con.execute("insert or ignore into dirty_days select distinct day from events")
    set_meta(con, "unpublished:concept_keys", "1")
    set_meta(con, "format", FORMAT)
    con.commit()


def assign_concept_keys(con: duckdb.DuckDBPyConnection) -> int:
    """Give a key to every concept URI of the catalogue and of the dirty days' events that has
    none yet; returns how many were added (and marks the concept_keys dimension unpublished).

    Keys are never reassigned: published rollups of days that are not recomputed keep theirs.
    """
    con.begin()
    added = con.execute("""
        insert into concept_keys
        with new_uris as (
            select uri from concept_info
            union
            select concept_uri from events
            where concept_uri is not null and day in (select day from dirty_days)
            except
            select uri from concept_keys
        )
        select uri, (select coalesce(max(key), 0) from concept_keys)
                    + row_number() over (order by uri)
        from new_uris
    """).fetchone()[0]
    if added:
        set_meta(con, "unpublished:concept_keys", "1")
    con.commit()
    return int(added)


def get_meta(con: duckdb.DuckDBPyConnection, key: str, default: str | None = None) -> str | None:
    row = con.execute("select value from meta where key = $key", {"key": key}).fetchone()
    return row[0] if row else default


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute(
        "insert or replace into meta (key, value) values ($key, $value)",
        {"key": key, "value": value},
    )


# --------------------------------------------------------------------------------------------
# Publishing


def read_manifest(settings: Settings) -> dict[str, Any]:
    """The current manifest, or an empty one before the first aggregation."""
    path = published_dir(settings) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"seq": 0, "rollups": {}, "dimensions": {}, "retired": []}


def snapshot_id(settings: Settings) -> int:
    """A number that changes whenever a run publishes: a cache key for query results."""
    return int(_current_manifest(settings).get("seq", 0))


_manifests: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _manifest_key(settings: Settings) -> tuple[int, int, int]:
    try:
        st = (published_dir(settings) / MANIFEST).stat()
    except FileNotFoundError:
        return (0, 0, 0)
    # os.replace gives every manifest a new inode; mtime and size guard against reuse
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _current_manifest(settings: Settings) -> dict[str, Any]:
    """The manifest, parsed again only when the file changed (one stat per call)."""
    key = _manifest_key(settings)
    folder = settings.warehouse_path.resolve()
    held = _manifests.get(folder)
    if held is None or held[0] != key:
        held = _manifests[folder] = (key, read_manifest(settings))
    return held[1]


def period_fingerprint(settings: Settings, start: date, end: date,
                       ignore: Iterable[str] = ()) -> str:
    """A name for everything a query over the days start..end can read.

    Published files are written once under new names, so two equal fingerprints mean equal
    answers: a run that only touched today leaves the fingerprint of last quarter, and the
    results cached under it, as they were. Covers the dimensions and the rollup files of the
    days in range, less the tables in `ignore` (those the caller's queries never read).
    """
    manifest = _current_manifest(settings)
    low, high = start.isoformat(), end.isoformat()
    skip = set(ignore)
    dims = {k: v for k, v in manifest.get("dimensions", {}).items() if k not in skip}
    digest = hashlib.blake2b(digest_size=12)
    digest.update(json.dumps([manifest.get("format"), dims], sort_keys=True).encode())
    for table, days in sorted(manifest.get("rollups", {}).items()):
        if table in skip:
            continue
        for day, files in days.items():
            if low <= day <= high:
                digest.update(f"{table}/{day}:{','.join(files)};".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class PublishSummary:
    seq: int
    days: int
    files_written: int
    files_deleted: int


def publish(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    dimensions: Iterable[str],
    extra: dict[str, Any] | None = None,
) -> PublishSummary:
    """Write the rollups of the dirty days and the given dimensions, then switch the manifest.

    Cost is proportional to the dirty days' rollups, not to the whole warehouse. Safe to call
    again after a crash: the dirty days are cleared only once the manifest names their files.
    """
    pub = published_dir(settings)
    pub.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(settings)
    seq = int(manifest.get("seq", 0)) + 1
    # Unique per attempt: files of an attempt that crashed before switching the manifest must
    # never be taken for this attempt's files.
    tag = f"r{seq:08d}{uuid.uuid4().hex[:8]}"
    now = time.time()
    retired: list[list[Any]] = [list(r) for r in manifest.get("retired", [])]
    rollups: dict[str, dict[str, list[str]]] = manifest.get("rollups", {})
    dims: dict[str, str] = manifest.get("dimensions", {})

    dirty = [row[0].isoformat() for row in con.execute(
        "select day from dirty_days order by day").fetchall()]
    written = 0
    for table, sql in ROLLUPS.items():
        if not dirty:
            break
        folder = pub / table
        folder.mkdir(exist_ok=True)
        # One statement per table: DuckDB writes one file per day under day=YYYY-MM-DD/.
        con.sql(sql).to_parquet(
            str(folder), partition_by=["day"], filename_pattern=f"{tag}_{{uuid}}", append=True
        )
        current = rollups.setdefault(table, {})
        for day in dirty:
            day_dir = folder / f"day={day}"
            new = sorted(
                f"{table}/day={day}/{p.name}"
                for p in (day_dir.iterdir() if day_dir.is_dir() else ())
                if p.name.startswith(tag + "_")
            )
            retired.extend([old, now] for old in current.get(day, []))
            if new:
                current[day] = new
                written += len(new)
            else:
                current.pop(day, None)

    for name in dict.fromkeys(dimensions):
        rel = f"dimensions/{name}-{tag}.parquet"
        (pub / "dimensions").mkdir(exist_ok=True)
        con.sql(DIMENSIONS[name]).to_parquet(str(pub / rel))
        if name in dims:
            retired.append([dims[name], now])
        dims[name] = rel
        written += 1

    new_manifest = {
        "format": int(FORMAT),
        "seq": seq,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
        "rollups": {t: dict(sorted(d.items())) for t, d in sorted(rollups.items())},
        "dimensions": dict(sorted(dims.items())),
        "retired": retired,
    }
    # Every new file must be on disk before the manifest that names them (power loss).
    os.sync()
    _atomic_write(pub / MANIFEST, json.dumps(new_manifest, indent=1).encode())
    con.execute("delete from dirty_days")
    deleted = _collect_garbage(pub, new_manifest, now)
    return PublishSummary(seq=seq, days=len(dirty), files_written=written, files_deleted=deleted)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _collect_garbage(pub: Path, manifest: dict[str, Any], now: float) -> int:
    """Delete files retired longer ago than the grace period, and orphans of crashed runs."""
    keep: set[str] = set(manifest["dimensions"].values())
    for days in manifest["rollups"].values():
        for files in days.values():
            keep.update(files)
    still_retired = []
    deleted = 0
    for rel, when in manifest["retired"]:
        if rel in keep:
            continue
        if now - when >= RETIRE_GRACE_SECONDS:
            deleted += _unlink(pub / rel)
        else:
            still_retired.append([rel, when])
            keep.add(rel)
    if len(still_retired) != len(manifest["retired"]):
        manifest["retired"] = still_retired
        _atomic_write(pub / MANIFEST, json.dumps(manifest, indent=1).encode())
    # Files that no manifest ever named (a run killed between writing and switching).
    for path in pub.rglob("*.parquet"):
        rel = path.relative_to(pub).as_posix()
        if rel not in keep and now - path.stat().st_mtime >= RETIRE_GRACE_SECONDS:
            deleted += _unlink(path)
    return deleted


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------------------------
# Reading


_shared: dict[Path, tuple[tuple[int, int, int], duckdb.DuckDBPyConnection]] = {}
_shared_lock = threading.Lock()


def shared_reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A cursor on a per-process reader that is rebuilt only when a run published.

    Building the views costs some tens of milliseconds with months of daily files; a dashboard
    worker calls this per request instead of open_reader. The manifest's modification time and
    size are checked on every call (one stat), so a new snapshot is picked up at once; requests
    already running on the previous one finish on it (its files outlive the switch by
    RETIRE_GRACE_SECONDS). Close the returned cursor when done.
    """
    key = _manifest_key(settings)
    folder = settings.warehouse_path.resolve()
    with _shared_lock:
        held = _shared.get(folder)
        if held is None or held[0] != key:
            # the previous connection is closed by DuckDB once its last cursor is gone
            held = _shared[folder] = (key, open_reader(settings))
        return held[1].cursor()


def _empty_select(table: str) -> str:
    # Built only from the constant SCHEMAS above: no value from outside reaches this SQL.
    cols = ", ".join(f"cast(null as {typ}) as {name}" for name, typ in SCHEMAS[table])
    return f"select {cols} limit 0"


def open_reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per published table (current manifest).

    Views: usage_daily, labels_daily, proposals_daily, feedback_daily, activity_daily,
    quality_daily, concepts, concept_labels, concept_names, catalogue_versions, implementers.
    Never blocks and never blocks the aggregator. Use it for one request or one export, then
    close it: files superseded by a later run are deleted after RETIRE_GRACE_SECONDS.
    """
    manifest = _current_manifest(settings)
    pub = published_dir(settings)
    con = duckdb.connect(":memory:", config={"memory_limit": "512MB"})
    rollups = manifest.get("rollups", {})
    dims = manifest.get("dimensions", {})
    if str(manifest.get("format", FORMAT)) != FORMAT:
        # Published by an older version: readers see no data until the next aggregation run
        # rewrites it in this format (connect_private upgrades the private database).
        rollups, dims = {}, {}
    for table in SCHEMAS:
        if table in ROLLUPS:
            files = [str(pub / f) for day_files in rollups.get(table, {}).values()
                     for f in day_files]
            if files:
                # hive partitioning turns day=YYYY-MM-DD into a date column and lets DuckDB
                # skip whole files for days outside a query's range.
                con.read_parquet(files, hive_partitioning=True).create_view(table)
                continue
        elif table in dims:
            con.read_parquet(str(pub / dims[table])).create_view(table)
            continue
        con.execute(f"create view {table} as {_empty_select(table)}")
    con.execute(
        "create table reader_info as select $seq::bigint as seq, $watermark::bigint as watermark,"
        " $version::varchar as catalogue_version",
        {"seq": int(manifest.get("seq", 0)), "watermark": int(manifest.get("watermark", 0)),
         "version": manifest.get("catalogue_version")},
    )
    return con
