"""Catalogue label keys kept between runs, so that a release's labels are normalised once.

The warehouse compares free-text labels with the catalogue's by their keys (normalise_label,
and gendered_forms for labels written "form1/form2"). A release has some 385,000 labels: their
keys cost about a second of CPU, and reading them out of SQLite needs worker processes (see
kpi.warehouse.store_arrow), which cost more than the reading itself. The keys of a release
never change, so they are kept as one Parquet file per release in `<data_dir>/cache/label-keys/`
and the next copy of the release into a warehouse reads that file instead: the first
aggregation after `init` (which writes the file when it loads the bundled release), and every
rebuild of the warehouse.

A file is named by a hash of what identifies the release's content in the ingest store (its
version, when it was loaded, from where, how many concepts and labels, which languages) and of
the normalisation's own code: a release loaded again, or a change to kpi/catalogue/labels.py,
names another file, and the old one is removed at the next copy. The files are a cache: a file
that is missing, unreadable or does not hold the release's label count is ignored (and
removed), and the labels are read from the ingest store as before.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from kpi.catalogue import labels as label_module
from kpi.settings import Settings
from kpi.store.db import catalogue_versions, concept_labels

FOLDER = Path("cache") / "label-keys"
COLUMNS = ("uri", "language", "kind", "label", "label_norm", "form_norms")

# What identifies a release's content in the ingest store (the aggregator copies a release
# again when any of it changes): loaded_at, source, concepts, labels, languages.
Identity = tuple[str, str, int, int, str]


def releases(engine: Engine) -> dict[str, Identity]:
    """Each release of the ingest store and what identifies its content."""
    with engine.connect() as conn:
        return {
            row.version: (str(row.loaded_at), row.source, int(row.concepts), int(row.labels),
                          row.languages or "")
            for row in conn.execute(select(catalogue_versions))
        }


def _normaliser() -> str:
    """A fingerprint of the normalisation: its module's code and the Unicode tables it uses."""
    code = Path(label_module.__file__).read_bytes()
    return hashlib.sha256(code + unicodedata.unidata_version.encode()).hexdigest()


def path(settings: Settings, version: str, identity: Identity) -> Path:
    """Where the keys of one release (as the ingest store holds it now) are kept."""
    key = repr((version, tuple(identity), _normaliser())).encode("utf-8")
    return settings.data_dir / FOLDER / f"{hashlib.sha256(key).hexdigest()[:24]}.parquet"


def cached(settings: Settings, version: str, identity: Identity) -> pa.Table | None:
    """The kept keys of a release, or None (never kept, or not usable: then removed)."""
    file = path(settings, version, identity)
    if not file.exists():
        return None
    try:
        table = pq.read_table(file, columns=list(COLUMNS))
    except (OSError, pa.ArrowException):
        table = None
    if table is None or table.num_rows != identity[3]:
        file.unlink(missing_ok=True)
        return None
    return table


def keep(settings: Settings, version: str, identity: Identity, tables: list[pa.Table]) -> None:
    """Keep the keys of a release (its labels with label_norm and form_norms, in parts),
    written to a temporary file and renamed: a reader sees a whole file or none. A cache that
    cannot be written is skipped, never an error."""
    if sum(t.num_rows for t in tables) != identity[3]:
        return  # not every label of the release: nothing to keep
    file = path(settings, version, identity)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        table = pa.concat_tables([t.select(list(COLUMNS)) for t in tables],
                                 promote_options="permissive")
        handle, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
        os.close(handle)
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, file)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        return


def forget_others(settings: Settings, identities: dict[str, Identity]) -> None:
    """Remove the kept keys of releases (or of forms of them) the store no longer holds."""
    folder = settings.data_dir / FOLDER
    if not folder.is_dir():
        return
    wanted = {path(settings, v, i).name for v, i in identities.items()}
    for file in folder.iterdir():
        if file.name not in wanted:
            file.unlink(missing_ok=True)


def prepare(settings: Settings, engine: Engine, version: str) -> bool:
    """Compute and keep the keys of one release of the ingest store, if not kept yet (after
    `catalogue load` and `init`: the first aggregation then reads them). True when kept."""
    from kpi.warehouse.store_arrow import with_label_keys

    identity = releases(engine).get(version)
    if identity is None:
        return False
    if path(settings, version, identity).exists():
        return True
    query = (select(concept_labels.c.uri, concept_labels.c.language, concept_labels.c.kind,
                    concept_labels.c.label).where(concept_labels.c.version == version))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    columns: dict[str, Any] = {name: [row[i] for row in rows]
                               for i, name in enumerate(("uri", "language", "kind", "label"))}
    table = with_label_keys(pa.table(columns, schema=pa.schema(
        [(name, pa.string()) for name in columns])))
    keep(settings, version, identity, [table])
    return path(settings, version, identity).exists()
