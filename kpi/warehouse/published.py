"""What the aggregator publishes for readers: Parquet files and the manifest that names them.

The dashboard workers and the export must keep answering while an aggregation runs, so readers
never open the aggregator's private database (kpi.warehouse.private). Instead:

* ``<warehouse>/published/`` holds the daily rollups (sql/rollups/) as Parquet files
  partitioned by day (``usage_daily/day=2026-07-01/r00000012_<uuid>.parquet``), rewritten only
  for the days a run touched, and the small dimension tables (sql/dimensions/) as single
  Parquet files. Every file is written once under a new name and never modified.
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
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from kpi.settings import Settings
from kpi.warehouse import models
from kpi.warehouse.private import FORMAT

MANIFEST = "manifest.json"
PUBLISHED = "published"
# How long a superseded Parquet file stays on disk after the manifest stopped naming it: a
# reader opened before the switch keeps working this long.
RETIRE_GRACE_SECONDS = 900.0

# The daily rollups (sql/rollups/) and the dimensions (sql/dimensions/), by table name.
# Rollups are recomputed for the dirty days only; weeks, months and quarters are sums over
# them. Dimensions are one Parquet file each, rewritten when their source changed.
ROLLUPS: tuple[str, ...] = models.names("rollups")
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

    dirty = [row[0].isoformat()
             for row in models.run(con, "private/dirty_days").fetchall()]
    written = 0
    for table in ROLLUPS:
        if not dirty:
            break
        folder = pub / table
        folder.mkdir(exist_ok=True)
        # One statement per table: DuckDB writes one file per day under day=YYYY-MM-DD/.
        con.sql(models.sql(f"rollups/{table}")).to_parquet(
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
        con.sql(models.sql(f"dimensions/{name}")).to_parquet(str(pub / rel))
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
    models.run(con, "private/forget_dirty_days")
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
