"""ESCO releases loaded as ESCO publishes them: several downloads of one release (languages
added when their concepts agree), reports with files read, ignored and warnings, collections
and replaced URIs, `catalogue list` and `catalogue remove` (events back to quarantine), on real
SQLite and PostgreSQL stores, with small releases cut from the real files of kpi/data/esco."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import func, select

from esco_kpi.cli import main
from kpi.catalogue.files import CatalogueError, collection_name
from kpi.catalogue.load import (
    bundled_path,
    catalogue_token,
    load_catalogue,
    releases,
    remove_release,
    versions,
)
from kpi.catalogue.quarantine import replay
from kpi.catalogue.successors import SKILL_BASE, code_successors, load_successors
from kpi.store.db import (
    catalogue_versions,
    concept_collections,
    concept_labels,
    concept_successors,
    concepts,
    events,
)
from tests.conftest import write_config
from tests.kpi_fixtures import Store, make_store, store_on

CODE_RE = re.compile(r"^[A-Z]\d+(\.\d+)*$")
TABLES = (catalogue_versions, concepts, concept_labels, concept_collections, concept_successors)


# ---------------------------------------------------------------------------------------------
# Small releases cut from the real ESCO files


@cache
def esco_file(name: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """(header, rows) of a bundled ESCO file, e.g. "occupations_en.csv.gz"."""
    with gzip.open(bundled_path() / name, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader))
        return header, tuple(tuple(row) for row in reader)


def uri_of(name: str, row: tuple[str, ...]) -> str:
    return row[esco_file(name)[0].index("conceptUri")]


def write_cut(folder: Path, target: str, source: str, uris: list[str] | set[str],
              extra: list[tuple[str, ...]] = ()) -> Path:
    """`target` in ESCO's CSV format: the rows of the bundled `source` whose URI is in `uris`
    (in the file's order), then `extra` rows."""
    header, rows = esco_file(source)
    wanted = set(uris)
    path = folder / target
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(r for r in rows if uri_of(source, r) in wanted)
        writer.writerows(extra)
    return path


@cache
def picks() -> dict[str, list[str]]:
    """The URIs of release A: occupations that the Dutch v1.0.8 file has too, skills (among
    them green ones), skill groups with and without a skill-group code."""
    dutch = {uri_of("occupations_nl_v1.0.8.csv.gz", r)
             for r in esco_file("occupations_nl_v1.0.8.csv.gz")[1]}
    occupations = [u for u in (uri_of("occupations_en.csv.gz", r)
                               for r in esco_file("occupations_en.csv.gz")[1]) if u in dutch]
    skills = [uri_of("skills_en.csv.gz", r) for r in esco_file("skills_en.csv.gz")[1]]
    green = [uri_of("greenSkillsCollection_en.csv.gz", r)
             for r in esco_file("greenSkillsCollection_en.csv.gz")[1]]
    header, groups = esco_file("skillGroups_en.csv.gz")
    code = header.index("code")
    coded = [uri_of("skillGroups_en.csv.gz", r) for r in groups if CODE_RE.match(r[code])]
    isced = [uri_of("skillGroups_en.csv.gz", r) for r in groups if "/isced-f/" in r[1]]
    others = [u for u in skills if u not in set(green)]
    return {"occupation": occupations[:30], "skill": others[:40] + green[:5],
            "skill_group": coded[:12] + isced[:4], "green": green[:7],
            "spare_occupation": occupations[30:31]}


def release_a(folder: Path, tag: str = "en", *, occupations: int = 30) -> Path:
    """Release A in English: 30 occupations, 45 skills, 16 skill groups, a green collection
    of 7 members of which 5 are skills of A."""
    p = picks()
    write_cut(folder, f"occupations_{tag}.csv", "occupations_en.csv.gz",
              p["occupation"][:occupations])
    write_cut(folder, f"skills_{tag}.csv", "skills_en.csv.gz", p["skill"])
    write_cut(folder, f"skillGroups_{tag}.csv", "skillGroups_en.csv.gz", p["skill_group"])
    write_cut(folder, f"greenSkillsCollection_{tag}.csv", "greenSkillsCollection_en.csv.gz",
              p["green"])
    return folder


def dutch(folder: Path, uris: list[str] | None = None, extra: list[tuple[str, ...]] = ()
          ) -> Path:
    """A Dutch download of A's occupations, from ESCO's Dutch occupations file."""
    write_cut(folder, "occupations_nl.csv", "occupations_nl_v1.0.8.csv.gz",
              picks()["occupation"] if uris is None else uris, extra)
    return folder


def nl_row(uri: str) -> tuple[str, ...]:
    """The Dutch row of an occupation, e.g. one that release A does not have."""
    rows = esco_file("occupations_nl_v1.0.8.csv.gz")[1]
    return next(r for r in rows if uri_of("occupations_nl_v1.0.8.csv.gz", r) == uri)


# ---------------------------------------------------------------------------------------------
# Stores and the command line


@pytest.fixture
def store(backend, tmp_path) -> Iterator[Store]:
    """An empty store (tables, no catalogue) of each backend."""
    with store_on(backend, lambda url: make_store(tmp_path / "store", url)) as store:
        yield store


class Cli:
    """esco_kpi.cli.main in this process: what a real process runs, one-line errors included."""

    def __init__(self, config: Path, capsys, monkeypatch) -> None:
        self.config, self.capsys, self.monkeypatch = config, capsys, monkeypatch

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = main(["--config", str(self.config), *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, err
        return out

    def error(self, *args: str) -> str:
        code, _, err = self(*args)
        # Progress bars (the labels of the steps done) may come first on stderr.
        lines = [line for line in err.strip().splitlines() if not line.startswith("catalogue:")]
        assert code != 0 and len(lines) == 1, err
        assert lines[0].startswith("esco-kpi: error: ") and "Traceback" not in err
        return lines[0]


@pytest.fixture
def cli(store, tmp_path, capsys, monkeypatch) -> Cli:
    return Cli(write_config(store.settings, tmp_path), capsys, monkeypatch)


def count(engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every catalogue row: to show that a refused load changed nothing."""
    with engine.connect() as conn:
        return {t.name: sorted(tuple(str(v) for v in row) for row in conn.execute(select(t)))
                for t in TABLES}


def report_of(engine, version: str) -> dict:
    with engine.connect() as conn:
        return json.loads(conn.execute(select(catalogue_versions.c.report).where(
            catalogue_versions.c.version == version)).scalar_one())


def concept_set(engine, version: str) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        return set(conn.execute(select(concepts.c.uri, concepts.c.concept_type)
                                .where(concepts.c.version == version)).all())


# ---------------------------------------------------------------------------------------------
# Adding a language to a release


def test_second_language_added(store, tmp_path):
    engine = store.engine
    first = load_catalogue(engine, release_a(tmp_path / "a"), "1.2.0")
    assert first.mode == "new" and first.languages == ("en",)
    assert first.by_type == {"occupation": 30, "skill": 45, "skill_group": 16}
    before = concept_set(engine, "1.2.0")
    token = catalogue_token(engine)

    added = load_catalogue(engine, dutch(tmp_path / "nl"), "1.2.0")
    assert (added.mode, added.added_languages) == ("added", ("nl",))
    assert added.languages == ("en", "nl")
    assert concept_set(engine, "1.2.0") == before  # concepts unchanged
    nl = count(engine, concept_labels, version="1.2.0", language="nl")
    assert count(engine, concept_labels, version="1.2.0", language="nl", kind="preferred") == 30
    assert added.labels == first.labels + nl == count(engine, concept_labels)
    assert added.labels_added == nl
    assert catalogue_token(engine) != token  # the collector and the aggregator see it
    with engine.connect() as conn:
        row = conn.execute(select(catalogue_versions)).one()
    assert (row.concepts, row.labels, row.languages) == (91, added.labels, "en,nl")

    report = report_of(engine, "1.2.0")
    assert [load["mode"] for load in report["loads"]] == ["new", "added"]
    assert report["loads"][1]["added_languages"] == ["nl"]
    assert report["loads"][1]["files"] == [{
        "path": "occupations_nl.csv", "from": str(tmp_path / "nl"), "format": "full",
        "kind": "occupation", "language": "nl", "rows": 30, "version": None,
        "modified": report["loads"][1]["modified"]}]
    assert report["concepts"] == {"occupation": 30, "skill": 45, "skill_group": 16}
    assert report["languages"] == ["en", "nl"]
    # The Dutch download of a kind the release has, but nothing of the other kinds: no
    # comparison for those, and no "no skills" warning (the release has skills).
    assert report["loads"][1]["warnings"] == []

    # Another Dutch download of the release: its preferred label of a concept replaces the
    # stored one; alternative labels are the union.
    uri = picks()["occupation"][0]
    row = list(nl_row(uri))
    row[3], row[4] = "nieuwe naam", "andere naam"
    fixed = dutch(tmp_path / "nl-fixed", picks()["occupation"][1:], extra=[tuple(row)])
    again = load_catalogue(engine, fixed, "1.2.0")
    assert again.added_languages == () and again.labels_added == 1
    with engine.connect() as conn:
        labels = set(conn.execute(select(concept_labels.c.kind, concept_labels.c.label).where(
            concept_labels.c.uri == uri, concept_labels.c.language == "nl")).all())
    assert ("preferred", "nieuwe naam") in labels and ("alt", "andere naam") in labels
    assert sum(1 for kind, _ in labels if kind == "preferred") == 1
    assert concept_set(engine, "1.2.0") == before


@pytest.mark.parametrize("change", ["one more", "one less", "type changed"])
def test_disagreeing_download_refused(store, tmp_path, change):
    engine = store.engine
    load_catalogue(engine, release_a(tmp_path / "a"), "1.2.0")
    before = snapshot(engine)
    p = picks()
    if change == "one more":
        spare = p["spare_occupation"][0]
        folder, expected = dutch(tmp_path / "nl", extra=[nl_row(spare)]), (
            f"{spare} (an occupation) is in {tmp_path / 'nl'} but not in release 1.2.0")
    elif change == "one less":
        gone = p["occupation"][0]
        folder, expected = dutch(tmp_path / "nl", p["occupation"][1:]), (
            f"{gone} (an occupation) is in release 1.2.0 as loaded but not in")
    else:
        skill = p["skill"][0]
        row = list(nl_row(p["occupation"][0]))
        row[1] = skill  # a skill of A written as a Dutch occupation
        folder, expected = dutch(tmp_path / "nl", extra=[tuple(row)]), (
            f"{skill} is a skill in release 1.2.0 as loaded but an occupation in")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(engine, folder, "1.2.0")
    message = str(info.value)
    assert "disagree with release 1.2.0" in message and expected in message, message
    assert "(1 difference)" in message and "nothing was stored" in message
    assert "\n" not in message
    assert snapshot(engine) == before


def test_several_paths_in_one_command(store, cli, tmp_path):
    out = cli.ok("catalogue", "load", str(release_a(tmp_path / "a")), str(dutch(tmp_path / "nl")),
                 "--version", "1.3.0")
    assert out.startswith("Loaded ESCO 1.3.0: 91 concepts, ")
    assert "in 2 languages (en, nl) from 5 files" in out
    assert f"{tmp_path / 'nl'}: occupations_nl.csv  nl  occupation  30 rows" in out
    assert versions(store.engine) == ["1.3.0"]
    assert count(store.engine, concept_labels, language="nl", kind="preferred") == 30

    # A second path that disagrees with the first: one line, nothing stored.
    spare = picks()["spare_occupation"][0]
    line = cli.error("catalogue", "load", str(release_a(tmp_path / "b")),
                     str(dutch(tmp_path / "nl2", extra=[nl_row(spare)])), "--version", "1.4.0")
    assert f"{tmp_path / 'nl2'}: its concepts disagree with those of {tmp_path / 'b'}" in line
    assert spare in line
    assert versions(store.engine) == ["1.3.0"]


def test_language_tags_in_file_names(store, tmp_path):
    folder = release_a(tmp_path / "a", tag="en-us")
    write_cut(folder, "skills_zh-cn.csv", "skills_en.csv.gz", picks()["skill"][:3])
    write_cut(folder, "occupations_NL-be.csv", "occupations_nl_v1.0.8.csv.gz",
              picks()["occupation"])
    summary = load_catalogue(store.engine, folder, "1.2.0")
    assert summary.languages == ("en", "nl")
    assert summary.by_type == {"occupation": 30, "skill": 45, "skill_group": 16}
    read = {f["path"]: f["language"] for f in summary.report["files"]}
    assert read["occupations_en-us.csv"] == "en" and read["occupations_NL-be.csv"] == "nl"
    assert read["greenSkillsCollection_en-us.csv"] == "en"
    assert summary.report["ignored"] == [{
        "path": "skills_zh-cn.csv", "from": str(folder),
        "reason": "language tag 'zh-cn': 'zh' is not one of ESCO's 28 languages (ar, bg, cs, "
                  "da, de, el, en, es, et, fi, fr, ga, hr, hu, is, it, lt, lv, mt, nl, no, pl, "
                  "pt, ro, sk, sl, sv, uk)"}]


def test_ignored_files_listed_with_reasons(store, tmp_path):
    folder = release_a(tmp_path / "a")
    (folder / "README.txt").write_text("ESCO dataset")
    (folder / "occupationSkillRelations_en.csv").write_text("occupationUri,skillUri\nx,y\n")
    (folder / "skills_en_attr_sources.csv").write_text("uri,source\nx,y\n")
    (folder / "occupations_xyz.csv").write_text("conceptUri,preferredLabel\n")
    summary = load_catalogue(store.engine, folder, "1.2.0")
    reasons = {f["path"]: f["reason"] for f in summary.report["ignored"]}
    assert reasons == {
        "README.txt": "not a CSV file",
        "occupationSkillRelations_en.csv": "not one of ESCO's concept, label or collection "
                                           "files (relations, hierarchies and concept schemes "
                                           "are not loaded)",
        "occupations_xyz.csv": reasons["occupations_xyz.csv"],
        "skills_en_attr_sources.csv": "holds no labels (no preferredLabel or language columns)",
    }
    assert reasons["occupations_xyz.csv"].startswith("language tag 'xyz': 'xyz' is not one")
    assert summary.files == 4 and summary.report["warnings"] == []
    assert report_of(store.engine, "1.2.0")["loads"][0]["ignored"] == summary.report["ignored"]


# ---------------------------------------------------------------------------------------------
# Warnings


def test_warning_no_skills_file(store, tmp_path):
    folder = tmp_path / "occ"
    write_cut(folder, "occupations_en.csv", "occupations_en.csv.gz", picks()["occupation"])
    summary = load_catalogue(store.engine, folder, "1.2.0")
    assert summary.report["warnings"] == [
        "no skills file (skills_<language>.csv): release 1.2.0 has no skills"]
    # The skills download of the same release: a kind the release lacks is added.
    skills = tmp_path / "skills"
    write_cut(skills, "skills_en.csv", "skills_en.csv.gz", picks()["skill"])
    added = load_catalogue(store.engine, skills, "1.2.0")
    assert (added.mode, added.by_type) == ("added", {"occupation": 30, "skill": 45})
    assert added.report["warnings"] == [] and count(store.engine, concepts) == 75


def test_warning_two_releases_in_one_zip(store, tmp_path):
    a = release_a(tmp_path / "a")
    write_cut(tmp_path / "b", "occupations_en.csv", "occupations_en.csv.gz",
              picks()["spare_occupation"])
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in a.iterdir():
            zf.write(file, f"v1.2.0/{file.name}")
        zf.write(tmp_path / "b" / "occupations_en.csv", "v1.1.1/occupations_en.csv")
    summary = load_catalogue(store.engine, archive, "1.2.0")
    assert summary.report["warnings"] == [
        f"{archive}: v1.1.1/occupations_en.csv and v1.2.0/occupations_en.csv are the same file "
        f"of two releases? Their concepts and labels were merged"]
    assert summary.by_type["occupation"] == 31


def test_warning_modified_dates_far_apart(store, tmp_path):
    # An unsuffixed Dutch file of v1.0.8 (newest modifiedDate 2020) beside files of v1.2.0.
    folder = dutch(release_a(tmp_path / "a"))
    summary = load_catalogue(store.engine, folder, "1.2.0")
    [warning] = summary.report["warnings"]
    assert re.fullmatch(
        rf"{re.escape(str(folder))}: the newest modifiedDate of occupations_nl.csv "
        r"\(20\d\d-\d\d-\d\d\) is more than a year before that of occupations_en.csv "
        r"\(20\d\d-\d\d-\d\d\): the files of two releases\?", warning), warning


def test_warning_version_suffixes(store, tmp_path):
    mixed = release_a(tmp_path / "mixed")
    (mixed / "occupations_en.csv").rename(mixed / "occupations_en_v1.1.1.csv")
    summary = load_catalogue(store.engine, mixed, "1.2.0")
    [warning] = summary.report["warnings"]
    assert "the files defining the concepts are of different ESCO versions" in warning
    assert "occupations_en_v1.1.1.csv (v1.1.1)" in warning and "skills_en.csv (v1.2.0)" in warning

    named = tmp_path / "named"
    write_cut(named, "occupations_en_v1.1.1.csv", "occupations_en.csv.gz", picks()["occupation"])
    write_cut(named, "skills_en_v1.1.1.csv", "skills_en.csv.gz", picks()["skill"])
    summary = load_catalogue(store.engine, named, "1.3.0")
    assert summary.report["warnings"] == [
        f"{named}: the files defining the concepts are named as ESCO v1.1.1 but are loaded as "
        f"1.3.0"]


def test_warning_version_against_modified_dates(store, cli, tmp_path):
    engine = store.engine
    a = release_a(tmp_path / "a")
    newest = load_catalogue(engine, a, "1.2.0").report["modified"]
    assert newest and newest.startswith("20")
    # An old release (Dutch v1.0.8 files, newest modifiedDate in 2020) mistyped as 12.0.
    old = tmp_path / "old"
    dutch(old)
    write_cut(old, "skills_fr.csv", "skills_fr_v1.0.3.csv.gz", picks()["skill"])
    out = cli.ok("catalogue", "load", str(old), "--version", "12.0")
    old_date = report_of(engine, "12.0")["modified"]
    assert old_date < newest
    expected = (f"the files' newest modifiedDate ({old_date}) is before that of the older "
                f"release 1.2.0 ({newest}): is 12.0 the right version?")
    assert f"    warning: {expected}" in out
    assert report_of(engine, "12.0")["loads"][0]["warnings"] == [expected]
    assert "12.0 *" in cli.ok("catalogue", "list")
    assert "Removed ESCO 12.0" in cli.ok("catalogue", "remove", "12.0")  # undone
    assert versions(engine) == ["1.2.0"]

    # The same files again under another number; and newer files under an older number.
    again = load_catalogue(engine, a, "1.1.0")
    assert again.report["warnings"] == [
        f"the files' newest modifiedDate ({newest}) is that of release 1.2.0: the same release "
        f"loaded again as 1.1.0?"]
    remove_release(engine, "1.2.0")
    load_catalogue(engine, old, "2.0")
    later = load_catalogue(engine, a, "1.9")
    assert (f"the files' newest modifiedDate ({newest}) is after that of the newer release "
            f"2.0 ({old_date}): is 1.9 the right version?") in later.report["warnings"]


# ---------------------------------------------------------------------------------------------
# Files that cannot be read: the load stops, nothing stored


def test_unreadable_file_stops_the_load(store, cli, tmp_path):
    engine = store.engine
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "occupations_nl.csv").write_bytes(
        b"conceptUri,preferredLabel\nhttp://data.europa.eu/esco/occupation/x,caf\xe9\n")
    line = cli.error("catalogue", "load", str(release_a(tmp_path / "a")), str(bad),
                     "--version", "1.2.0")
    assert f"{bad / 'occupations_nl.csv'}, line 2: is not UTF-8 text" in line
    assert all(count(engine, table) == 0 for table in TABLES)

    load_catalogue(engine, tmp_path / "a", "1.2.0")
    before = snapshot(engine)
    malformed = dutch(tmp_path / "nl")
    with (malformed / "occupations_nl.csv").open("a", encoding="utf-8") as handle:
        handle.write("Occupation,http://data.europa.eu/esco/occupation/y,too few\n")
    last = (malformed / "occupations_nl.csv").read_text(encoding="utf-8").count("\n")
    line = cli.error("catalogue", "load", str(malformed), "--version", "1.2.0")
    # the physical line: ESCO's multi-valued cells span several
    assert f"{malformed / 'occupations_nl.csv'}, line {last}: malformed row: expected 14 " \
           f"fields as in the header, found 3" in line
    assert snapshot(engine) == before


def test_replace(store, tmp_path):
    engine = store.engine
    load_catalogue(engine, [release_a(tmp_path / "a"), dutch(tmp_path / "nl")], "1.2.0")
    smaller = release_a(tmp_path / "small", occupations=10)
    replaced = load_catalogue(engine, smaller, "1.2.0", replace=True)
    assert (replaced.mode, replaced.languages) == ("replaced", ("en",))
    assert replaced.by_type == {"occupation": 10, "skill": 45, "skill_group": 16}
    assert count(engine, concepts) == 71 and count(engine, concept_labels, language="nl") == 0
    report = report_of(engine, "1.2.0")
    assert [load["mode"] for load in report["loads"]] == ["replaced"]
    assert report["collections"] == {"green": 5} and report["successors"] == 12


# ---------------------------------------------------------------------------------------------
# Collections, codes and replaced URIs


def test_collections_codes_and_successors_of_a_small_release(store, tmp_path):
    engine = store.engine
    folder = release_a(tmp_path / "a")
    # An old collection file: A's first three green skills in a file ESCO no longer ships.
    write_cut(folder, "ictSkillsCollection_en.csv", "greenSkillsCollection_en.csv.gz",
              picks()["green"][:3])
    summary = load_catalogue(engine, folder, "1.2.0")
    assert summary.collections == {"green": 5, "ict": 3}
    assert summary.report["notes"] == [
        "greenSkillsCollection_en.csv: 2 members not among the concepts of the release, left "
        "out of collection green",
        "ictSkillsCollection_en.csv: not one of ESCO's current collections; recorded as "
        "collection 'ict'"]
    with engine.connect() as conn:
        green = set(conn.execute(select(concept_collections.c.uri).where(
            concept_collections.c.collection == "green")).scalars())
        codes = dict(conn.execute(select(concepts.c.uri, concepts.c.code)).all())
        stated = conn.execute(select(concept_successors)).all()
    assert green == set(picks()["green"][:5])
    header, rows = esco_file("skillGroups_en.csv.gz")
    expected = {uri_of("skillGroups_en.csv.gz", r): r[header.index("code")] for r in rows
                if uri_of("skillGroups_en.csv.gz", r) in set(picks()["skill_group"])}
    assert {u: codes[u] for u in expected} == expected
    assert all(codes[u] is None for u in picks()["skill"])  # skills_en.csv has no code column
    assert all(codes[u] for u in picks()["occupation"])
    assert len(stated) == 12 and {row.source for row in stated} == {"code"}
    assert {row.uri: row.successor_uri for row in stated} == {
        SKILL_BASE + code: uri for uri, code in expected.items() if CODE_RE.match(code)}


def test_code_successors_rule():
    new = SKILL_BASE + "0101f8a4-4243-4e67-813b-3e2a6274f7e2"
    isced = "http://data.europa.eu/esco/isced-f/00"
    old_kept = SKILL_BASE + "S1.1"
    codes = {new: "S2.9", isced: "00", SKILL_BASE + "x": "S", SKILL_BASE + "y": "S1.1",
             old_kept: "S1.1", SKILL_BASE + "z": "T3"}
    found = code_successors(codes, set(codes))
    # S1.1 is still a concept of the release: nothing replaced it. The bare letters were URIs
    # of their own in older releases (.../skill/S).
    assert found == {SKILL_BASE + "S2.9": new, SKILL_BASE + "T3": SKILL_BASE + "z",
                     SKILL_BASE + "S": SKILL_BASE + "x"}
    assert collection_name("ictSkillsCollection") == ("ict", False)
    assert collection_name("researchOccupationsCollection") == ("research_occupations", True)


def test_bundled_collections_and_successors(engine):
    files = {"green": 591, "digital": 1284, "digcomp": 25, "transversal": 95, "language": 359,
             "research": 40, "research_occupations": 122}
    with engine.connect() as conn:
        held = dict(conn.execute(select(concept_collections.c.collection, func.count())
                                 .where(concept_collections.c.version == "1.2.0")
                                 .group_by(concept_collections.c.collection)).all())
        codes = dict(conn.execute(select(concepts.c.uri, concepts.c.code).where(
            concepts.c.uri.in_([f"{SKILL_BASE}0101f8a4-4243-4e67-813b-3e2a6274f7e2",
                                "http://data.europa.eu/esco/isco/C0"]))).all())
        row = conn.execute(select(catalogue_versions)).one()
    assert held == files  # every member of the files is a concept of the release
    assert codes == {f"{SKILL_BASE}0101f8a4-4243-4e67-813b-3e2a6274f7e2": "S2.9",
                     "http://data.europa.eu/esco/isco/C0": "0"}
    successors = load_successors(engine)
    assert len(successors) == 420 == count(engine, concept_successors, source="code")
    assert successors[f"{SKILL_BASE}S2.9"] == f"{SKILL_BASE}0101f8a4-4243-4e67-813b-3e2a6274f7e2"
    assert not set(successors) & {u for u, _ in concept_set(engine, "1.2.0")}
    assert len(row.languages.split(",")) == 26
    report = json.loads(row.report)
    assert report["collections"] == files and report["successors"] == 420
    assert report["modified"] == "2024-05-02"  # skillGroups_en.csv's newest modifiedDate


# ---------------------------------------------------------------------------------------------
# list, remove, init --no-catalogue


def test_list_human_and_json(store, cli, tmp_path):
    assert "No ESCO release is loaded" in cli.ok("catalogue", "list")
    assert json.loads(cli.ok("catalogue", "list", "--json")) == []
    load_catalogue(store.engine, [release_a(tmp_path / "a"), dutch(tmp_path / "nl")], "1.10.0")
    load_catalogue(store.engine, release_a(tmp_path / "b", occupations=10), "1.9.0")
    lines = cli.ok("catalogue", "list").splitlines()
    assert lines[0].split()[:8] == ["version", "concepts", "occupations", "ISCO", "groups",
                                    "skills", "skill", "groups"]
    assert lines[1].split()[:8] == ["1.9.0", "71", "10", "0", "45", "16",
                                    lines[1].split()[6], "en"]
    assert lines[2].split()[:3] == ["1.10.0", "*", "91"]
    assert "en, nl" in lines[2] and str(tmp_path / "a") in lines[2]
    assert lines[3] == "* the current release (the newest version number)"
    listed = json.loads(cli.ok("catalogue", "list", "--json"))
    assert [(r["version"], r["current"]) for r in listed] == [("1.9.0", False), ("1.10.0", True)]
    newest = listed[1]
    assert newest["concepts_by_type"] == {"occupation": 30, "skill": 45, "skill_group": 16}
    assert newest["languages"] == ["en", "nl"] and newest["collections"] == {"green": 5}
    assert newest["loads"][0]["mode"] == "new" and newest["loaded_at"]
    assert newest["source"] == f"{(tmp_path / 'a').resolve()}, {(tmp_path / 'nl').resolve()}"
    assert releases(store.engine) == listed


def test_remove_sends_events_back_to_quarantine(store, cli, tmp_path):
    engine = store.engine
    p = picks()
    old = tmp_path / "old"  # an older release with A's occupations only
    write_cut(old, "occupations_en.csv", "occupations_en.csv.gz", p["occupation"])
    load_catalogue(engine, old, "1.1.0")
    load_catalogue(engine, release_a(tmp_path / "a"), "1.2.0")
    successor = next(iter(load_successors(engine)))  # a code-style URI that 1.2.0 replaced
    store.implementer(1)
    kept, skill, replaced, no_concept, waiting = store.events(
        {"concept_uri": p["occupation"][0]}, {"concept_uri": p["skill"][0]},
        {"concept_uri": successor}, {"type": "concept_proposed", "concept_uri": None,
                                     "label": "prompt engineer", "concept_type": "occupation"},
        {"concept_uri": p["skill"][1], "status": "quarantined",
         "quarantine_reason": "newer_esco_version", "esco_version": "9.0"})

    out = cli.ok("catalogue", "remove", "1.2.0")
    assert out.startswith("Removed ESCO 1.2.0: 91 concepts, ")
    assert "2 accepted events went back to quarantine" in out
    with engine.connect() as conn:
        status = {row.id: (row.status, row.quarantine_reason) for row in conn.execute(
            select(events.c.id, events.c.status, events.c.quarantine_reason))}
    assert status == {kept: ("accepted", None), skill: ("quarantined", "unknown_concept"),
                      replaced: ("quarantined", "unknown_concept"),
                      no_concept: ("accepted", None),
                      waiting: ("quarantined", "newer_esco_version")}
    assert versions(engine) == ["1.1.0"]
    for table in TABLES:
        assert count(engine, table, version="1.2.0") == 0
    assert replay(engine).released == 0  # 1.1.0 does not know them

    # Once a release knows them again (the replaced URI through its successor), they count.
    load_catalogue(engine, tmp_path / "a", "1.2.0")
    summary = replay(engine)
    assert (summary.checked, summary.released, summary.still_quarantined) == (3, 2, 1)
    with engine.connect() as conn:
        back = set(conn.execute(select(events.c.concept_uri).where(
            events.c.status == "accepted")).scalars())
    assert {p["skill"][0], successor} <= back

    line = cli.error("catalogue", "remove", "7.7")
    assert line == "esco-kpi: error: version 7.7 is not loaded (loaded: 1.1.0, 1.2.0)"
    assert "No accepted event went back" in cli.ok("catalogue", "remove", "1.1.0")


def test_init_without_catalogue(store, cli):
    out = cli.ok("init", "--no-catalogue")
    assert "no catalogue loaded" in out
    assert versions(store.engine) == []
    assert "No ESCO release is loaded" in cli.ok("catalogue", "list")
    line = cli.error("catalogue", "load", "--version", "1.2.0")
    assert "Missing argument 'PATHS...'" in line
