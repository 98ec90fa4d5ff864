"""`esco-kpi backup` and `restore`: both stores, consistent with each other, while serving.

The backup holds the aggregation lock, so the warehouse does not move; the ingest store is
copied as a snapshot (SQLite's online backup, or pg_dump's transaction snapshot) while the
collector keeps accepting events. The warehouse's watermark is therefore never ahead of the
copied events, and after a restore the aggregator simply carries on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from kpi import __version__
from kpi.settings import Settings
from kpi.store.db import events, make_engine

MANIFEST = "backup.json"
# Files of the data folder that are not worth keeping (rebuilt at start) or are the stores.
_SKIP = {"metrics", "warehouse", "ingest.sqlite3", "ingest.sqlite3-wal", "ingest.sqlite3-shm",
         "scheduler.pid", "demo-server.log"}


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


@dataclass(frozen=True)
class BackupSummary:
    folder: Path
    events: int
    files: int


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _warehouse_still(settings: Settings, wait_seconds: float = 600) -> Iterator[None]:
    """Hold the aggregation lock, waiting for a run in progress to finish."""
    from kpi.warehouse.aggregate import AggregationBusy, aggregation_lock

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with aggregation_lock(settings):
                yield
            return
        except AggregationBusy:
            if time.monotonic() > deadline:
                raise BackupError("an aggregation has been running for too long; "
                                  "try again later") from None
            time.sleep(0.5)


def backup(settings: Settings, out: Path) -> BackupSummary:
    """Write a backup folder under `out`; returns where."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = out / f"esco-kpi-backup-{stamp}"
    if folder.exists():
        raise BackupError(f"{folder} already exists")
    partial = out / f".{folder.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    engine = make_engine(settings)
    url = settings.database_url
    try:
        with _warehouse_still(settings):
            if settings.warehouse_path.exists():
                shutil.copytree(settings.warehouse_path, partial / "warehouse",
                                ignore=shutil.ignore_patterns("*.lock", "*.wal", "*.tmp"))
            if engine.dialect.name == "sqlite":
                store_file = "ingest.sqlite3"
                source = sqlite3.connect(make_url(url).database)
                target = sqlite3.connect(partial / store_file)
                with target:
                    source.backup(target)  # one step: a consistent snapshot
                source.close()
                target.close()
            else:
                store_file = "ingest.pgdump"
                _run(["pg_dump", "--format=custom", "--no-owner", "--file",
                      str(partial / store_file), _libpq_url(url)], "pg_dump")
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
    finally:
        engine.dispose()
    # Other files of the data folder, such as the dashboard's session key.
    extras = [p for p in settings.data_dir.iterdir() if p.is_file() and p.name not in _SKIP]
    if extras:
        (partial / "data").mkdir()
        for item in extras:
            shutil.copy2(item, partial / "data" / item.name)
    files = sorted(p for p in partial.rglob("*") if p.is_file())
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "esco_kpi_version": __version__,
        "store": store_file,
        "database": engine.dialect.name,
        "events_at_backup_end": stored,
        "files": {str(p.relative_to(partial)): _sha256(p) for p in files},
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    partial.rename(folder)
    return BackupSummary(folder, stored, len(files))


def _run(command: list[str], name: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(f"{name} is not installed (Debian package postgresql-client)") from None
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise BackupError(f"{name} failed: {lines[-1] if lines else result.returncode}")


def _verify(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} is not an esco-kpi backup (no {MANIFEST})")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for name, digest in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise BackupError(f"the backup is incomplete: {name} is missing")
        if _sha256(file) != digest:
            raise BackupError(f"the backup is damaged: {name} does not match its checksum")
    return manifest


def _store_is_empty(settings: Settings) -> bool:
    engine = make_engine(settings)
    try:
        if not inspect(engine).has_table("events"):
            return True
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar_one() == 0
    finally:
        engine.dispose()


def restore(settings: Settings, folder: Path, force: bool = False) -> dict:
    """Put a backup in place of the configured stores. Stop `serve` first."""
    manifest = _verify(folder)
    url = settings.database_url
    kind = make_url(url).get_backend_name()
    if (kind == "sqlite") != (manifest["database"] == "sqlite"):
        raise BackupError(f"this backup is of a {manifest['database']} store; the configured "
                          f"store is {kind}")
    if not force and not _store_is_empty(settings):
        raise BackupError("the configured store already holds events; restore with --force to "
                          "replace them")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        target = Path(make_url(url).database)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copy2(folder / manifest["store"], target)
    else:
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--dbname", _libpq_url(url), str(folder / manifest["store"])], "pg_restore")
    if settings.warehouse_path.exists():
        shutil.rmtree(settings.warehouse_path)
    if (folder / "warehouse").exists():
        shutil.copytree(folder / "warehouse", settings.warehouse_path)
    if (folder / "data").exists():
        for item in (folder / "data").iterdir():
            shutil.copy2(item, settings.data_dir / item.name)
            if item.name == "secret_key":
                os.chmod(settings.data_dir / item.name, 0o600)
    return manifest
