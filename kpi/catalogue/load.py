"""Loading ESCO releases into the ingest store, one version each, and reading back which
versions are loaded.

A release's files are read by kpi.catalogue.files; here its concepts and labels are written to
the store's catalogue tables in one transaction, or replace a version loaded before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select

from kpi.catalogue.files import CatalogueError, Progress, read_release
from kpi.catalogue.versions import is_version, version_key
from kpi.store.db import catalogue_versions, concept_labels, concepts

BUNDLED_VERSION = "1.2.0"

_CHUNK = 5000


@dataclass(frozen=True)
class LoadSummary:
    """What one load put into the store."""

    version: str
    concepts: int
    labels: int
    languages: tuple[str, ...]
    files: int
    seconds: float


def _check_version(version: str) -> None:
    if not is_version(version):
        raise CatalogueError(
            f"version {version!r} is not a version number like 1.2.0 (digits and dots)"
        )


def _insert_chunks(
    conn: Any, table: Any, rows: list[tuple], step: str, progress: Progress | None
) -> None:
    """Insert rows (tuples in the table's column order) in chunks, reporting progress."""
    total = len(rows)
    names = [c.name for c in table.columns]
    if conn.dialect.name == "sqlite":
        # The driver's executemany with plain tuples: several times faster than going through
        # SQLAlchemy's per-row dict processing, which matters for ~400k labels.
        marks = ", ".join("?" * len(names))
        sql = f"insert into {table.name} ({', '.join(names)}) values ({marks})"
    if progress:
        progress(step, 0, total)
    for start in range(0, total, _CHUNK):
        chunk = rows[start:start + _CHUNK]
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(sql, chunk)
        else:
            conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in chunk])
        if progress:
            progress(step, min(start + _CHUNK, total), total)


def _version_exists(conn, version: str) -> bool:
    query = select(func.count()).select_from(catalogue_versions).where(
        catalogue_versions.c.version == version
    )
    return bool(conn.execute(query).scalar_one())


def load_catalogue(
    engine: Engine,
    path: Path,
    version: str,
    progress: Progress | None = None,
    source: str | None = None,
    *,
    replace: bool = False,
) -> LoadSummary:
    """Load an ESCO release (folder or .zip of ESCO CSV files) as `version`, in one transaction.

    `progress(step, done, total)` is called with step "reading files" (done = files read),
    then "inserting concepts" and "inserting labels" (done = rows inserted).
    Raises CatalogueError for any unusable input, or if the version is already loaded and
    `replace` is false; nothing is stored then.
    """
    started = time.perf_counter()
    _check_version(version)
    path = Path(path)
    if not replace and version in versions(engine):
        # Checked again inside the transaction; this early check only saves reading the files.
        raise CatalogueError(f"version {version} is already loaded")
    release = read_release(path, version, progress)

    # Tuples in the tables' column order (version, uri, concept_type, status) and
    # (version, uri, language, kind, label).
    concept_rows = [
        (version, uri, kind, status) for uri, (kind, status) in release.concepts.items()
    ]
    label_rows = [(version, *label) for label in release.labels]

    with engine.connect().execution_options(write=True) as conn, conn.begin():
        if _version_exists(conn, version):
            if not replace:
                raise CatalogueError(f"version {version} is already loaded")
            for table in (concept_labels, concepts, catalogue_versions):
                conn.execute(delete(table).where(table.c.version == version))
        _insert_chunks(conn, concepts, concept_rows, "inserting concepts", progress)
        _insert_chunks(conn, concept_labels, label_rows, "inserting labels", progress)
        conn.execute(catalogue_versions.insert(), {
            "version": version,
            "loaded_at": datetime.now(UTC),
            "source": (source or str(path.resolve()))[:500],
            "concepts": len(concept_rows),
            "labels": len(label_rows),
        })
    return LoadSummary(
        version=version, concepts=len(concept_rows), labels=len(label_rows),
        languages=release.languages, files=release.files, seconds=time.perf_counter() - started,
    )


def bundled_path() -> Path:
    """The folder of the ESCO catalogue shipped with the package."""
    folder = resources.files("kpi") / "data" / "esco"
    # Installed from a wheel or a checkout, the package is a plain folder on disk.
    return Path(str(folder))


def load_bundled(engine: Engine, progress: Progress | None = None) -> LoadSummary | None:
    """Load the bundled ESCO v1.2.0 catalogue unless it is loaded already (then None)."""
    if BUNDLED_VERSION in versions(engine):
        return None
    try:
        return load_catalogue(
            engine, bundled_path(), BUNDLED_VERSION, progress,
            source=f"bundled ESCO v{BUNDLED_VERSION} (kpi/data/esco)",
        )
    except CatalogueError:
        # Another process (a second `init`) may have loaded it meanwhile: that is success.
        if BUNDLED_VERSION in versions(engine):
            return None
        raise


# ---------------------------------------------------------------------------------------------
# Which versions are loaded


def versions(engine: Engine) -> list[str]:
    """Every loaded version, oldest to newest."""
    with engine.connect() as conn:
        found = conn.execute(select(catalogue_versions.c.version)).scalars().all()
    return sorted(found, key=version_key)


def current_version(engine: Engine) -> str | None:
    """The newest loaded version, or None when no catalogue is loaded."""
    loaded = versions(engine)
    return loaded[-1] if loaded else None


def catalogue_token(engine: Engine) -> tuple[tuple[str, str], ...]:
    """Changes whenever a version is loaded, replaced or removed: one small query."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(catalogue_versions.c.version, catalogue_versions.c.loaded_at)
        ).all()
    return tuple(sorted((v, str(at)) for v, at in rows))
