"""What the aggregator publishes for readers: Parquet files and the manifest that names them.

The dashboard workers and the export must keep answering while an aggregation runs, so readers
never open the aggregator's private database (kpi.warehouse.private). Instead:

* ``<warehouse>/published/`` holds the daily rollups (sql/rollups/) as Parquet files
  partitioned by day (``usage_daily/day=2026-07-01/r00000012_<uuid>.parquet``), written only
  for the days a run touched, and the small dimension tables (sql/dimensions/) as single
  Parquet files. Every file is written once under a new name and never modified. Beside each
  daily rollup, its sums per month and per quarter (``usage_monthly/day=2026-07-01/...``,
  ``usage_quarterly/...``) for the months and quarters that have ended: a period covering
  whole months reads a few of those rows instead of every day's.
* A touched day is either *recomputed* (a dirty day: its files are replaced by one written
  from all of its events) or *added to* (the rows above the published watermark, summed, go
  into one more file beside its files; its ended month and quarter get one more file each
  too). Readers sum every file of a day, so both give the same figures; additions keep a
  small run's cost proportional to its rows, and a day, month or quarter with more than
  MAX_FILES_PER_DAY (MAX_FILES_PER_SPAN) files has its added files merged into one.
* Once a month has ended, its days' rows go into one file per rollup, `day` kept inside
  (``usage_daily_packed/month=2026-07-01/...``): a reader opening a rollup binds one file per
  ended month instead of one per day, however long the history. Rows added later to those
  days go into one more file of the month (merged as a month's sums are); a day of a packed
  month that must be recomputed has its whole month recomputed, from the private events (the
  packed file holds the other days' rows only).
* ``<warehouse>/published/manifest.json`` names the current file(s) of every day and dimension.
  It is replaced atomically (write, fsync, ``os.replace``) once every file it names is on disk,
  so a reader sees either the previous run's state or the new one, never half of a run.
  Superseded files are deleted only after a grace period, so that a reader which read the
  previous manifest a moment ago can still scan them.

kpi.warehouse.reader opens the current manifest's files as views.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from kpi.settings import Settings
from kpi.warehouse import models
from kpi.warehouse.models import transaction
from kpi.warehouse.private import get_meta, set_meta
from kpi.warehouse.spans import next_month

MANIFEST = "manifest.json"
# The format of the published files and the manifest, which readers check: bumped whenever a
# published table changes shape or meaning (the aggregator's private tables have a format of
# their own, kpi.warehouse.private.FORMAT).
FORMAT = "4"
PUBLISHED = "published"
# How long a superseded Parquet file stays on disk after the manifest stopped naming it: a
# reader opened before the switch keeps working this long.
RETIRE_GRACE_SECONDS = 900.0
# How many files a day's rollup may hold: each publish that adds rows to a day writes one more
# file beside its others (readers sum them), and one more than this merges the added ones into
# one (the same sums: the month's and quarter's sums stay as they are). Readers open every
# file of the days they read, and a 30-day query over four files a day takes about a quarter
# longer than over one; the current day takes an addition at every run.
MAX_FILES_PER_DAY = 4
# The same for a month's or a quarter's sums and a packed month's days, which late events add
# to: a few small files beside their large one cost a reader little. Both at least 2 (see
# _merge_crowded).
MAX_FILES_PER_SPAN = 8
# Rollups and dimensions written at the same time (see Writers).
PUBLISH_WORKERS = 2
# Files and folders fsynced at the same time before the manifest names them (_fsync_written).
FSYNC_WORKERS = 16
_LARGEST = ("rollups/usage_daily", "rollups/activity_daily", "dimensions/concept_label_norms",
            "dimensions/concept_labels")

# The daily rollups (sql/rollups/) and the dimensions (sql/dimensions/), by table name.
# Rollups are recomputed for the dirty days only; weeks, months and quarters are sums over
# them. Dimensions are one Parquet file each, rewritten when their source changed.
ROLLUPS: tuple[str, ...] = tuple(n for n in models.names("rollups") if n.endswith("_daily"))
# The same rollups summed over whole months and quarters (sql/rollups/span_totals.sql), by
# table name: (the table they sum, the span). A month sums its days, a quarter its months;
# only months and quarters that have ended get them (span_closed). Their columns are the daily
# table's (day: the span's first day). Not in SCHEMAS: a reader built from SCHEMAS alone (with
# daily rows only) fails on them instead of reading no sums.
SPAN_ROLLUPS: dict[str, tuple[str, str]] = {
    **{f"{t.removesuffix('_daily')}_monthly": (t, "month") for t in ROLLUPS},
    **{f"{t.removesuffix('_daily')}_quarterly": (f"{t.removesuffix('_daily')}_monthly",
                                                  "quarter") for t in ROLLUPS},
}
# The days of the months that have ended, one file per month (sql/rollups/packed_days.sql), by
# table name: the daily table whose rows they hold. A daily table keeps the days of the
# current month (and of an ended month until the next publish packs it).
PACKED: dict[str, str] = {f"{t}_packed": t for t in ROLLUPS}
DIMENSIONS: tuple[str, ...] = models.names("dimensions")
CATALOGUE_DIMENSIONS = ("concepts", "concept_labels", "concept_names", "catalogue_versions",
                        "concept_label_norms", "concept_collections", "concept_successors")

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
        ("concepts", "bigint"), ("labels", "bigint"), ("languages", "varchar"),
    ),
    "concept_collections": (
        ("collection", "varchar"), ("uri", "varchar"), ("version", "varchar"),
    ),
    "concept_successors": (
        ("uri", "varchar"), ("successor_uri", "varchar"), ("version", "varchar"),
        ("source", "varchar"),
    ),
    "implementers": (
        ("id", "integer"), ("name", "varchar"), ("country", "varchar"), ("sector", "varchar"),
    ),
}


def published_dir(settings: Settings) -> Path:
    return settings.warehouse_path / PUBLISHED


def read_manifest(settings: Settings) -> dict[str, Any]:
    """The current manifest, or an empty one before the first aggregation."""
    path = published_dir(settings) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"seq": 0, "rollups": {}, "dimensions": {}, "retired": []}


@dataclass(frozen=True)
class PublishSummary:
    seq: int
    days: int
    files_written: int
    files_deleted: int


def stage_changes(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any], recompute: bool
                  ) -> int:
    """Stage what the published rollups do not hold yet, the private events above the
    manifest's watermark, for `publish`: as additions to their days (rows on dirty days left
    out: those days are recomputed whole), or with `recompute` (a large backlog) by marking
    all their days dirty. Returns how many days get additions.

    The manifest itself says what is published: after a crash at any point, the next run
    stages the same rows again, and a publish that did switch the manifest is never added
    twice.
    """
    params = {"published": int(manifest.get("watermark", 0))}
    with transaction(con):
        # emptied first: rows staged by a run that died may now lie on dirty days
        models.run(con, "private/clear_added_events")
        if recompute:
            models.run(con, "private/mark_unpublished_days_dirty", params)
        # a packed month with a dirty day is recomputed whole (see the module's docstring);
        # before staging, which leaves the dirty days' rows out
        models.run(con, "private/mark_packed_months_dirty",
                   {"months": _packed_months(manifest)})
        if not recompute:
            models.run(con, "private/stage_added_events", params)
    return len(models.run(con, "private/added_event_days").fetchall())


def publish(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    dimensions: Iterable[str],
    extra: dict[str, Any] | None = None,
) -> PublishSummary:
    """Write the rollups of the dirty days, the additions to other days (stage_changes) and
    the given dimensions, then switch the manifest.

    A dirty day's files are replaced by its recomputed rollups; an added day keeps its files and
    gets one more with the added rows' sums, and so does each closed month and quarter holding
    it. The days of ended months are written into their months' packed files instead
    (_pack_months). Cost is proportional to the dirty days' rollups and the added rows, not to
    the whole warehouse. Safe to call again after a crash: the dirty days and the staged rows
    are cleared only once the manifest names their files.
    """
    pub = published_dir(settings)
    pub.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(settings)
    # A publish that dies after writing files but before switching the manifest leaves files
    # that no manifest names: the mark is set (and committed) before any file is written, and
    # the publishes after a death look for such files until none is left (_collect_garbage).
    sweep = get_meta(con, "orphans", "1") == "1"
    set_meta(con, "orphans", "1")
    seq = int(manifest.get("seq", 0)) + 1
    # Unique per attempt: files of an attempt that crashed before switching the manifest must
    # never be taken for this attempt's files.
    tag = f"r{seq:08d}{uuid.uuid4().hex[:8]}"
    now = time.time()
    retired: list[list[Any]] = [list(r) for r in manifest.get("retired", [])]
    rollups: dict[str, dict[str, list[str]]] = manifest.get("rollups", {})
    dims: dict[str, str] = manifest.get("dimensions", {})

    # stage_changes did it already; done again so that a publish on its own is safe too
    with transaction(con):
        models.run(con, "private/mark_packed_months_dirty",
                   {"months": _packed_months(manifest)})
    dirty = [row[0].isoformat()
             for row in models.run(con, "private/dirty_days").fetchall()]
    added = [row[0].isoformat()
             for row in models.run(con, "private/added_event_days").fetchall()]
    dimensions = list(dict.fromkeys(dimensions))
    # The days of the current month are written a file per day; those of ended months go
    # straight into their months' packed files (_pack_months), one more file per month.
    today = datetime.now(UTC).date()
    month_start = date(today.year, today.month, 1).isoformat()
    ended = sorted({span_start(day, "month") for day in (*dirty, *added) if day < month_start})
    # An ended month with a dirty day (a packed month is then dirty whole: stage_changes)
    # gets a statement of its own, written as one file: a full refresh's months are large, and
    # DuckDB's partitioned write costs more than these statements together (usage_daily of
    # 10 M events: 4.0 CPU-s against 2.4, bench/RESULTS.md).
    recomputed = sorted({span_start(day, "month") for day in dirty if day < month_start})
    # The other ended months take only added rows: one statement for all of them.
    partly = [month for month in ended if month not in recomputed]
    current_days = any(day >= month_start for day in (*dirty, *added))
    jobs: list[_Job] = []
    for table in ROLLUPS:
        # The current month's days and the months of `partly`: one statement per table,
        # DuckDB writes one file per day under day=YYYY-MM-DD/, one per month under
        # month=YYYY-MM-01/.
        if current_days:
            (pub / table).mkdir(exist_ok=True)
            jobs.append((f"rollups/{table}", str(pub / table), {
                "partition_by": ["day"], "filename_pattern": f"{tag}_{{uuid}}",
                "append": True}, {}, ("from", month_start)))
        for month in recomputed:
            folder = pub / f"{table}_packed" / f"month={month}"
            folder.mkdir(parents=True, exist_ok=True)
            jobs.append((f"rollups/{table}", str(folder / f"{tag}_{uuid.uuid4().hex}.parquet"),
                         {}, {}, ("month", month)))
        if partly:
            (pub / f"{table}_packed").mkdir(exist_ok=True)
            jobs.append((f"rollups/{table}", str(pub / f"{table}_packed"), {
                "partition_by": ["month"], "filename_pattern": f"{tag}_{{uuid}}",
                "append": True}, {}, ("months", partly)))
    if dimensions:
        (pub / "dimensions").mkdir(exist_ok=True)
    for name in dimensions:
        jobs.append((f"dimensions/{name}", str(pub / f"dimensions/{name}-{tag}.parquet"), {},
                     {}, None))
    # the largest first, so that no large one is left running alone at the end
    jobs.sort(key=lambda job: job[0] not in _LARGEST)
    # one set of writers (threads and cursors) for every batch of files of this publish
    with Writers(con) as writers:
        writers.write(jobs)
        written, additions, fresh = _record_days(pub, tag, dirty, added, ended, rollups,
                                                 retired, now)
        written += _pack_months(writers, pub, tag, dirty, fresh, rollups, retired, now)
        written += _publish_spans(writers, pub, tag, dirty, additions, rollups, retired, now)
        written += _merge_crowded(writers, pub, tag, rollups, retired, now)

    for name in dimensions:
        rel = f"dimensions/{name}-{tag}.parquet"
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
    _fsync_written(pub, new_manifest, tag)
    _atomic_write(pub / MANIFEST, json.dumps(new_manifest, indent=1).encode())
    models.run(con, "private/forget_published_changes")
    deleted, orphans_left = _collect_garbage(pub, new_manifest, now, sweep)
    set_meta(con, "orphans", "1" if orphans_left else "0")
    return PublishSummary(seq=seq, days=len(dirty) + len(added), files_written=written,
                          files_deleted=deleted)


def _record_days(pub: Path, tag: str, dirty: list[str], added: list[str], ended: list[str],
                 rollups: dict[str, dict[str, list[str]]], retired: list[list[Any]],
                 now: float) -> tuple[int, dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """Name in `rollups` the daily files this publish wrote (a dirty day's replace its old
    ones, which go to `retired`; an added day's join them). Returns how many, the ended months'
    new files per daily table (`additions`, for their months' and quarters' sums) and per
    packed table and month (`fresh`, for _pack_months)."""
    written = 0
    additions: dict[str, list[str]] = {}  # table: this run's files of the added days
    fresh: dict[str, dict[str, list[str]]] = {}  # packed table: month: this run's files
    if not (dirty or added):
        return written, additions, fresh
    for table in ROLLUPS:
        name = f"{table}_packed"
        fresh[name] = {m: new for m in ended if (new := _new_files(pub, name, m, tag))}
        # the ended months' added rows, for the sums of their months and quarters
        additions[table] = [f for files in fresh[name].values() for f in files]
        current = rollups.setdefault(table, {})
        for day in dirty:
            new = _new_files(pub, table, day, tag)
            retired.extend([old, now] for old in current.get(day, []))
            if new:
                current[day] = new
                written += len(new)
            else:
                current.pop(day, None)
        for day in added:
            new = _new_files(pub, table, day, tag)
            if new:
                current[day] = [*current.get(day, []), *new]
                written += len(new)
        if not current:
            rollups.pop(table)
    return written, additions, fresh


def _packed_months(manifest: dict[str, Any]) -> list[date]:
    """The months (their first days) whose days the manifest names packed files of."""
    return sorted({date.fromisoformat(month) for name in PACKED
                   for month in manifest.get("rollups", {}).get(name, {})})


def span_start(day: str, span: str) -> str:
    """The first day of the month or quarter holding a day (ISO dates)."""
    month = int(day[5:7])
    if span == "quarter":
        month = 3 * ((month - 1) // 3) + 1
    return f"{day[:4]}-{month:02d}-01"


def span_closed(start: str, span: str, today: date) -> bool:
    """Whether a month or quarter (by its first day) ended before the month holding `today`
    began: only those get month and quarter rows. The current month and quarter take events
    at every run; rewriting their sums each time would cost more than their days do to read.
    """
    months = 3 if span == "quarter" else 1
    year, month = int(start[:4]), int(start[5:7]) + months
    return (year + (month - 1) // 12, (month - 1) % 12 + 1) <= (today.year, today.month)


def missing_spans(rollups: dict[str, dict[str, list[str]]]) -> list[tuple[str, str]]:
    """(table, span start) of the closed months and quarters that have days but no sums yet,
    and (daily table, month) of the closed months whose days are not packed yet (the next
    publish writes them; readers read their days meanwhile)."""
    today = datetime.now(UTC).date()
    out = [(table, month) for table in ROLLUPS
           for month in sorted({span_start(day, "month") for day in rollups.get(table, {})})
           if span_closed(month, "month", today)]
    for name, (_, span) in SPAN_ROLLUPS.items():
        daily = f"{name.rsplit('_', 1)[0]}_daily"
        days = [*rollups.get(daily, {}), *rollups.get(f"{daily}_packed", {})]
        starts = {span_start(day, span) for day in days}
        out.extend((name, start) for start in sorted(starts - set(rollups.get(name, {})))
                   if span_closed(start, span, today))
    return out


def _pack_months(writers: Writers, pub: Path, tag: str, dirty: list[str],
                 fresh: dict[str, dict[str, list[str]]],
                 rollups: dict[str, dict[str, list[str]]], retired: list[list[Any]],
                 now: float) -> int:
    """Bring the packed files of the ended months (PACKED) up to date: a month recomputed
    whole (stage_changes: a dirty day in a packed month makes the whole month dirty) has its
    files replaced; this run's files of ended months (`fresh`: packed table, month, files)
    are added to their months; and the days that a daily table still holds of an ended month
    (a month that has just ended, or a warehouse published before packing) are gathered into
    one more file of their month (sql/rollups/packed_days.sql). Returns the files written;
    `rollups` and `retired` are updated in place."""
    today = datetime.now(UTC).date()
    dirty_months = {span_start(day, "month") for day in dirty}
    jobs: list[_Job] = []
    leftover: dict[str, dict[str, list[str]]] = {}  # packed table: month: its days gathered
    for name, table in PACKED.items():
        packed = rollups.get(name, {})
        # a month recomputed whole replaces its packed files, even with no rows left in it
        for month in dirty_months & set(packed):
            retired.extend([old, now] for old in packed.pop(month))
        for month, files in fresh.get(name, {}).items():
            packed[month] = [*packed.get(month, []), *files]
        days: dict[str, list[str]] = {}
        for day in rollups.get(table, {}):
            month = span_start(day, "month")
            if span_closed(month, "month", today):
                days.setdefault(month, []).append(day)
        leftover[name] = days
        if days:
            (pub / name).mkdir(exist_ok=True)
            # one statement per table: DuckDB writes one file per month under month=...
            jobs.append(("rollups/packed_days", str(pub / name), {
                "partition_by": ["month"], "filename_pattern": f"{tag}p_{{uuid}}",
                "append": True}, {"files": [str(pub / f) for month in sorted(days)
                                            for day in sorted(days[month])
                                            for f in rollups[table][day]]}, None))
        if packed:
            rollups[name] = packed
        else:
            rollups.pop(name, None)
    writers.write(jobs)
    written = sum(len(files) for months in fresh.values() for files in months.values())
    for name, months in leftover.items():
        table = PACKED[name]
        for month, days in months.items():
            new = _new_files(pub, name, month, tag + "p")
            for day in days:
                retired.extend([old, now] for old in rollups[table].pop(day))
            packed = rollups.setdefault(name, {})
            # before this run's additions: a month's first file holds most of its rows
            # (_merge_crowded merges the others)
            packed[month] = [*new, *packed.get(month, [])]
            written += len(new)
        if table in rollups and not rollups[table]:
            rollups.pop(table)
    return written


def _publish_spans(writers: Writers, pub: Path, tag: str, dirty: list[str],
                   additions: dict[str, list[str]], rollups: dict[str, dict[str, list[str]]],
                   retired: list[list[Any]], now: float) -> int:
    """Bring the month and quarter rows (SPAN_ROLLUPS) of the closed spans (span_closed) up to
    date. Recompute those that hold a dirty day or that have no rows yet (a span that has just
    closed, or a warehouse published before these existed); to the others that hold an added
    day, add one file with the sums of this run's additions (`additions`: the new files of the
    added days, by daily table); drop the rows of spans left without days. Months first: a
    recomputed quarter sums its three months' files. Returns the files written; `rollups` and
    `retired` are updated in place."""
    today = datetime.now(UTC).date()
    written = 0
    for grain in ("month", "quarter"):
        jobs: list[_Job] = []
        adding: dict[str, list[str]] = {}  # table: the spans it adds a file to
        for name, (source, span) in SPAN_ROLLUPS.items():
            if span != grain:
                continue
            current = rollups.setdefault(name, {})
            by_span: dict[str, list[str]] = {}
            # a month's days: its packed files (after _pack_months, an ended month has no
            # other); a quarter's months: their sums
            for parts in (rollups.get(source, {}), rollups.get(f"{source}_packed", {})):
                for part, files in parts.items():
                    by_span.setdefault(span_start(part, span), []).extend(files)
            closed = {start for start in by_span if span_closed(start, span, today)}
            added: dict[str, list[str]] = {}  # span: this run's files of its added days
            for rel in additions.get(f"{name.rsplit('_', 1)[0]}_daily", ()):
                added.setdefault(span_start(_day_of(rel), span), []).append(rel)
            todo = ({span_start(day, span) for day in dirty} & closed) | (closed ^ set(current))
            for start in sorted(todo):
                retired.extend([old, now] for old in current.pop(start, []))
                if start not in closed:
                    continue
                rel = f"{name}/day={start}/{tag}_{uuid.uuid4().hex}.parquet"
                (pub / rel).parent.mkdir(parents=True, exist_ok=True)
                files = [str(pub / f) for f in by_span[start]]
                jobs.append(("rollups/span_totals", str(pub / rel), {}, {"files": files},
                             None))
                current[start] = [rel]
                written += 1
            adding[name] = sorted((set(added) & closed) - todo)
            if adding[name]:
                # one statement per table: DuckDB writes one file per span under day=...
                jobs.append(("rollups/span_additions", str(pub / name), {
                    "partition_by": ["day"], "filename_pattern": f"{tag}_{{uuid}}",
                    "append": True}, {"files": [str(pub / f) for start in adding[name]
                                                for f in added[start]], "span": span}, None))
            if not current:
                rollups.pop(name)
        writers.write(jobs)
        for name, starts in adding.items():
            for start in starts:
                new = _new_files(pub, name, start, tag)
                rollups[name][start] = [*rollups[name][start], *new]
                written += len(new)
    return written


def _merge_crowded(writers: Writers, pub: Path, tag: str,
                   rollups: dict[str, dict[str, list[str]]], retired: list[list[Any]],
                   now: float) -> int:
    """In every day (month, quarter, packed month) of a rollup that holds more than
    MAX_FILES_PER_DAY (MAX_FILES_PER_SPAN) files, merge all but the first into one file with the
    same sums. The first file is the part's recomputed rows, nearly all of them: it is left as
    it is, so a merge costs what the additions weigh. Returns the files written; `rollups` and
    `retired` are updated in place."""
    jobs: list[_Job] = []
    merging: dict[str, list[str]] = {}  # table: the parts it merges
    for table, parts in rollups.items():
        most = MAX_FILES_PER_DAY if table in ROLLUPS else MAX_FILES_PER_SPAN
        merging[table] = [part for part, files in parts.items() if len(files) > most]
        if not merging[table]:
            continue
        files = [str(pub / f) for part in merging[table] for f in rollups[table][part][1:]]
        if table in PACKED:
            # packed months: their day rows, one file per month under month=...
            jobs.append(("rollups/packed_days", str(pub / table), {
                "partition_by": ["month"], "filename_pattern": f"{tag}m_{{uuid}}",
                "append": True}, {"files": files}, None))
            continue
        # one statement per table: the added files summed per part (a part's first day is
        # its own "day" span), one file per part under day=...
        jobs.append(("rollups/span_additions", str(pub / table), {
            "partition_by": ["day"], "filename_pattern": f"{tag}m_{{uuid}}",
            "append": True}, {"files": files, "span": "day"}, None))
    writers.write(jobs)
    written = 0
    for table, parts in merging.items():
        for part in parts:
            first, *added = rollups[table][part]
            retired.extend([old, now] for old in added)
            merged = _new_files(pub, table, part, tag + "m")
            rollups[table][part] = [first, *merged]
            written += len(merged)
    return written


def _new_files(pub: Path, table: str, day: str, tag: str) -> list[str]:
    """The files this run (`tag`) wrote into one day's (or span's, or packed month's) folder
    of a table."""
    key = "month" if table in PACKED else "day"
    folder = pub / table / f"{key}={day}"
    return sorted(f"{table}/{key}={day}/{p.name}"
                  for p in (folder.iterdir() if folder.is_dir() else ())
                  if p.name.startswith(tag + "_"))


def _day_of(rel: str) -> str:
    """The day (or packed month) of a file's path ("usage_daily/day=2026-07-01/r..." or
    "usage_daily_packed/month=2026-07-01/r..." -> "2026-07-01")."""
    return rel.split("=", 1)[1][:10]


# A file to write: (model, path, to_parquet options, parameters, part). `part` keeps the
# rows of the days from a first day on, ("from", "2026-11-01"); of one ended month,
# ("month", "2026-10-01"), or of several, ("months", ["2026-08-01", "2026-10-01"]), in the
# packed layout (`day` moved last; with "months", their month added, to partition by); None
# keeps every row.
_Job = tuple[str, str, dict[str, Any], dict[str, Any], tuple[str, Any] | None]


def _rows(con: duckdb.DuckDBPyConnection, job: _Job) -> duckdb.DuckDBPyRelation:
    """The rows a job writes: its model's result, of the part of the days it asks for."""
    model, _, _, params, part = job
    rows = con.sql(models.sql(model), params=params or None)
    if part is None:
        return rows
    # expressions, not SQL text: the bounds are values (DuckDB pushes the filter down to the
    # events the model groups)
    kind, which = part
    day = duckdb.ColumnExpression("day")
    if kind == "from":
        return rows.filter(day >= _date(which))
    months = [which] if kind == "month" else which
    rows = rows.filter((day >= _date(months[0]))
                       & (day < _date(next_month(date.fromisoformat(months[-1])))))
    columns = [duckdb.ColumnExpression(c) for c in rows.columns if c != "day"]
    if kind == "month":
        return rows.project(*columns, day)
    # several months, perhaps with others between them
    month = duckdb.FunctionExpression("date_trunc", duckdb.ConstantExpression("month"), day
                                      ).cast(duckdb.sqltype("DATE"))
    return rows.filter(month.isin(*(_date(m) for m in months))).project(
        *columns, day, month.alias("month"))


