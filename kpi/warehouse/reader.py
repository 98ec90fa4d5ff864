"""Readers of the warehouse: in-memory DuckDB connections over the published files.

``open_reader(settings)`` returns a connection with one view per published table over the
files of the current manifest, and the shared macros of sql/macros/ that the indicators use:
no process ever holds a lock that another needs. A dashboard worker uses ``shared_reader``,
rebuilt only when a run published; `snapshot_id` and `period_fingerprint` name what a reader
sees, for caches.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from kpi.processes import remove_abandoned
from kpi.settings import Settings
from kpi.warehouse import models, statistics
from kpi.warehouse.published import (
    FORMAT,
    MANIFEST,
    PACKED,
    ROLLUPS,
    SCHEMAS,
    SPAN_ROLLUPS,
    published_dir,
    read_manifest,
    span_start,
)


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
    days and months that overlap the range and of the quarters inside it, less the tables in
    `ignore` (those the caller's queries never read).
    """
    manifest = _current_manifest(settings)
    low, high = start.isoformat(), end.isoformat()
    skip = set(ignore)
    dims = {k: v for k, v in manifest.get("dimensions", {}).items() if k not in skip}
    digest = hashlib.blake2b(digest_size=12)
    digest.update(json.dumps([manifest.get("format"), dims], sort_keys=True).encode())
    for table, days in sorted(manifest.get("rollups", {}).items()):
        if table in skip or PACKED.get(table) in skip:
            continue
        # a packed month, and a month's sums, are keyed by the month's first day, which may
        # lie before the period: two_span_rows reads a month that a period covers all but a
        # few days of from its sums (kpi.warehouse.spans). A quarter is only read whole.
        month = table in PACKED or SPAN_ROLLUPS.get(table, ("", ""))[1] == "month"
        first = span_start(low, "month") if month else low
        for day, files in days.items():
            if first <= day <= high:
                digest.update(f"{table}/{day}:{','.join(files)};".encode())
    return digest.hexdigest()




_shared: dict[Path, tuple[tuple[int, int, int], duckdb.DuckDBPyConnection]] = {}
# The dimensions the shared reader copies into memory when it opens: every indicator joins
# some of them (every label anti-join reads all 424,065 label norms of the catalogue; most
# indicators name concepts from concept_names), and a copy spares decoding them again at each
# query: about a tenth of the indicators' CPU at 10 M events, for some 40 ms and 45 MB per
# worker once per publish. All but concept_labels, the largest, which few queries read.
SHARED_IN_MEMORY = ("concept_label_norms", "concept_names", "concepts", "concept_keys",
                    "implementers", "catalogue_versions", "concept_collections",
                    "concept_successors")
_shared_lock = threading.Lock()
# The dimensions copied into memory at the same time (open_reader): a worker's first request
# after each run opens its reader, 0.24-0.27 s at 10 M events against 0.29-0.32 s with one
# copy at a time (medians of 9, in turn).
COPY_THREADS = 2
_LARGEST_COPIES = ("concept_label_norms", "concept_names")


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
            held = _shared[folder] = (key, open_reader(settings, in_memory=SHARED_IN_MEMORY))
        return held[1].cursor()


def _empty_select(table: str) -> str:
    # Built only from the constant SCHEMAS above: no value from outside reaches this SQL. A
    # month or quarter table has its daily table's columns.
    if table in SPAN_ROLLUPS:
        table = f"{table.rsplit('_', 1)[0]}_daily"
    cols = ", ".join(f"cast(null as {typ}) as {name}" for name, typ in SCHEMAS[table])
    return f"select {cols} limit 0"


# What a reader's queries may hold in memory at once (two at a time in a dashboard worker).
QUERY_MEMORY_BYTES = 512 * 1024 * 1024
# Where a reader's queries spill what goes beyond it: a folder per reader in the host's temporary
# folder, made by DuckDB when a query first spills and removed when the reader closes. DuckDB's
# default, a .tmp folder in the process's working directory, may be anywhere, read-only or
# shared: a benchmark at 30 M events left 200 MB of spilled blocks in its working directory.
_SPILL_PREFIX = "esco-kpi-reader-"
_readers = itertools.count()

_READ_PARTS = ("select * from read_parquet($files, hive_partitioning = true, "
               "hive_types = {'day': 'date'}, hive_types_autocast = false)")
# A month's packed files (kpi.warehouse.published.PACKED) hold their rows' days.
_READ_PACKED = "select * from read_parquet($packed, hive_partitioning = false)"


