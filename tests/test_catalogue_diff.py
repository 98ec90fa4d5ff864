"""`catalogue diff`: two real ESCO releases (v1.0.8 and v1.2.0, cut small, tests/data/releases)
loaded into real stores, the diff checked against what the files themselves say, computed here
with csv and sets; the same diff on PostgreSQL; the command line and its errors."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from esco_kpi.cli import main
from kpi.catalogue.diff import diff_releases
from kpi.catalogue.files import CatalogueError
from kpi.catalogue.load import load_catalogue
from kpi.settings import Settings
from kpi.store.db import concept_successors, concepts, init_store, make_engine
from tests.conftest import write_config
from tests.kpi_fixtures import pg_database
from tests.releases import NEWER, OLDER, release_files, release_path

SKILL = "http://data.europa.eu/esco/skill/"
_FILE = re.compile(r"^(occupations|ISCOGroups|skillGroups|skills)_([a-z]{2})\.csv\.gz$")
_TYPES = {"occupations": "occupation", "ISCOGroups": "isco", "skillGroups": "skill_group",
          "skills": "skill"}


# ---------------------------------------------------------------------------------------------
# What the files say, read here without the loader


@dataclass
class Files:
    types: dict[str, str] = field(default_factory=dict)  # uri -> concept type
    labels: set[tuple[str, str, str, str]] = field(default_factory=set)  # uri, lang, kind, label
    codes: dict[str, str] = field(default_factory=dict)  # skill group uri -> code

    def preferred(self) -> dict[tuple[str, str], str]:
        return {(u, lang): label for u, lang, kind, label in self.labels if kind == "preferred"}


def read_files(version: str, *languages: str) -> Files:
    files = Files()
    for path in release_files(version, *languages):
        found = _FILE.match(path.name)
        assert found, path.name
        kind, language = found[1], found[2]
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                uri = row["conceptUri"]
                # every test release has English files of each kind it holds
                if language == "en":
                    assert files.types.setdefault(uri, _TYPES[kind]) == _TYPES[kind]
                if row["preferredLabel"].strip():
                    files.labels.add((uri, language, "preferred", row["preferredLabel"].strip()))
                for column, label_kind in (("altLabels", "alt"), ("hiddenLabels", "hidden")):
                    for value in (row.get(column) or "").splitlines():
                        if value.strip():
                            files.labels.add((uri, language, label_kind, value.strip()))
                if kind == "skillGroups" and row.get("code"):
                    files.codes[uri] = row["code"]
    return files


@dataclass
class Expected:
    added: set[str]
    removed: set[str]
    retyped: set[tuple[str, str, str]]
    replaced: set[tuple[str, str]]
    renamed: dict[str, set[tuple[str, str, str]]]
    labels_added: dict[str, set[tuple[str, str, str]]]
    labels_removed: dict[str, set[tuple[str, str, str]]]


def expected_diff(old: Files, new: Files) -> Expected:
    # v1.2.0's skill groups keep their old code-style URI's code: .../skill/<code>
    named = code_successors(new)
    replaced = {(u, named[u]) for u in old.types if u not in new.types and u in named}
    pairs = {u: u for u in old.types if u in new.types}
    pairs.update({u: s for u, s in replaced if s not in old.types})
    old_labels = {(pairs[u], lang, kind, label) for u, lang, kind, label in old.labels
                  if u in pairs}
    new_labels = {row for row in new.labels if row[0] in pairs.values()}
    old_pref, new_pref = old.preferred(), new.preferred()
    renamed: dict[str, set[tuple[str, str, str]]] = {}
    for (u, lang), label in old_pref.items():
        if u in pairs and new_pref.get((pairs[u], lang), label) != label:
            renamed.setdefault(lang, set()).add((pairs[u], label, new_pref[(pairs[u], lang)]))

    def by_language(rows: set[tuple[str, str, str, str]]) -> dict[str, set]:
        grouped: dict[str, set] = {}
        for u, lang, kind, label in rows:
            grouped.setdefault(lang, set()).add((u, kind, label))
        return grouped

    return Expected(
        added={u for u in new.types if u not in old.types and u not in pairs.values()},
        removed={u for u in old.types if u not in new.types and u not in named},
        retyped={(u, old.types[u], new.types[u]) for u in pairs if u == pairs[u]
                 and old.types[u] != new.types[u]},
        replaced=replaced,
        renamed=renamed,
        labels_added=by_language(new_labels - old_labels),
        labels_removed=by_language(old_labels - new_labels),
    )


def check(result: dict, expected: Expected) -> None:
    """The diff's JSON against the figures computed from the files."""
    assert {c["uri"] for c in result["added"]} == expected.added
    assert {c["uri"] for c in result["removed"]} == expected.removed
    assert {(r["uri"], r["old_type"], r["new_type"]) for r in result["retyped"]} \
        == expected.retyped
    assert {(r["uri"], r["successor"]) for r in result["replaced"]} == expected.replaced
    assert {lang: {(r["uri"], r["old"], r["new"]) for r in items}
            for lang, items in result["renamed"].items()} == expected.renamed
    for key in ("labels_added", "labels_removed"):
        got = {lang: {(c["uri"], c["kind"], c["label"]) for c in items}
               for lang, items in result[key].items()}
        assert got == getattr(expected, key), key
    summary = result["summary"]
    assert sum(summary["added"].values()) == len(expected.added)
    assert sum(summary["removed"].values()) == len(expected.removed)
    assert summary["retyped"] == len(expected.retyped)
    assert summary["replaced"] == len(expected.replaced)
    assert summary["renamed"] == {lang: len(v) for lang, v in expected.renamed.items()}
    for lang, kinds in summary["labels"].items():
        for kind, n in kinds.items():
            assert n["added"] == sum(1 for c in expected.labels_added.get(lang, ())
                                     if c[1] == kind)
            assert n["removed"] == sum(1 for c in expected.labels_removed.get(lang, ())
                                       if c[1] == kind)