def _date(day: str | date) -> duckdb.Expression:
    return duckdb.ConstantExpression(date.fromisoformat(day) if isinstance(day, str) else day)


class Writers:
    """What writes a publish's files (_Job), several at a time (use it as a context manager).

    A run's rollups and dimensions are independent queries, and most of them are small (a few
    days): one at a time they leave DuckDB's threads waiting on each other's planning and file
    writing. Each writer thread has its own cursor (a cursor is a connection of its own, with
    its own temp macros: sql/private's are installed on it first). The threads and their
    cursors are made once per publish, not per batch of jobs: a publish of a few new events
    writes five batches, and installing the macros on a new cursor costs some milliseconds.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        workers = min(PUBLISH_WORKERS, os.cpu_count() or 1)
        self._pool = None
        self._duckdb_settings = ExitStack()  # given back at close
        if workers > 1:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="publish")
            # Each writer's statement on one DuckDB thread: the writers keep the cores busy. A
            # full refresh's publish 5.1-5.2 -> 4.3-4.5 s, 9.8-9.9 -> 8.2-8.5 CPU-s
            # (bench/RESULTS.md).
            self._duckdb_settings.enter_context(models.one_thread(con))
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    def write(self, jobs: list[_Job]) -> None:
        """Write each job; return once all are written."""
        if self._pool is None or len(jobs) < 2:
            for job in jobs:
                _rows(self.con, job).to_parquet(job[1], **job[2])
            return
        for future in [self._pool.submit(self._write, job) for job in jobs]:
            future.result()

    def _write(self, job: _Job) -> None:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.con.cursor()
            with self._lock:
                self._cursors.append(cursor)
            models.install(cursor, "private")
        _rows(cursor, job).to_parquet(job[1], **job[2])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for cursor in self._cursors:
            cursor.close()
        self._duckdb_settings.close()

    def __enter__(self) -> Writers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_written(pub: Path, manifest: dict[str, Any], tag: str) -> None:
    """fsync the files this run wrote (the manifest names them; their names hold the run's
    tag) and the folders that list them, several at a time.

    os.sync() would do it in one call, but it also writes out every other process's dirty
    pages: seconds on a host that is copying or loading something else. One fsync at a time
    costs about 1 ms a file, 1 s for the ~1,800 files and folders of a full refresh; the disk
    serves many at once (~0.1 s with 16 threads on the benchmark machine).
    """
    files = {pub / rel for days in manifest["rollups"].values() for rels in days.values()
             for rel in rels if tag in rel}
    files |= {pub / rel for rel in manifest["dimensions"].values() if tag in rel}
    folders = {pub}
    for path in files:
        folders.update(p for p in path.parents if p.is_relative_to(pub))
    with ThreadPoolExecutor(FSYNC_WORKERS, thread_name_prefix="fsync") as pool:
        list(pool.map(_fsync, [*files, *folders]))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _collect_garbage(pub: Path, manifest: dict[str, Any], now: float, sweep: bool
                     ) -> tuple[int, bool]:
    """Delete files retired longer ago than the grace period and, with `sweep` (after a
    publish died), orphans of crashed runs. Returns how many files were deleted, and whether
    orphans younger than the grace period are left for a later sweep."""
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
    # Files that no manifest ever named (a run killed between writing and switching). Looking
    # for them lists every file of the warehouse: only done after a publish died.
    left = False
    for path in pub.rglob("*.parquet") if sweep else ():
        rel = path.relative_to(pub).as_posix()
        if rel in keep:
            continue
        if now - path.stat().st_mtime >= RETIRE_GRACE_SECONDS:
            deleted += _unlink(path)
        else:
            left = True
    return deleted, left


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except FileNotFoundError:
        return 0
