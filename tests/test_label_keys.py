"""Catalogue label keys kept between runs (kpi.warehouse.label_keys): written by the first copy
of a release (or by `init` / `catalogue load`), read by the next copy instead of normalising the
labels again, never trusted when the release, its content or the normalisation changed; on real
SQLite and PostgreSQL stores with real aggregation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from kpi.store.db import catalogue_versions
from kpi.warehouse import label_keys
from tests.kpi_fixtures import O1, Store, published_state, standard_store, store_on


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> Iterator[Store]:
    with store_on(request.param, lambda url: standard_store(tmp_path, url)) as store:
        yield store


def kept_files(store: Store) -> list:
    folder = store.settings.data_dir / label_keys.FOLDER
    return sorted(folder.iterdir()) if folder.is_dir() else []


def rebuild(store: Store) -> None:
    """A full rebuild: the warehouse is removed, the next run copies every release again."""
    shutil.rmtree(store.settings.warehouse_path)
    store.aggregate()


def label_norms(store: Store) -> set[tuple]:
    con = store.reader()
    try:
        return set(con.execute("select k.uri, n.language, n.label_norm "
                               "from concept_label_norms as n "
                               "join concept_keys as k on k.key = n.concept_key").fetchall())
    finally:
        con.close()


def test_the_first_copy_keeps_the_keys_and_a_rebuild_reads_them(store):
    store.events({"concept_uri": O1})
    store.aggregate()
    files = kept_files(store)
    assert len(files) == 2  # one per release
    before = published_state(store.settings)

    # Prove that a rebuild reads the kept file: change one key in it (same rows, same count).
    releases = label_keys.releases(store.engine)
    path = label_keys.path(store.settings, "1.10.0", releases["1.10.0"])
    table = pq.read_table(path)
    norms = table.column("label_norm")
    marked = pc.if_else(pc.equal(norms, "programmierer"), "programmierer kept", norms)
    pq.write_table(table.set_column(table.column_names.index("label_norm"), "label_norm",
                                    marked), path)
    rebuild(store)
    assert (O1, "de", "programmierer kept") in label_norms(store)

    # The true keys again: the rebuilt warehouse equals the first one, row for row.
    path.unlink()
    rebuild(store)
    assert published_state(store.settings) == before
    assert (O1, "de", "programmierer") in label_norms(store)
    assert path.exists()  # written again by that copy


def test_a_release_loaded_again_or_a_changed_normalisation_is_not_read_from_the_cache(
        store, monkeypatch):
    store.aggregate()
    old = kept_files(store)
    with store.engine.begin() as conn:  # what a `catalogue load --replace` changes
        conn.execute(update(catalogue_versions).where(catalogue_versions.c.version == "1.10.0")
                     .values(source="reloaded"))
    store.aggregate()
    new = kept_files(store)
    assert len(new) == 2 and len(set(new) & set(old)) == 1  # the old file of 1.10.0 is gone

    monkeypatch.setattr(label_keys, "_normaliser", lambda: "another normalisation")
    releases = label_keys.releases(store.engine)
    assert label_keys.cached(store.settings, "1.10.0", releases["1.10.0"]) is None
    rebuild(store)
    assert {p.name for p in kept_files(store)} == {
        label_keys.path(store.settings, v, i).name for v, i in releases.items()}


@pytest.mark.parametrize("damage", ["garbage", "fewer rows"])
def test_a_damaged_file_is_ignored_and_replaced(store, damage):
    store.aggregate()
    before = published_state(store.settings)
    releases = label_keys.releases(store.engine)
    path = label_keys.path(store.settings, "1.10.0", releases["1.10.0"])
    if damage == "garbage":
        path.write_bytes(b"not a parquet file")
    else:
        pq.write_table(pq.read_table(path).slice(0, 2), path)
    assert label_keys.cached(store.settings, "1.10.0", releases["1.10.0"]) is None
    assert not path.exists()  # removed
    path.write_bytes(b"not a parquet file")
    rebuild(store)
    assert published_state(store.settings) == before
    assert label_keys.cached(store.settings, "1.10.0", releases["1.10.0"]) is not None


def test_prepare_keeps_the_keys_a_copy_would_compute(store):
    releases = label_keys.releases(store.engine)
    assert label_keys.prepare(store.settings, store.engine, "1.10.0")
    prepared = label_keys.cached(store.settings, "1.10.0", releases["1.10.0"])
    label_keys.path(store.settings, "1.10.0", releases["1.10.0"]).unlink()
    store.aggregate()  # computes and keeps them itself
    copied = label_keys.cached(store.settings, "1.10.0", releases["1.10.0"])
    assert copied is not None and prepared is not None

    def rows(table: pa.Table) -> list:
        return sorted(table.to_pylist(), key=repr)

    assert rows(prepared) == rows(copied)
    assert not label_keys.prepare(store.settings, store.engine, "9.9.9")  # no such release