# ---------------------------------------------------------------------------------------------
# Stores


def make_store(folder: Path, database_url: str | None = None) -> tuple[Engine, Settings]:
    values = {"storage.data_dir": str(folder)}
    if database_url:
        values["storage.database_url"] = database_url
    settings = Settings(values)
    engine = make_engine(settings)
    init_store(engine)
    return engine, settings


def code_successors(files: Files) -> dict[str, str]:
    """Old code-style URI -> successor, as the files of a release state them: a skill group
    under /esco/skill/ with code C replaced .../skill/C."""
    return {SKILL + code: uri for uri, code in sorted(files.codes.items())
            if uri.startswith(SKILL)}


def set_successors(engine: Engine, version: str, files: Files) -> None:
    """concept_successors of `version` as its files state them, whatever the load recorded:
    the diff is checked here, the loader's reading of the codes in its own test below."""
    with engine.begin() as conn:
        conn.execute(delete(concept_successors).where(concept_successors.c.version == version))
        conn.execute(insert(concept_successors), [
            {"version": version, "uri": old, "successor_uri": uri, "source": "code"}
            for old, uri in code_successors(files).items()
        ])


def load_both(engine: Engine) -> None:
    load_catalogue(engine, release_path(OLDER), OLDER)
    load_catalogue(engine, release_path(NEWER), NEWER)
    set_successors(engine, NEWER, read_files(NEWER))


@pytest.fixture(scope="module")
def files() -> tuple[Files, Files]:
    return read_files(OLDER), read_files(NEWER)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory) -> Iterator[tuple[Engine, Settings]]:
    engine, settings = make_store(tmp_path_factory.mktemp("diff-store"))
    load_both(engine)
    yield engine, settings
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# The diff against the files


def test_the_test_releases_are_what_the_readme_says(files):
    old, new = files
    counts = {v: {t: sum(1 for x in f.types.values() if x == t) for t in set(f.types.values())}
              for v, f in ((OLDER, old), (NEWER, new))}
    assert counts == {
        OLDER: {"occupation": 129, "isco": 99, "skill_group": 44},
        NEWER: {"occupation": 139, "isco": 99, "skill_group": 36, "skill": 15},
    }
    assert {lang for _, lang, _, _ in old.labels} == {"en", "fr", "nl", "de"}
    assert {lang for _, lang, _, _ in new.labels} == {"en", "de"}


