"""The ESCO catalogue: bundled copy, loading ESCO-format folders, lookups, bad input."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kpi.catalogue import load as catalogue
from kpi.catalogue.files import CatalogueError
from kpi.catalogue.index import CatalogueIndex, preferred_labels
from kpi.catalogue.labels import normalise_label
from kpi.catalogue.load import (
    BUNDLED_VERSION,
    current_version,
    load_bundled,
    load_catalogue,
    versions,
)
from kpi.catalogue.versions import version_key
from kpi.settings import Settings
from kpi.store.db import catalogue_versions, concept_labels, concepts, init_store, make_engine
from kpi.vocabulary import LANGUAGES

ESCO = "http://data.europa.eu/esco"
TECH_DIRECTOR = f"{ESCO}/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34"
MANAGE_MUSICAL_STAFF = f"{ESCO}/skill/0005c151-5b5a-4a66-8aac-60e734beb1ab"


def _engine(path: Path):
    engine = make_engine(Settings({"storage.data_dir": str(path)}))
    init_store(engine)
    return engine


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    engine = _engine(tmp_path_factory.mktemp("bundled"))
    steps: list[tuple[str, int, int]] = []
    summary = load_bundled(engine, progress=lambda *a: steps.append(a))
    yield engine, summary, steps
    engine.dispose()


@pytest.fixture
def engine(tmp_path):
    engine = _engine(tmp_path / "store")
    yield engine
    engine.dispose()


def _labels(engine, **where) -> set[str]:
    query = select(concept_labels.c.label)
    for column, value in where.items():
        query = query.where(concept_labels.c[column] == value)
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


def _count(engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


# ---------------------------------------------------------------------------------------------
# The bundled catalogue


def test_bundled_counts(bundled):
    engine, summary, _ = bundled
    assert summary is not None and summary.version == BUNDLED_VERSION == "1.2.0"
    expected = {"occupation": 3039, "skill": 13939, "isco": 619, "skill_group": 640}
    for kind, n in expected.items():
        assert _count(engine, concepts, version="1.2.0", concept_type=kind) == n
    assert summary.concepts == sum(expected.values())
    assert summary.labels == _count(engine, concept_labels, version="1.2.0")
    assert _count(engine, concepts, status="released") == summary.concepts
    # 26 languages: ESCO's 28 less Arabic and Ukrainian, which the bundled copy lacks.
    assert summary.languages == tuple(sorted(set(LANGUAGES) - {"ar", "uk"}))
    # 17 concept and label files and ESCO's 7 collection files; the broader-relations files
    # and the notes are listed as ignored, with the reason.
    assert summary.files == 24
    assert sorted(f["path"] for f in summary.report["ignored"]) == [
        "NOTICE.md", "SOURCE.md", "broaderRelationsOccPillar_en.csv.gz",
        "broaderRelationsSkillPillar_en.csv.gz"]
    assert summary.report["warnings"] == [] and summary.mode == "new"
    assert summary.by_type == {"occupation": 3039, "isco": 619, "skill": 13939,
                               "skill_group": 640}
    with engine.connect() as conn:
        row = conn.execute(select(catalogue_versions)).one()
    assert (row.version, row.concepts, row.labels) == ("1.2.0", summary.concepts, summary.labels)
    assert row.languages == ",".join(summary.languages)


def test_bundled_labels(bundled):
    engine, _, _ = bundled
    german = _labels(engine, uri=TECH_DIRECTOR, language="de", kind="preferred")
    # v1.2.0 German wording wins over the v1.0.8 26-language table; one preferred label only.
    assert german == {
        "Technischer Leiter für Bühne, Film und Fernsehen/"
        "Technische Leiterin für Bühne, Film und Fernsehen"
    }
    assert "head of technical" in _labels(engine, uri=TECH_DIRECTOR, language="en", kind="alt")
    assert "manage staff of music" in _labels(
        engine, uri=MANAGE_MUSICAL_STAFF, language="en", kind="alt"
    )
    assert _labels(engine, uri=MANAGE_MUSICAL_STAFF, language="fi", kind="preferred") == {
        "johtaa musiikillista henkilökuntaa"
    }
    # Exactly one preferred label per concept and language, and labels are never duplicated.
    with engine.connect() as conn:
        dup_preferred = conn.execute(
            select(concept_labels.c.uri, concept_labels.c.language)
            .where(concept_labels.c.kind == "preferred")
            .group_by(concept_labels.c.uri, concept_labels.c.language)
            .having(func.count() > 1)
        ).all()
        columns = [concept_labels.c[n] for n in ("version", "uri", "language", "kind", "label")]
        dup_labels = conn.execute(
            select(*columns).group_by(*columns).having(func.count() > 1)
        ).all()
        english = conn.execute(
            select(func.count()).select_from(concept_labels).where(
                concept_labels.c.language == "en", concept_labels.c.kind == "preferred"
            )
        ).scalar_one()
    assert dup_preferred == [] and dup_labels == []
    assert english == 18237  # every concept has an English preferred label


def test_bundled_progress_and_speed(bundled):
    _, summary, steps = bundled
    names = [s[0] for s in steps]
    assert names[0] == "reading files"
    assert {"reading files", "inserting concepts", "inserting labels"} == set(names)
    assert ("inserting labels", summary.labels, summary.labels) in steps
    assert summary.seconds < 30


def test_bundled_index_and_lookups(bundled):
    engine, _, _ = bundled
    index = CatalogueIndex.load(engine)
    assert index.current_version == "1.2.0"
    assert index.knows(TECH_DIRECTOR)
    assert index.concept_type(TECH_DIRECTOR) == "occupation"
    assert index.concept_type(MANAGE_MUSICAL_STAFF) == "skill"
    assert index.concept_type(f"{ESCO}/isco/C2654") == "isco"
    assert index.concept_type(f"{ESCO}/isced-f/00") == "skill_group"
    assert not index.knows(f"{ESCO}/occupation/not-there")
    assert index.concept_type(f"{ESCO}/occupation/not-there") is None
    assert index.token == catalogue.catalogue_token(engine) == CatalogueIndex.catalogue_token(
        engine
    )

    labels = preferred_labels(engine, [TECH_DIRECTOR, MANAGE_MUSICAL_STAFF, "x:unknown"], "de")
    assert labels[TECH_DIRECTOR].startswith("Technischer Leiter")
    # No German label for this skill (not in a collection): English fallback.
    assert labels[MANAGE_MUSICAL_STAFF] == "manage musical staff"
    assert "x:unknown" not in labels
    assert preferred_labels(engine, [TECH_DIRECTOR], "ar") == {TECH_DIRECTOR: "technical director"}


def test_bundled_loads_once(bundled):
    engine, _, _ = bundled
    assert load_bundled(engine) is None
    assert versions(engine) == ["1.2.0"]


# ---------------------------------------------------------------------------------------------
# A hand-written ESCO-format release

OCC_HEADER = "conceptType,conceptUri,iscoGroup,preferredLabel,altLabels,hiddenLabels,status\n"
OCC_A = f"{ESCO}/occupation/aaa-1"
OCC_B = f"{ESCO}/occupation/bbb-2"
SKILL_A = f"{ESCO}/skill/s-1"


def _write(path: Path, text: str, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def _release(folder: Path, *, with_b: bool = True) -> Path:
    """A small release in English and French, as ESCO ships it."""
    rows = [
        f'Occupation,{OCC_A},2654,data engineer,"data-base engineer\nbig data engineer",'
        f'"data enginer",released\n',
    ]
    if with_b:
        rows.append(f"Occupation,{OCC_B},1111,café manager,,,released\n")
    _write(folder / "occupations_en.csv", OCC_HEADER + "".join(rows))
    _write(folder / "occupations_fr.csv.gz", OCC_HEADER + (
        f'Occupation,{OCC_A},2654,ingénieur données,"ingénieure données\ningénieur données",'
        f',released\n'
        # Not an English concept: ignored.
        f"Occupation,{ESCO}/occupation/zzz-9,2654,inconnu,,,released\n"
    ), gz=True)
    # An older French file: its preferred label loses, its alt labels are kept.
    _write(folder / "occupations_fr_v1.0.8.csv", OCC_HEADER + (
        f"Occupation,{OCC_A},2654,ingénieur des données,ingénieur BI,,released\n"
    ))
    _write(folder / "skills_en.csv",
           "conceptType,conceptUri,preferredLabel,altLabels,status\n"
           f"KnowledgeSkillCompetence,{SKILL_A},use SQL,,obsolete\n\n")
    _write(folder / "greenSkillsCollection_en.csv",
           "conceptType,conceptUri,preferredLabel,status,altLabels\n"
           f"KnowledgeSkillCompetence,{SKILL_A},use SQL,released,query databases | write SQL\n")
    _write(folder / "occupationSkillRelations_en.csv", "occupationUri,skillUri\nx,y\n")
    return folder


def test_load_small_release(engine, tmp_path):
    steps: list[tuple[str, int, int]] = []
    summary = load_catalogue(
        engine, _release(tmp_path / "esco"), "1.3.0", progress=lambda *a: steps.append(a)
    )
    assert (summary.version, summary.concepts, summary.files) == ("1.3.0", 3, 5)
    assert summary.languages == ("en", "fr")
    assert summary.labels == _count(engine, concept_labels) == 12
    assert _labels(engine, uri=OCC_A, language="en", kind="alt") == {
        "data-base engineer", "big data engineer"
    }
    assert _labels(engine, uri=OCC_A, language="en", kind="hidden") == {"data enginer"}
    assert _labels(engine, uri=OCC_A, language="fr", kind="preferred") == {"ingénieur données"}
    assert _labels(engine, uri=OCC_A, language="fr", kind="alt") == {
        "ingénieure données", "ingénieur données", "ingénieur BI"
    }
    assert _labels(engine, uri=SKILL_A, kind="alt") == {"query databases", "write SQL"}
    assert _count(engine, concepts, uri=f"{ESCO}/occupation/zzz-9") == 0
    with engine.connect() as conn:
        status = dict(conn.execute(select(concepts.c.uri, concepts.c.status)).all())
    assert status == {OCC_A: "released", OCC_B: "released", SKILL_A: "obsolete"}
    assert steps[-1] == ("inserting labels", 12, 12)

    assert versions(engine) == ["1.3.0"]
    assert current_version(engine) == "1.3.0"
    assert preferred_labels(engine, [OCC_A, OCC_B], "fr") == {
        OCC_A: "ingénieur données", OCC_B: "café manager"
    }


def test_versions_index_and_replace(engine, tmp_path):
    assert versions(engine) == [] and current_version(engine) is None
    empty = CatalogueIndex.load(engine)
    assert empty.current_version is None and not empty.knows(OCC_A)

    load_catalogue(engine, _release(tmp_path / "new"), "1.10.0")
    # 1.9.0 drops nothing; 1.10.0 is numerically newer although it sorts first as text.
    load_catalogue(engine, _release(tmp_path / "old", with_b=True), "1.9.0")
    assert versions(engine) == ["1.9.0", "1.10.0"]
    assert current_version(engine) == "1.10.0"
    index = CatalogueIndex.load(engine)
    assert index.current_version == "1.10.0"
    assert index.knows(OCC_B) and index.concept_type(SKILL_A) == "skill"

    # Replace 1.10.0 with a release without OCC_B: still known through 1.9.0.
    token = catalogue.catalogue_token(engine)
    load_catalogue(engine, _release(tmp_path / "newer", with_b=False), "1.10.0", replace=True)
    assert catalogue.catalogue_token(engine) != token
    assert _count(engine, concepts, version="1.10.0") == 2
    assert _count(engine, catalogue_versions) == 2
    index = CatalogueIndex.load(engine)
    assert index.knows(OCC_B) and index.token != token
    # A concept the newest version dropped keeps the label of the version that had it.
    assert preferred_labels(engine, [OCC_B], "en") == {OCC_B: "café manager"}
    assert preferred_labels(engine, [OCC_B], "en", version="1.10.0") == {}


def test_load_zip(engine, tmp_path):
    folder = _release(tmp_path / "esco")
    archive = tmp_path / "ESCO dataset - v1.3.0.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in folder.iterdir():
            zf.write(file, f"ESCO dataset/{file.name}")
    summary = load_catalogue(engine, archive, "1.3.0")
    assert (summary.concepts, summary.labels) == (3, 12)
    with engine.connect() as conn:
        source = conn.execute(select(catalogue_versions.c.source)).scalar_one()
    assert source.endswith(archive.name)


def test_failed_load_stores_nothing(engine, tmp_path, monkeypatch):
    real = catalogue._insert_chunks

    def failing(conn, table, rows, step, progress):
        real(conn, table, rows, step, progress)
        if table is concept_labels:
            raise RuntimeError("disk full")

    monkeypatch.setattr(catalogue, "_insert_chunks", failing)
    with pytest.raises(RuntimeError):
        load_catalogue(engine, _release(tmp_path / "esco"), "1.3.0")
    assert _count(engine, concepts) == _count(engine, concept_labels) == 0
    assert versions(engine) == []


# ---------------------------------------------------------------------------------------------
# Bad input: one CatalogueError, with a message naming the problem and the file


def _bad(engine, path: Path, version: str = "1.3.0") -> str:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(engine, path, version)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_path(engine, tmp_path):
    assert "no such file or folder" in _bad(engine, tmp_path / "nowhere")


def test_empty_folder_and_unrelated_files(engine, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no ESCO catalogue files found" in _bad(engine, tmp_path / "empty")
    _write(tmp_path / "other" / "notes.csv", "a,b\n1,2\n")
    assert "no ESCO catalogue files found" in _bad(engine, tmp_path / "other")
    _write(tmp_path / "plain.txt", "hello")
    assert "expected a folder or a .zip file" in _bad(engine, tmp_path / "plain.txt")


def test_missing_columns(engine, tmp_path):
    _write(tmp_path / "a" / "occupations_en.csv", "conceptUri,label\nhttp://x/1,a\n")
    message = _bad(engine, tmp_path / "a")
    assert "occupations_en.csv" in message and "no preferredLabel column" in message
    _write(tmp_path / "b" / "skills_en.csv", "uri,preferredLabel\nhttp://x/1,a\n")
    message = _bad(engine, tmp_path / "b")
    assert "skills_en.csv" in message and "no conceptUri column" in message


def test_not_utf8(engine, tmp_path):
    folder = tmp_path / "latin1"
    folder.mkdir()
    (folder / "occupations_en.csv").write_bytes(
        b"conceptUri,preferredLabel\nhttp://x/1,caf\xe9 manager\n"
    )
    message = _bad(engine, folder)
    assert "occupations_en.csv, line 2: is not UTF-8 text" in message


def test_malformed_rows(engine, tmp_path):
    _write(tmp_path / "a" / "occupations_en.csv",
           "conceptUri,preferredLabel\nhttp://x/1,one\nhttp://x/2,two,extra\n")
    message = _bad(engine, tmp_path / "a")
    assert "occupations_en.csv, line 3: malformed row" in message
    _write(tmp_path / "b" / "occupations_en.csv", "conceptUri,preferredLabel\n,nameless\n")
    assert "line 2: malformed row: empty conceptUri" in _bad(engine, tmp_path / "b")
    _write(tmp_path / "c" / "occupations_en.csv", "conceptUri,preferredLabel\nnot a uri,x\n")
    assert "line 2: malformed row: bad conceptUri" in _bad(engine, tmp_path / "c")
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "occupations_en.csv.gz").write_bytes(b"not gzip at all")
    assert "occupations_en.csv.gz: not a valid compressed file" in _bad(engine, folder)
    _write(tmp_path / "e" / "occupations_en.csv", "")
    assert "occupations_en.csv: the file is empty" in _bad(engine, tmp_path / "e")


@pytest.mark.parametrize(
    "version", ["", "1", "v1.2.0", "1.2.0-rc1", "1.2.0.1", " 1.2.0", "1.2.0\n", "1.x"]
)
def test_bad_version(engine, tmp_path, version):
    message = _bad(engine, _release(tmp_path / "esco"), version)
    assert "is not a version number like 1.2.0" in message
    assert versions(engine) == []


def test_same_version_again_adds_nothing(engine, tmp_path):
    folder = _release(tmp_path / "esco")
    first = load_catalogue(engine, folder, "1.3")
    again = load_catalogue(engine, folder, "1.3")
    assert (again.mode, again.added_languages, again.labels_added) == ("added", (), 0)
    assert (again.concepts, again.labels) == (first.concepts, first.labels) == (3, 12)
    assert _count(engine, concepts) == 3 and _count(engine, concept_labels) == 12


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.mark.parametrize(("text", "expected"), [
    ("  Café—Manager ", "cafe manager"),
    ("ÉCOLE", "ecole"),
    ("data-base", "data base"),
    ("naïve  user", "naive user"),
    ("Straße", "strasse"),
    ("Ｆｕｌｌ－width ２", "full width 2"),
    ("C++ / C#", "c c"),
    ("", ""),
    ("Łódź señor", "łodz senor"),
])
def test_normalise_label(text, expected):
    assert normalise_label(text) == expected


def test_version_key_and_languages():
    assert version_key("1.10.2") == (1, 10, 2) > version_key("1.9.9")
    assert len(LANGUAGES) == 28 and len(set(LANGUAGES)) == 28
    assert LANGUAGES[:3] == ("bg", "cs", "da") and LANGUAGES[-2:] == ("uk", "ar")