def _create_span_view(con: duckdb.DuckDBPyConnection, pub: Path,
                      rollups: dict[str, dict[str, list[str]]], table: str) -> None:
    """The view of a month or quarter table: its published sums, and for every span without
    them (the current month and quarter, or a warehouse published before they existed) the
    rows of its days (and, for a quarter, of its months that have sums) as they are, `day`
    made the span's first day. Either way the span's rows add up to the same figures, so the
    macros of sql/macros/span_rows.sql read a span from here whether it has sums or not."""
    _, span = SPAN_ROLLUPS[table]
    base = table.rsplit("_", 1)[0]
    have = rollups.get(table, {})
    parts: list[str] = []  # files whose day is relabelled to their span's first day
    done: set[str] = set()
    if span == "quarter":  # the months that have sums, then the days of the others
        for month, files in rollups.get(f"{base}_monthly", {}).items():
            if span_start(month, span) not in have:
                parts.extend(files)
                done.add(month)
    for day, files in rollups.get(f"{base}_daily", {}).items():
        if span_start(day, span) not in have and span_start(day, "month") not in done:
            parts.extend(files)
    packed = [f for month, files in rollups.get(f"{base}_daily_packed", {}).items()
              if span_start(month, span) not in have and month not in done for f in files]
    sums = [str(pub / f) for files in have.values() for f in files]
    selects, params = [], {}
    if sums:
        selects.append(_READ_PARTS)
        params["files"] = sums
    # the span comes from the constant SPAN_ROLLUPS: no value from outside reaches this SQL
    relabel = f"select * replace (cast(date_trunc('{span}', day) as date) as day)"
    if parts:
        selects.append(_READ_PARTS.replace("$files", "$parts").replace("select *", relabel))
        params["parts"] = [str(pub / f) for f in parts]
    if packed:
        selects.append(_READ_PACKED.replace("select *", relabel))
        params["packed"] = [str(pub / f) for f in packed]
    if selects:
        con.sql(" union all by name ".join(selects), params=params).create_view(table)
    else:
        con.execute(f"create view {table} as {_empty_select(table)}")


def install_empty_views(con: duckdb.DuckDBPyConnection) -> None:
    """One view per rollup with its columns and no rows (usage_empty, ...): what span_rows
    (sql/macros/span_rows.sql) reads instead of a grain that a period holds none of."""
    for table in ROLLUPS:
        # names from the constant ROLLUPS and SCHEMAS: no value from outside reaches this SQL
        con.execute(f"create or replace view {table.removesuffix('_daily')}_empty as "
                    f"{_empty_select(table)}")


def install_span_views(con: duckdb.DuckDBPyConnection) -> None:
    """The month and quarter tables (SPAN_ROLLUPS) as views of the daily tables' rows, `day`
    made the span's first day: for a warehouse built in memory from SCHEMAS alone (a benchmark
    or a test), whose months and quarters have no sums, so that the indicators read it."""
    for table, (_, span) in SPAN_ROLLUPS.items():
        # names and the span come from the constants of kpi.warehouse.published
        con.execute(f"create or replace view {table} as select * replace "
                    f"(cast(date_trunc('{span}', day) as date) as day) "
                    f"from {table.rsplit('_', 1)[0]}_daily")
    install_empty_views(con)


def install_reader_tables(con: duckdb.DuckDBPyConnection, materialise: bool) -> None:
    """What a reader derives from the published tables (sql/reader/): used_label_norms. Made
    as a table when `materialise` (a reader kept for many queries: a dashboard worker's). Else
    (a reader opened for one export or query) it is a view of every row of
    concept_label_norms, which gives every join with the events' labels the same answer
    without the cost of making the table: 80 ms at each open at 10 M events as a table, and up
    to 45 CPU-ms more per query as a view of its own query."""
    if materialise:
        con.sql(models.sql("reader/used_label_norms")).create("used_label_norms")
    else:
        con.execute("create view used_label_norms as "
                    "select concept_key, language, label_norm from concept_label_norms")


def _spill_folder() -> Path:
    """A new reader's spill folder (see _SPILL_PREFIX); the first in a process also removes
    those of readers whose process was killed before closing them."""
    parent = Path(tempfile.gettempdir())
    number = next(_readers)
    if number == 0:
        remove_abandoned(parent, _SPILL_PREFIX)
    return parent / f"{_SPILL_PREFIX}{os.getpid()}-{number}"


