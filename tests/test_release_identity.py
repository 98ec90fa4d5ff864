"""Which release a concept belongs to: two releases cut from the bundled ESCO files, a concept
that changes type between them, an occupation one of them dropped, a skill group whose old
code-style URI the newer one replaced, a label only the older one had and a gendered label.

Through the real collector (Flask app), a real SQLite or PostgreSQL store, the real aggregator
and DuckDB warehouse, and the indicators as the dashboard runs them.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from collector.app import create_app
from dashboard.app import create_dashboard
from dashboard.callbacks import render_body
from dashboard.pages import BY_PATH
from dashboard.state import FilterState
from kpi.catalogue import load as catalogue_load
from kpi.catalogue.index import CatalogueIndex
from kpi.catalogue.load import bundled_path, load_catalogue
from kpi.catalogue.quarantine import replay
from kpi.settings import Settings
from kpi.store.db import concept_successors, events, init_store, make_engine, outcome_counts
from kpi.store.registry import add_implementer
from kpi.warehouse.aggregate import run_aggregation
from kpi.warehouse.indicators import Period, query
from kpi.warehouse.reader import open_reader
from tests.dashboard_world import data_of, find
from tests.helpers import days_ago, event
from tests.kpi_fixtures import pg_database

OLDER, NEWER = "1.1.0", "1.2.0"
SKILL_BASE = "http://data.europa.eu/esco/skill/"
UNKNOWN = SKILL_BASE + "not-in-any-release"
PLANTED_OLD_GROUP_LABEL = "welcoming people at the door"


def last_week() -> Period:
    """The seven days to today, as of the call: a module constant would go stale at midnight."""
    return Period.custom(days_ago(6), days_ago(0))


# ---------------------------------------------------------------------------------------------
# Two releases cut from the bundled files (kpi/data/esco), in ESCO's CSV format


def _read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with gzip.open(bundled_path() / f"{name}.csv.gz", "rt", encoding="utf-8",
                   newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or ()), list(reader)


@dataclass(frozen=True)
class Cut:
    """The rows of the cut and the concepts the tests follow."""

    occupations: tuple[list[str], list[dict]]
    occupations_de: tuple[list[str], list[dict]]
    skills: tuple[list[str], list[dict]]
    groups: tuple[list[str], list[dict]]
    isco: tuple[list[str], list[dict]]

    @property
    def type_changed(self) -> str:  # a skill group in 1.1.0, a skill in 1.2.0
        return self.skills[1][0]["conceptUri"]

    @property
    def old_alt(self) -> str:  # 1.2.0 dropped its first alternative label
        return self.skills[1][1]["conceptUri"]

    @property
    def steady_skill(self) -> str:
        return self.skills[1][2]["conceptUri"]

    @property
    def gendered(self) -> str:  # German preferred label "form1/form2", no other German labels
        return self.occupations[1][0]["conceptUri"]

    @property
    def removed(self) -> str:  # only in 1.1.0
        return self.occupations[1][1]["conceptUri"]

    @property
    def added(self) -> str:  # only in 1.2.0
        return self.occupations[1][2]["conceptUri"]

    @property
    def group(self) -> str:  # 1.1.0 has it as .../skill/<code>; 1.2.0 replaced that URI
        return self.groups[1][0]["conceptUri"]

    @property
    def old_group(self) -> str:
        return SKILL_BASE + self.groups[1][0]["code"]

    @property
    def group2(self) -> str:  # 1.1.0 gives no code; 1.2.0 replaced .../skill/<code>
        return self.groups[1][1]["conceptUri"]

    @property
    def old_group2(self) -> str:
        return SKILL_BASE + self.groups[1][1]["code"]

    @property
    def steady_group(self) -> str:
        return self.groups[1][2]["conceptUri"]


@cache
def cut() -> Cut:
    occupations = _read("occupations_en")
    skills = _read("skills_en")
    fields, groups = _read("skillGroups_en")
    # skill groups under /skill/ with a dotted code, like ESCO's old code-style URIs
    coded = [g for g in groups if g["conceptUri"].startswith(SKILL_BASE)
             and "." in g["code"]]
    wanted = occupations[1][:40]
    german = [r for r in _read("occupations_de")[1] if r["conceptUri"] == wanted[0]["conceptUri"]]
    return Cut(
        occupations=(occupations[0], wanted),
        occupations_de=(_read("occupations_de")[0], german),
        skills=(skills[0], skills[1][:80]),
        groups=(fields, coded[:15]),
        isco=(lambda f: (f[0], f[1][:10]))(_read("ISCOGroups_en")),
    )


def _write(folder: Path, name: str, fields: list[str], rows: list[dict]) -> None:
    with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)


def write_release(folder: Path, version: str) -> Path:
    """Release 1.1.0 or 1.2.0 of the cut, written to `folder`."""
    c = cut()
    folder.mkdir(parents=True)
    older = version == OLDER
    occ_fields, occs = c.occupations
    _write(folder, "occupations_en", occ_fields,
           [r for r in occs if r["conceptUri"] != (c.added if older else c.removed)])
    de_fields, de_rows = c.occupations_de
    # the real gendered German label, planted alone: its forms are no labels of their own
    _write(folder, "occupations_de", de_fields,
           [{**r, "altLabels": "", "hiddenLabels": ""} for r in de_rows])
    skill_fields, skills = c.skills
    skill_rows = []
    for row in skills:
        if row["conceptUri"] == c.type_changed and older:
            continue
        if row["conceptUri"] == c.old_alt and not older:
            row = {**row, "altLabels": "\n".join(row["altLabels"].splitlines()[1:])}
        skill_rows.append(row)
    _write(folder, "skills_en", skill_fields, skill_rows)
    group_fields, groups = c.groups
    group_rows = []
    for row in groups:
        if older and row["conceptUri"] == c.group:
            # the old code-style URI is the concept itself, with a label 1.2.0 no longer has
            row = {**row, "conceptUri": c.old_group, "code": "",
                   "altLabels": PLANTED_OLD_GROUP_LABEL}
        elif older and row["conceptUri"] == c.group2:
            row = {**row, "code": ""}
        group_rows.append(row)
    if older:
        tc = next(r for r in skills if r["conceptUri"] == c.type_changed)
        group_rows.append({name: "" for name in group_fields} | {
            "conceptType": "SkillGroup", "conceptUri": tc["conceptUri"],
            "preferredLabel": tc["preferredLabel"], "altLabels": tc["altLabels"],
            "status": "released"})
    _write(folder, "skillGroups_en", group_fields, group_rows)
    _write(folder, "ISCOGroups_en", *c.isco)
    return folder


def state_successor(engine: Engine, version: str, old: str, new: str) -> None:
    """Make sure `version` states that `new` replaced `old` (the loader reads it from the code
    column; a loader that does not yet is helped here)."""
    with engine.begin() as conn:
        have = conn.execute(select(concept_successors.c.successor_uri).where(
            concept_successors.c.version == version, concept_successors.c.uri == old)
        ).scalar_one_or_none()
        if have is None:
            conn.execute(insert(concept_successors).values(
                version=version, uri=old, successor_uri=new, source="code"))
        else:
            assert have == new


# ---------------------------------------------------------------------------------------------
# A store, its collector and three portals


@dataclass
class World:
    settings: Settings
    engine: Engine
    client: object
    keys: list[str]
    releases: Path

    def load(self, version: str) -> None:
        folder = self.releases / version
        if not folder.exists():
            write_release(folder, version)
        load_catalogue(self.engine, folder, version)
        if version == NEWER:
            c = cut()
            state_successor(self.engine, NEWER, c.old_group, c.group)
            state_successor(self.engine, NEWER, c.old_group2, c.group2)

    def send(self, events_: list[dict], portal: int = 0, status: int = 202) -> dict:
        response = self.client.post("/v1/events", json={"events": events_},
                                    headers={"Authorization": f"Bearer {self.keys[portal]}"})
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def me(self, portal: int = 0) -> dict:
        return self.client.get("/v1/me", headers={
            "Authorization": f"Bearer {self.keys[portal]}"}).get_json()

    def aggregate(self) -> None:
        run_aggregation(self.settings, self.engine)

    def rows(self, indicator: str, period: Period | None = None, **filters) -> list[dict]:
        return query(self.settings, indicator, period or last_week(), **filters).rows

    def stored(self, event_id: str) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(events).where(events.c.event_id == event_id))
                        .mappings().one())

    def flagged(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(outcome_counts.c.events), 0))
                                    .where(outcome_counts.c.outcome == "flagged",
                                           outcome_counts.c.reason == "esco_version_mismatch")
                                    ).scalar_one())


def _world(backend: str, tmp_path: Path) -> Iterator[World]:
    """An empty store of `backend` (no release loaded), three portals and their collector."""
    databases = pg_database() if backend == "postgresql" else None
    values = {"storage.data_dir": str(tmp_path / "var")}
    if databases:
        values["storage.database_url"] = next(databases)  # skips without a PostgreSQL server
    settings = Settings(values, base_dir=tmp_path)
    engine = make_engine(settings)
    try:
        init_store(engine)
        keys = [add_implementer(engine, f"Portal {n}", country, "job_portal")[1]
                for n, country in ((1, "DE"), (2, "FR"), (3, "ES"))]
        app = create_app(settings)
        # re-read the catalogue on every request: these tests load releases in between
        app.extensions["esco_catalogue"].check_every = 0
        yield World(settings, engine, app.test_client(), keys, tmp_path / "releases")
        app.extensions["esco_store"].dispose()
    finally:
        engine.dispose()
        if databases:
            databases.close()  # drops the database


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    """An empty SQLite store with three portals; no release loaded yet."""
    yield from _world("sqlite", tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_world(request, tmp_path) -> Iterator[World]:
    """The same on SQLite and on PostgreSQL."""
    yield from _world(request.param, tmp_path)


def by_uri(rows: list[dict], uri: str, column: str = "concept_uri") -> list[dict]:
    return [r for r in rows if r[column] == uri]


# ---------------------------------------------------------------------------------------------
# The index: what is known, held by which release, and counted under which concept


def test_the_index_knows_replaced_uris_and_which_release_holds_each_concept(world):
    c = cut()
    world.load(OLDER)
    index = CatalogueIndex.load(world.engine)
    assert index.versions == (OLDER,)
    assert index.knows(c.old_group) and index.successor(c.old_group) is None
    assert not index.knows(c.old_group2)  # 1.1.0 gives that group no code
    assert index.concept_type(c.type_changed) == "skill_group"

    world.load(NEWER)
    index = CatalogueIndex.load(world.engine)
    assert index.versions == (OLDER, NEWER) and index.current_version == NEWER
    # a concept in both, with the newest release's type
    assert index.concept_type(c.type_changed) == "skill"
    assert index.holds(OLDER, c.type_changed) and index.holds(NEWER, c.type_changed)
    # dropped and added
    assert index.newest_holding(c.removed) == OLDER and not index.holds(NEWER, c.removed)
    assert index.newest_holding(c.added) == NEWER and not index.holds(OLDER, c.added)
    # replaced URIs: known, counted under their successor, held by the releases that hold
    # the successor or state the replacement (or held the URI itself)
    assert index.successor(c.old_group) == c.group and index.successor(c.group) is None
    assert index.successor(c.old_group2) == c.group2
    assert index.knows(c.old_group2) and index.concept_type(c.old_group2) == "skill_group"
    assert index.holds(OLDER, c.old_group) and index.holds(NEWER, c.old_group)
    assert index.holds(OLDER, c.old_group2)  # 1.1.0 holds the successor
    assert index.newest_holding(c.old_group) == NEWER
    assert not index.holds(OLDER, c.group)  # 1.1.0 had it under the old URI only
    # versions: "1.2" is release 1.2.0; a release that is not loaded holds nothing
    assert index.is_loaded("1.2") and index.holds("1.2", c.added)
    assert not index.is_loaded("1.0.0") and not index.holds("1.0.0", c.removed)
    assert not index.knows(UNKNOWN) and index.newest_holding(UNKNOWN) is None
    assert index.concept_type(UNKNOWN) is None

    # the warehouse's rule, statement by statement: a chain is followed one step, a
    # successor no release holds leaves the URI unknown, a URI the newest release holds is
    # no replaced URI, the newest statement wins
    chain, lost, held_uri = SKILL_BASE + "S99.1", SKILL_BASE + "S99.2", c.steady_skill
    state_successor(world.engine, OLDER, chain, c.old_group)  # -> replaced in turn -> group
    state_successor(world.engine, OLDER, lost, SKILL_BASE + "nowhere")
    state_successor(world.engine, OLDER, held_uri, c.group)
    state_successor(world.engine, OLDER, SKILL_BASE + "S99.3", c.added)
    state_successor(world.engine, NEWER, SKILL_BASE + "S99.3", c.steady_group)
    index = CatalogueIndex.load(world.engine)
    assert index.successor(chain) == c.group
    assert not index.knows(lost)
    assert index.successor(held_uri) is None and index.concept_type(held_uri) == "skill"
    assert index.successor(SKILL_BASE + "S99.3") == c.steady_group
    # held by 1.1.0 because 1.1.0 states it, although 1.1.0 lacks the successor it named
    assert index.holds(OLDER, SKILL_BASE + "S99.3")

    # the warehouse counts every replaced URI under the same successor
    world.aggregate()
    reader = open_reader(world.settings)
    try:
        published = dict(reader.execute("select uri, successor_uri from concept_successors")
                         .fetchall())
    finally:
        reader.close()
    with world.engine.connect() as conn:
        stated = set(conn.execute(select(concept_successors.c.uri)).scalars())
    assert {u: index.successor(u) for u in stated if index.successor(u)} == published
    assert {u for u in stated if index.knows(u) and index.successor(u)} == set(published)


# ---------------------------------------------------------------------------------------------
# The version check at the collector


NEWER_MESSAGE = ("Newer than every loaded release (newest 1.2.0); stored, and counted once "
                 "ESCO 1.3.0 is loaded.")
UNKNOWN_MESSAGE = ("Not in any loaded ESCO release (newest 1.2.0); stored, and counted if a "
                   "release that holds it is loaded.")


def test_the_version_check(any_world):
    w, c = any_world, cut()
    w.load(OLDER)
    w.load(NEWER)
    sent = [
        event("default-removed", concept_uri=c.removed),
        event("default-both", concept_uri=c.type_changed),
        event("mismatch-removed", concept_uri=c.removed, esco_version=NEWER),
        event("mismatch-added", concept_uri=c.added, esco_version=OLDER),
        event("held-as-group", concept_uri=c.type_changed, esco_version=OLDER),
        event("replaced-newer", concept_uri=c.old_group, esco_version=NEWER),
        event("replaced-default", concept_uri=c.old_group),
        event("unloaded-older", concept_uri=c.removed, esco_version="1.0.0"),
        event("replaced-stated", concept_uri=c.old_group2, esco_version="1.2"),
        event("proposal", type="concept_proposed", concept_type="skill", label="prompt design",
              concept_uri=None),
        event("too-new", concept_uri=c.type_changed, esco_version="1.3.0"),
        event("unknown", concept_uri=UNKNOWN),
        event("unknown-too-new", concept_uri=UNKNOWN, esco_version="1.3.0"),
    ]
    answer = w.send(sent)
    assert (answer["accepted"], answer["quarantined"], answer["duplicates"],
            answer["rejected"]) == (10, 3, 0, 0)
    assert answer["errors"] == [
        {"index": 10, "event_id": "too-new", "outcome": "quarantined",
         "reasons": {"esco_version": [NEWER_MESSAGE]}},
        {"index": 11, "event_id": "unknown", "outcome": "quarantined",
         "reasons": {"concept_uri": [UNKNOWN_MESSAGE]}},
        {"index": 12, "event_id": "unknown-too-new", "outcome": "quarantined",
         "reasons": {"esco_version": [
             "Newer than every loaded release (newest 1.2.0); stored, and counted once ESCO "
             "1.3.0 is loaded and holds the concept."],
             "concept_uri": ["Not in any loaded ESCO release (newest 1.2.0)."]}},
    ]
    # without esco_version: the newest release holding the concept, not the newest loaded
    assert w.stored("default-removed")["esco_version"] == OLDER
    assert w.stored("default-both")["esco_version"] == NEWER
    assert w.stored("replaced-default")["esco_version"] == NEWER
    assert w.stored("proposal")["esco_version"] == NEWER
    assert {w.stored(i)["status"] for i in ("mismatch-removed", "mismatch-added",
                                             "replaced-stated")} == {"accepted"}
    assert (w.stored("too-new")["quarantine_reason"], w.stored("unknown")["quarantine_reason"],
            w.stored("unknown-too-new")["quarantine_reason"]) == (
        "newer_esco_version", "unknown_concept", "newer_esco_version")
    # two events name a loaded release that lacks their concept: counted, and flagged
    assert w.flagged() == 2
    again = w.send(sent)  # a resend: duplicates, flagged no second time
    assert (again["accepted"], again["duplicates"]) == (0, 13)
    assert w.flagged() == 2
    assert {k: w.me()[k] for k in ("accepted", "duplicates", "quarantined", "rejected")} == {
        "accepted": 10, "duplicates": 13, "quarantined": 3, "rejected": 0}
    # a dry run stores and counts nothing
    assert w.client.post("/v1/events?dry_run=true", json={"events": [
        event("dry", concept_uri=c.removed, esco_version=NEWER)]},
        headers={"Authorization": f"Bearer {w.keys[0]}"}).get_json()["accepted"] == 1
    assert w.flagged() == 2

    w.aggregate()
    quality = w.rows("data_quality")
    assert [(r["outcome"], r["reason"], r["events"], r["still_quarantined"])
            for r in quality] == [
        ("flagged", "esco_version_mismatch", 2, None),
        ("quarantined", "newer_esco_version", 2, 2),
        ("quarantined", "unknown_concept", 1, 1),
    ]
    # the flagged events count like any other
    used = w.rows("most_used_concepts")
    assert by_uri(used, c.removed)[0]["usage"] == 3
    assert by_uri(used, c.added)[0]["usage"] == 1
    assert by_uri(used, c.group)[0]["usage"] == 2 and not by_uri(used, c.old_group)
    assert by_uri(used, c.group2)[0]["usage"] == 1

    # the data-quality page shows the new outcome in plain words
    if w.engine.dialect.name == "sqlite":
        week = last_week()
        body = render_body(data_of(create_dashboard(w.settings)), BY_PATH["quality"],
                           FilterState(preset="custom", start=week.start, end=week.end))
        text = repr([g.rowData for g in find(body, lambda x: isinstance(
            getattr(x, "rowData", None), list))])
        assert "counted, but the named ESCO version lacks the concept" in text
        assert "esco_version_mismatch" in text


def test_a_newer_version_is_released_once_loaded(world):
    c = cut()
    world.load(OLDER)
    answer = world.send([event("q-new", concept_uri=c.type_changed, esco_version=NEWER),
                         event("q-old-code", concept_uri=c.old_group2)])
    assert [e["reasons"] for e in answer["errors"]] == [
        {"esco_version": ["Newer than every loaded release (newest 1.1.0); stored, and "
                          "counted once ESCO 1.2.0 is loaded."]},
        {"concept_uri": ["Not in any loaded ESCO release (newest 1.1.0); stored, and counted "
                         "if a release that holds it is loaded."]},
    ]
    world.load(NEWER)
    # what the messages promised: quarantine replay agrees with the collector on "known"
    assert (replay(world.engine).released, replay(world.engine).checked) == (2, 0)
    world.aggregate()
    used = world.rows("most_used_concepts")
    assert by_uri(used, c.group2)[0]["usage"] == 1 and not by_uri(used, c.old_group2)
    assert by_uri(used, c.type_changed)[0]["usage"] == 1


def test_replay_gives_the_default_version_and_flags_a_mismatch(world):
    """Released from quarantine, an event is judged as the collector judges it now: without
    esco_version it gets the newest release holding its concept, not the release that was
    newest when it arrived; one naming a loaded release that lacks its concept is flagged."""
    c = cut()
    world.load(OLDER)
    world.send([event("d-none", concept_uri=c.added),
                event("d-older", concept_uri=c.added, esco_version=OLDER)])
    assert world.stored("d-none")["esco_version"] == ""  # named none: chosen on release
    assert world.flagged() == 0
    world.load(NEWER)
    assert replay(world.engine).released == 2
    assert world.stored("d-none")["esco_version"] == NEWER
    assert world.stored("d-older")["esco_version"] == OLDER
    assert world.flagged() == 1  # 1.1.0 is loaded and lacks the concept
    world.aggregate()
    quality = world.rows("data_quality")
    assert [(r["outcome"], r["reason"], r["events"]) for r in quality
            if r["outcome"] == "flagged"] == [("flagged", "esco_version_mismatch", 1)]


def test_no_release_loaded(world):
    answer = world.send([event("n-1", concept_uri=UNKNOWN),
                         event("n-2", concept_uri=UNKNOWN, esco_version="1.2.0")])
    assert [e["reasons"] for e in answer["errors"]] == [
        {"concept_uri": ["No ESCO release is loaded; stored, and counted if a release that "
                         "holds it is loaded."]},
        {"esco_version": ["No ESCO release is loaded; stored, and counted once ESCO 1.2.0 is "
                          "loaded and holds the concept."],
         "concept_uri": ["No ESCO release is loaded."]},
    ]


# ---------------------------------------------------------------------------------------------
# A type change, in every indicator's concept_type filter


def _trend_events(c: Cut, portal: int) -> list[dict]:
    """A steady skill and a steady skill group in both periods; the type-changing concept
    only in this one (emerging), with a label and translation feedback."""
    sent = []
    for uri in (c.steady_skill, c.steady_group):
        for n in range(20):
            sent.append(event(f"p{portal}-{uri[-12:]}-prev-{n}", concept_uri=uri,
                              occurred_at=days_ago(10)))
            sent.append(event(f"p{portal}-{uri[-12:]}-cur-{n}", concept_uri=uri,
                              occurred_at=days_ago(3)))
    sent += [event(f"p{portal}-tc-{n}", concept_uri=c.type_changed, occurred_at=days_ago(3))
             for n in range(10)]
    sent.append(event(f"p{portal}-label", type="label_added", concept_uri=c.type_changed,
                      label="lead the music staff", occurred_at=days_ago(3)))
    sent.append(event(f"p{portal}-feedback", type="translation_feedback",
                      concept_uri=c.type_changed, language="de", label="Musikpersonal leiten",
                      occurred_at=days_ago(3)))
    return sent


def where_seen(w: World, uri: str) -> dict[str, set[str]]:
    """Per indicator, the concept_type filters under which the concept shows."""
    seen: dict[str, set[str]] = {}
    for kind in ("skill", "skill_group"):
        for name in ("most_used_concepts", "least_used_concepts", "candidate_alt_labels",
                     "translation_feedback", "concept_trends"):
            if by_uri(w.rows(name, concept_type=kind), uri):
                seen.setdefault(name, set()).add(kind)
        coverage = {r["concept_type"]: r for r in w.rows("catalogue_coverage",
                                                         concept_type=kind)}
        if kind in coverage:
            seen.setdefault("catalogue_coverage", set()).add(
                f"{kind}:{coverage[kind]['concepts']}/{coverage[kind]['used']}")
    return seen


def test_a_type_change_shows_in_every_indicator(world):
    c = cut()
    world.load(OLDER)
    for portal in range(3):
        world.send(_trend_events(c, portal), portal)
    world.aggregate()
    trends = by_uri(world.rows("concept_trends", concept_type="skill_group"), c.type_changed)
    assert [r["trend"] for r in trends] == ["emerging"]
    skills, groups = len(c.skills[1]) - 1, len(c.groups[1]) + 1
    assert where_seen(world, c.type_changed) == {
        "most_used_concepts": {"skill_group"},
        "candidate_alt_labels": {"skill_group"},
        "translation_feedback": {"skill_group"},
        "concept_trends": {"skill_group"},
        # the type-changing concept is one of the groups used (with the steady group)
        "catalogue_coverage": {f"skill:{skills}/1", f"skill_group:{groups}/2"},
    }

    world.load(NEWER)  # now a skill: every past event too, in every period
    world.send([event("after", concept_uri=c.type_changed, occurred_at=days_ago(2), count=3)])
    world.aggregate()
    skills, groups = len(c.skills[1]), len(c.groups[1])
    assert where_seen(world, c.type_changed) == {
        "most_used_concepts": {"skill"},
        "least_used_concepts": {"skill"},
        "candidate_alt_labels": {"skill"},
        "translation_feedback": {"skill"},
        "concept_trends": {"skill"},
        "catalogue_coverage": {f"skill:{skills}/2", f"skill_group:{groups}/1"},
    }
    row = by_uri(world.rows("most_used_concepts", concept_type="skill"), c.type_changed)[0]
    assert (row["concept_type"], row["usage"], row["events"]) == ("skill", 33, 31)
    least = by_uri(world.rows("least_used_concepts", concept_type="skill"), c.type_changed)
    assert least[0]["usage"] == 33
    assert world.rows("least_used_concepts", concept_type="skill_group") == []
    # the previous period's days were republished too
    previous = Period.custom(days_ago(13), days_ago(7))
    assert not by_uri(world.rows("most_used_concepts", previous, concept_type="skill_group"),
                      c.type_changed)


# ---------------------------------------------------------------------------------------------
# Replaced URIs counted once, under their successor


def test_old_and_new_uris_add_up_in_one_row(world):
    c = cut()
    world.load(OLDER)  # here the old code-style URI is the concept itself
    world.send([event("old-1", concept_uri=c.old_group, count=4, occurred_at=days_ago(5))])
    world.aggregate()
    used = world.rows("most_used_concepts")
    assert [(r["concept_uri"], r["usage"]) for r in used] == [(c.old_group, 4)]

    world.load(NEWER)
    world.send([event("old-2", concept_uri=c.old_group, count=2, occurred_at=days_ago(1)),
                event("new-1", concept_uri=c.group, count=3, occurred_at=days_ago(1)),
                event("old-3", concept_uri=c.old_group, count=1, occurred_at=days_ago(5))],
               portal=1)
    world.aggregate()
    for filters in ({}, {"concept_type": "skill_group"}):
        used = world.rows("most_used_concepts", **filters)
        assert [(r["concept_uri"], r["concept_type"], r["usage"], r["events"],
                 r["implementers"]) for r in used] == [
            (c.group, "skill_group", 10, 4, 2)]
    assert world.rows("most_used_concepts", concept_type="skill") == []
    coverage = {r["concept_type"]: r["used"] for r in world.rows("catalogue_coverage")}
    assert coverage["skill_group"] == 1


# ---------------------------------------------------------------------------------------------
# Candidate labels: against every loaded release, and each form of a gendered label


def test_candidate_labels_against_every_release_and_gendered_forms(world):
    c = cut()
    world.load(OLDER)
    world.load(NEWER)
    dropped = c.skills[1][1]["altLabels"].splitlines()[0]  # only 1.1.0 has it
    de_label = c.occupations_de[1][0]["preferredLabel"]
    first, second = de_label.split("/")
    assert "/" not in first + second
    world.send([
        event("l-1", type="label_added", concept_uri=c.old_alt, label=dropped.upper()),
        event("l-2", type="label_added", concept_uri=c.old_alt, label="guard prison routines"),
        event("l-3", type="label_added", concept_uri=c.gendered, language="de", label=second),
        event("l-4", type="label_added", concept_uri=c.gendered, language="de",
              label=first.lower()),
        event("l-5", type="label_added", concept_uri=c.gendered, language="de",
              label="Bühnenmeisterin"),
        # a label of the replaced URI in 1.1.0 is a label of its successor
        event("l-6", type="label_added", concept_uri=c.old_group,
              label=PLANTED_OLD_GROUP_LABEL),
        event("l-7", type="label_added", concept_uri=c.group, label=PLANTED_OLD_GROUP_LABEL),
    ])
    world.aggregate()
    found = sorted((r["concept_uri"], r["language"], r["label"], r["verdict"])
                   for r in world.rows("candidate_alt_labels"))
    assert found == sorted([
        (c.old_alt, "en", "guard prison routines", "new"),
        (c.gendered, "de", "Bühnenmeisterin", "new"),
    ])


# ---------------------------------------------------------------------------------------------
# Removing a release, then loading it again


@pytest.mark.skipif(not hasattr(catalogue_load, "remove_release"),
                    reason="kpi.catalogue.load.remove_release is not there yet")
def test_remove_then_replay_counts_once(world):
    c = cut()
    world.load(OLDER)
    world.load(NEWER)
    world.send([event("r-1", concept_uri=c.removed, count=5, occurred_at=days_ago(2)),
                event("r-2", concept_uri=c.type_changed, occurred_at=days_ago(2)),
                event("r-3", concept_uri=c.old_group, count=2, occurred_at=days_ago(2))])
    world.aggregate()
    used = {r["concept_uri"]: r for r in world.rows("most_used_concepts")}
    assert (used[c.removed]["usage"], used[c.removed]["status"]) == (5, "absent")

    removed = catalogue_load.remove_release(world.engine, OLDER)
    assert removed.requarantined == 1
    index = CatalogueIndex.load(world.engine)
    assert not index.knows(c.removed) and index.knows(c.old_group)
    world.aggregate()
    used = {r["concept_uri"]: r["usage"] for r in world.rows("most_used_concepts")}
    # gone until a release knows it again; the replaced URI is still stated by 1.2.0
    assert used == {c.type_changed: 1, c.group: 2}

    world.load(OLDER)
    assert replay(world.engine).released == 1
    world.aggregate()
    world.aggregate()
    used = {r["concept_uri"]: r["usage"] for r in world.rows("most_used_concepts")}
    assert used == {c.removed: 5, c.type_changed: 1, c.group: 2}
    assert by_uri(world.rows("most_used_concepts", concept_type="skill"), c.type_changed)