def test_diff_matches_the_files(sqlite_store, files):
    engine, _ = sqlite_store
    result = diff_releases(engine, OLDER, NEWER)
    check(result.to_json(), expected_diff(*files))


def test_diff_figures(sqlite_store):
    # the differences the sample was cut to hold (tests/data/releases/README.md)
    result = diff_releases(sqlite_store[0], OLDER, NEWER).to_json()
    assert result["a"] == OLDER and result["b"] == NEWER
    summary = result["summary"]
    assert summary["added"] == {"occupation": 15, "skill": 10, "skill_group": 5}
    assert summary["removed"] == {"occupation": 5, "skill_group": 8}
    assert summary["retyped"] == 5 and summary["replaced"] == 26
    assert summary["renamed"] == {"de": 21, "en": 55}
    assert summary["labels"]["en"] == {"preferred": {"added": 55, "removed": 55},
                                       "alt": {"added": 124, "removed": 139},
                                       "hidden": {"added": 7, "removed": 10}}
    assert summary["labels"]["fr"]["alt"] == {"added": 0, "removed": 560}
    assert result["languages"] == {"a": ["de", "en", "fr", "nl"], "b": ["de", "en"]}
    # ESCO's example: the code-style skill group S2.9.0 got a UUID URI in v1.2.0
    s290 = [r for r in result["replaced"] if r["uri"] == SKILL + "S2.9.0"]
    assert s290 == [{"uri": SKILL + "S2.9.0",
                     "successor": SKILL + "e2a5e046-3357-493e-bbdc-8d0ef82005cc",
                     "source": "code", "type": "skill_group",
                     "label": "monitoring developments in area of expertise",
                     "successor_label": "monitoring developments in area of expertise"}]
    assert {r["old_type"] + ">" + r["new_type"] for r in result["retyped"]} == {
        "skill_group>skill"}
    removed = {c["label"] for c in result["removed"] if c["type"] == "occupation"}
    assert "wind turbine technician" in removed
    # a successor is not also "added", and a replaced URI is not also "removed"
    added = {c["uri"] for c in result["added"]}
    assert not added & {r["successor"] for r in result["replaced"]}
    assert not {c["uri"] for c in result["removed"]} & {r["uri"] for r in result["replaced"]}


def test_report_lines(sqlite_store):
    lines = diff_releases(sqlite_store[0], OLDER, NEWER).lines(limit=3)
    assert lines[0] == (
        "1.2.0 against 1.0.8: 30 concepts added (15 occupations, 10 skills, 5 skill groups), "
        "13 removed (5 occupations, 8 skill groups), 5 re-typed, 21 renamed in de, "
        "55 renamed in en, 26 URIs replaced; labels: de +115 \u2212126, en +186 \u2212204, "
        "fr +0 \u2212688, nl +0 \u22121013"
    )
    assert "Languages in 1.0.8 only: fr, nl" in lines
    assert "Added (30):" in lines and "  ... and 27 more" in lines
    assert "Re-typed (5):" in lines and "  ... and 2 more" in lines
    assert "URIs replaced (26):" in lines
    assert any(line.startswith(f"  {SKILL}K -> {SKILL}c46fcb45-") for line in lines)
    assert "  en: preferred +55 \u221255, alt +124 \u2212139, hidden +7 \u221210" in lines


def test_json_is_deterministic(sqlite_store):
    engine = sqlite_store[0]
    first = json.dumps(diff_releases(engine, OLDER, NEWER).to_json())
    assert first == json.dumps(diff_releases(engine, OLDER, NEWER).to_json())
    result = json.loads(first)
    assert result["added"] == sorted(result["added"], key=lambda c: (c["type"], c["uri"]))
    for items in result["renamed"].values():
        assert [r["uri"] for r in items] == sorted(r["uri"] for r in items)