def _copy(con: duckdb.DuckDBPyConnection, path: str, table: str) -> None:
    """A dimension's Parquet file as a table in memory, on a cursor of its own."""
    cursor = con.cursor()
    try:
        cursor.read_parquet(path).create(table)
    finally:
        cursor.close()


def open_reader(settings: Settings, in_memory: tuple[str, ...] = ()
                ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per published table (current manifest),
    and a table instead for the dimensions named in `in_memory`.

    Views: usage_daily, labels_daily, proposals_daily, feedback_daily, activity_daily, their
    sums per month and quarter (usage_monthly, usage_quarterly, ...), their empty views
    (usage_empty, ...: install_empty_views), quality_daily, concepts,
    concept_labels, concept_names, catalogue_versions, implementers; and the relations of
    install_reader_tables (used_label_norms).
    Never blocks and never blocks the aggregator. Use it for one request or one export, then
    close it: files superseded by a later run are deleted after RETIRE_GRACE_SECONDS.
    """
    manifest = _current_manifest(settings)
    pub = published_dir(settings)
    con = duckdb.connect(":memory:", config={"memory_limit": f"{QUERY_MEMORY_BYTES}B",
                                             "temp_directory": str(_spill_folder())})
    rollups = manifest.get("rollups", {})
    dims = manifest.get("dimensions", {})
    if str(manifest.get("format", FORMAT)) != FORMAT:
        # Published by an older version: readers see no data until the next aggregation run
        # rewrites it in this format (connect_private upgrades the private database).
        rollups, dims = {}, {}
    copies: list[str] = []  # the dimensions held in memory, copied below
    for table in (*SCHEMAS, *SPAN_ROLLUPS):
        if table in SPAN_ROLLUPS:
            _create_span_view(con, pub, rollups, table)
            continue
        if table in ROLLUPS:
            files = [str(pub / f) for day_files in rollups.get(table, {}).values()
                     for f in day_files]
            packed = [str(pub / f) for month_files in rollups.get(f"{table}_packed", {}).values()
                      for f in month_files]
            # hive partitioning turns day=YYYY-MM-DD into a date column and lets DuckDB skip
            # whole files for days outside a query's range. Its type is given, not guessed
            # from every file's path at each query: a third of the fixed cost of a query over
            # months of daily files. The ended months' packed files hold their days: DuckDB
            # skips the row groups of other days by their statistics.
            selects = ([_READ_PARTS] if files else []) + ([_READ_PACKED] if packed else [])
            if selects:
                params = {k: v for k, v in (("files", files), ("packed", packed)) if v}
                con.sql(" union all by name ".join(selects), params=params).create_view(table)
                continue
        elif table in dims:
            if table in in_memory:
                copies.append(table)
            else:
                con.read_parquet(str(pub / dims[table])).create_view(table)
            continue
        con.execute(f"create view {table} as {_empty_select(table)}")
    install_empty_views(con)
    # The copies two at a time, the largest first (DuckDB reads such a small file on one
    # thread), and used_label_norms made here as soon as the label norms it reads are in.
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        copied = {t: pool.submit(_copy, con, str(pub / dims[t]), t)
                  for t in sorted(copies, key=lambda t: t not in _LARGEST_COPIES)}
        if "concept_label_norms" in copied:
            copied["concept_label_norms"].result()
        # held in memory as the dimensions they are made from are
        install_reader_tables(con, materialise="concept_label_norms" in in_memory)
        for done in copied.values():
            done.result()
    models.install(con, "macros")
    statistics.install(con)
    # min_implementers: how many implementers a trend needs (concept_trends), from the config
    con.execute(
        "create table reader_info as select $seq::bigint as seq, $watermark::bigint as watermark,"
        " $version::varchar as catalogue_version, $min_implementers::integer as min_implementers",
        {"seq": int(manifest.get("seq", 0)), "watermark": int(manifest.get("watermark", 0)),
         "version": manifest.get("catalogue_version"),
         "min_implementers": settings["privacy.export_min_implementers"]},
    )
    if in_memory:
        # the tables it holds (the copies, reader_info) are on top of what the queries may
        # use, not taken from it (the limit is a whole number of bytes computed here)
        copies = con.sql("select coalesce(sum(memory_usage_bytes), 0) from duckdb_memory() "
                         "where tag = 'IN_MEMORY_TABLE'").fetchall()[0][0]
        con.execute(f"set memory_limit = '{QUERY_MEMORY_BYTES + int(copies)}B'")
    return con