def test_a_release_against_itself_is_empty(sqlite_store):
    for version in (OLDER, NEWER):
        result = diff_releases(sqlite_store[0], version, version)
        assert result.is_empty()
        assert result.lines() == [f"{version} against {version}: no differences"]
        assert result.to_json()["summary"] == {"added": {}, "removed": {}, "retyped": 0,
                                               "replaced": 0, "renamed": {}, "labels": {}}


def test_the_other_way_round(sqlite_store, files):
    # 1.0.8 states no successors: the UUID groups of 1.2.0 are "removed", the code-style
    # URIs "added"
    result = diff_releases(sqlite_store[0], NEWER, OLDER).to_json()
    old, new = files
    assert result["replaced"] == []
    assert {c["uri"] for c in result["added"]} == set(old.types) - set(new.types)
    assert {c["uri"] for c in result["removed"]} == set(new.types) - set(old.types)


def test_successors_from_codes_when_none_are_stated(tmp_path, files):
    # A store loaded before concept_successors was filled: the skill groups' codes tell.
    engine, _ = make_store(tmp_path)
    load_catalogue(engine, release_path(OLDER), OLDER)
    load_catalogue(engine, release_path(NEWER), NEWER)
    old, new = files
    with engine.begin() as conn:
        conn.execute(delete(concept_successors).where(concept_successors.c.version == NEWER))
        for uri, code in new.codes.items():
            conn.execute(update(concepts).where(
                concepts.c.version == NEWER, concepts.c.uri == uri).values(code=code))
    check(diff_releases(engine, OLDER, NEWER).to_json(), expected_diff(old, new))
    engine.dispose()


def test_the_load_states_every_replaced_code_style_uri(tmp_path, files):
    # v1.0.8 had skill groups at .../skill/K, .../skill/L, .../skill/S as well as
    # .../skill/S2.9.0: v1.2.0's codes K, L, S name them as much as S2.9.0 names the latter.
    engine, _ = make_store(tmp_path)
    load_catalogue(engine, release_path(OLDER), OLDER)
    load_catalogue(engine, release_path(NEWER), NEWER)
    old, new = files
    with engine.connect() as conn:
        stated = dict(conn.execute(
            select(concept_successors.c.uri, concept_successors.c.successor_uri).where(
                concept_successors.c.version == NEWER)).all())
    engine.dispose()
    replaced = {u: s for u, s in code_successors(new).items() if u in old.types}
    assert {u: stated.get(u) for u in replaced} == replaced


def test_each_language_download_loaded_alone(tmp_path):
    # Release 1.0.8's French and Dutch downloads as two "releases": the same occupations,
    # French labels gone, Dutch ones new.
    engine, _ = make_store(tmp_path / "store")
    load_catalogue(engine, release_path(OLDER, "fr", into=tmp_path / "fr"), "1.0.1")
    load_catalogue(engine, release_path(OLDER, "nl", into=tmp_path / "nl"), "1.0.2")
    load_catalogue(engine, release_path(OLDER, "en", into=tmp_path / "en"), "1.0.3")
    load_catalogue(engine, release_path(OLDER, "en", "fr", "nl", into=tmp_path / "all"), "1.0.4")
    french, dutch = read_files(OLDER, "fr"), read_files(OLDER, "nl")
    result = diff_releases(engine, "1.0.1", "1.0.2")
    assert not (result.added or result.removed or result.retyped or result.renamed)
    assert {(c.uri, c.kind, c.label) for c in result.labels_removed["fr"]} == {
        (u, kind, label) for u, _, kind, label in french.labels}
    assert {(c.uri, c.kind, c.label) for c in result.labels_added["nl"]} == {
        (u, kind, label) for u, _, kind, label in dutch.labels}
    assert set(result.labels_added) == {"nl"} and set(result.labels_removed) == {"fr"}
    result = diff_releases(engine, "1.0.3", "1.0.4")
    assert not (result.added or result.removed or result.renamed or result.labels_removed)
    assert {lang: len(items) for lang, items in result.labels_added.items()} == {
        "fr": len(french.labels), "nl": len(dutch.labels)}
    engine.dispose()


def test_unknown_versions(sqlite_store):
    engine = sqlite_store[0]
    with pytest.raises(CatalogueError, match=r"version '9\.9\.9' is not loaded "
                                             r"\(loaded: 1\.0\.8, 1\.2\.0\)"):
        diff_releases(engine, OLDER, "9.9.9")
    with pytest.raises(CatalogueError, match="version 'latest' is not loaded"):
        diff_releases(engine, "latest", NEWER)


def test_empty_store_names_no_version(tmp_path):
    engine, _ = make_store(tmp_path)
    with pytest.raises(CatalogueError, match=r"version '1\.0\.8' is not loaded \(loaded: none\)"):
        diff_releases(engine, OLDER, NEWER)
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@pytest.mark.postgres
def test_postgresql_gives_the_same_diff(tmp_path, sqlite_store, files):
    databases = pg_database()
    url = next(databases)  # skips without a PostgreSQL server
    try:
        engine, _ = make_store(tmp_path, url)
        load_both(engine)
        result = diff_releases(engine, OLDER, NEWER).to_json()
        check(result, expected_diff(*files))
        assert result == diff_releases(sqlite_store[0], OLDER, NEWER).to_json()
        assert diff_releases(engine, NEWER, NEWER).is_empty()
        with pytest.raises(CatalogueError, match="not loaded"):
            diff_releases(engine, "1.2.1", NEWER)
        engine.dispose()
    finally:
        databases.close()


# ---------------------------------------------------------------------------------------------
# The command line


def run(config: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), "catalogue", "diff", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def config(sqlite_store, tmp_path) -> Path:
    return write_config(sqlite_store[1], tmp_path)


def test_cli_report(config, capsys):
    code, out, err = run(config, capsys, OLDER, NEWER)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("1.2.0 against 1.0.8: 30 concepts added")
    assert "  ... and 20 more" in lines  # 30 added, 10 listed
    code, out, _ = run(config, capsys, OLDER, NEWER, "--limit", "100")
    assert code == 0 and "... and" not in out


def test_cli_json(config, capsys, sqlite_store, files):
    code, out, err = run(config, capsys, OLDER, NEWER, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"a", "b", "languages", "summary", "added", "removed", "retyped",
                           "replaced", "renamed", "labels_added", "labels_removed"}
    assert set(result["summary"]) == {"added", "removed", "retyped", "replaced", "renamed",
                                      "labels"}
    assert set(result["added"][0]) == {"uri", "type", "label"}
    assert set(result["replaced"][0]) == {"uri", "successor", "source", "type", "label",
                                          "successor_label"}
    assert set(result["labels_added"]["en"][0]) == {"uri", "kind", "label"}
    check(result, expected_diff(*files))


def test_cli_same_release(config, capsys):
    code, out, _ = run(config, capsys, NEWER, NEWER)
    assert code == 0 and out == "1.2.0 against 1.2.0: no differences\n"
    code, out, _ = run(config, capsys, NEWER, NEWER, "--json")
    assert code == 0 and json.loads(out)["added"] == []


@pytest.mark.parametrize("args, message", [
    ((OLDER, "1.3.0"), "esco-kpi: error: version '1.3.0' is not loaded (loaded: 1.0.8, 1.2.0)"),
    (("x", NEWER), "esco-kpi: error: version 'x' is not loaded (loaded: 1.0.8, 1.2.0)"),
])
def test_cli_unknown_version(config, capsys, args, message):
    code, out, err = run(config, capsys, *args)
    assert code == 1 and out == "" and err == message + "\n"


@pytest.mark.parametrize("args, text", [
    ((OLDER,), "Missing argument 'B'"),
    ((OLDER, NEWER, "--limit", "-1"), "--limit"),
])
def test_cli_bad_arguments(config, capsys, args, text):
    code, _, err = run(config, capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and text in lines[0], err
