"""collection_usage: ESCO's collections in use, checked against figures computed here from the
events sent and the members inserted (a small store: filters, an empty period, a concept in
two collections, a replaced URI, a concept the current release dropped) and from ESCO's
bundled collection files read with csv (the real sizes); the export's disclosure rules; the
Collections page."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import delete, insert

from dashboard.app import create_dashboard
from dashboard.callbacks import render_page
from dashboard.components import NO_DATA
from dashboard.data import Data
from dashboard.downloads import download
from dashboard.pages import BY_PATH, PAGES, collections
from dashboard.state import csv_filename, parse_query
from kpi.catalogue.load import BUNDLED_VERSION, bundled_path
from kpi.exports.csvfile import table_csv
from kpi.exports.quarterly import Thresholds, _collections
from kpi.store.db import concept_collections, concept_successors
from kpi.warehouse.indicators import INDICATORS, Period, Result, applicable_filters, query
from tests.dashboard_world import data_of, find, texts
from tests.kpi_fixtures import (
    CATALOGUE_V1,
    CATALOGUE_V2,
    ISCO,
    O1,
    O2,
    S1,
    S2,
    S3,
    S4,
    SKILL,
    Store,
    standard_store,
)
from tests.support import fresh_store

Q3 = Period.quarter("2026-Q3")
COLUMNS = ("collection", "country", "base_type", "usage", "base_usage", "share",
           "implementers", "base_implementers", "concepts", "used", "coverage",
           "collection_version")

# ---------------------------------------------------------------------------------------------
# A small store: the catalogue of tests/kpi_fixtures.py (1.10.0 is the newest release: it
# dropped O2), a URI that 1.10.0 says it replaced by S4, and collections over them.

OLD_S4 = SKILL + "s4-old"
SUCCESSORS = {OLD_S4: S4}
MEMBERS = {
    "green": [S1, S2],
    "digital": [S2, S4],  # S2 is green and digital
    "research": [OLD_S4],  # counts as S4, its successor
    "research_occupations": [O1, O2],  # O2 is not in the newest release
}
IMPLEMENTERS = {1: ("DE", "job_portal"), 2: ("FR", "pes"), 3: ("DE", "pes"), 4: ("ES", "pes"),
                5: ("NL", "job_portal"), 6: ("DE", "job_portal")}


@dataclass(frozen=True)
class Use:
    implementer: int
    uri: str
    count: int
    day: str
    language: str = "en"
    context: str = "other"


USES = [
    Use(1, S1, 20, "2026-07-03", "en", "job_vacancy"),
    Use(1, S2, 3, "2026-07-04", "de", "cv"),
    Use(1, O1, 7, "2026-08-01", "de", "job_vacancy"),
    Use(3, S2, 4, "2026-08-02", "en", "cv"),
    Use(3, S3, 10, "2026-08-02", "en", "search"),
    Use(6, S3, 6, "2026-09-30", "de", "job_vacancy"),
    Use(6, O1, 2, "2026-07-01", "en", "cv"),
    Use(2, S1, 2, "2026-07-10", "fr", "job_vacancy"),
    Use(2, S3, 5, "2026-07-11", "fr", "search"),
    Use(4, S4, 1, "2026-09-01", "es", "cv"),
    Use(5, O1, 5, "2026-09-02", "nl", "job_vacancy"),
    Use(5, O2, 4, "2026-08-20", "nl", "cv"),  # occupation usage, but in no collection now
    Use(5, ISCO, 3, "2026-08-21", "nl", "cv"),  # neither skill nor occupation usage
    Use(2, S1, 100, "2026-06-30", "fr", "cv"),  # outside Q3
    Use(2, S2, 50, "2026-10-01", "fr", "cv"),  # outside Q3
]


def add_members(store: Store, version: str, members: dict[str, list[str]]) -> None:
    """Collection members as the catalogue loader records them (before the first run)."""
    with store.engine.begin() as conn:
        conn.execute(delete(concept_collections).where(concept_collections.c.version == version))
        conn.execute(insert(concept_collections), [
            {"version": version, "collection": name, "uri": uri}
            for name, uris in members.items() for uri in uris])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = standard_store(tmp_path_factory.mktemp("collections"))
    for implementer in (4, 5, 6):
        store.implementer(implementer, *IMPLEMENTERS[implementer])
    add_members(store, "1.10.0", MEMBERS)
    with store.engine.begin() as conn:
        conn.execute(insert(concept_successors), [
            {"version": "1.10.0", "uri": old, "successor_uri": new, "source": "code"}
            for old, new in SUCCESSORS.items()])
    store.events(*({"implementer_id": u.implementer, "concept_uri": u.uri, "count": u.count,
                    "day": u.day, "language": u.language, "context": u.context} for u in USES))
    store.aggregate()
    yield store
    store.engine.dispose()


def expected(period: Period, concept_type: str | None = None, language: str | None = None,
             country: str | None = None, sector: str | None = None,
             context: str | None = None) -> list[tuple]:
    """The indicator's rows, worked out here from USES, MEMBERS and the catalogue."""
    newest = dict(CATALOGUE_V2["concepts"])
    current_type = {**dict(CATALOGUE_V1["concepts"]), **newest}
    uses = [u for u in USES
            if period.start <= date.fromisoformat(u.day) <= period.end
            and language in (None, u.language) and context in (None, u.context)
            and country in (None, IMPLEMENTERS[u.implementer][0])
            and sector in (None, IMPLEMENTERS[u.implementer][1])]
    members = {}
    for name, uris in MEMBERS.items():
        found = {SUCCESSORS.get(u, u) for u in uris} & newest.keys()
        found = {u for u in found if concept_type in (None, newest[u])}
        if found:
            members[name] = found
    countries = sorted({IMPLEMENTERS[u.implementer][0] for u in uses})
    rows = []
    for name in sorted(members):
        types = Counter(newest[u] for u in members[name])
        base_type = sorted(types, key=lambda t: (-types[t], t))[0]
        for where in (None, *countries):
            here = [u for u in uses if where in (None, IMPLEMENTERS[u.implementer][0])]
            mine = [u for u in here if u.uri in members[name]]
            base = [u for u in here if current_type[u.uri] == base_type]
            usage, base_usage = sum(u.count for u in mine), sum(u.count for u in base)
            used = len({u.uri for u in mine if u.count > 0})
            rows.append((name, where, base_type, usage, base_usage,
                         round(usage / base_usage, 4) if base_usage else None,
                         len({u.implementer for u in mine}), len({u.implementer for u in base}),
                         len(members[name]), used, round(used / len(members[name]), 4),
                         "1.10.0"))
    return rows


def test_registered_and_documented():
    assert "collection_usage" in INDICATORS
    assert applicable_filters("collection_usage") == (
        "concept_type", "language", "country", "sector", "context")


def test_rows_match_the_figures_worked_out_here(store):
    result = query(store.settings, "collection_usage", Q3)
    assert result.columns == COLUMNS
    assert result.tuples() == expected(Q3)
    rows = {(r["collection"], r["country"]): r for r in result.rows}
    # all countries: skill usage in Q3 is S1 22 + S2 7 + S3 21 + S4 1 = 51
    green = rows[("green", None)]
    assert (green["usage"], green["base_usage"], green["share"]) == (29, 51, 0.5686)
    assert (green["implementers"], green["base_implementers"]) == (3, 5)
    assert (green["concepts"], green["used"], green["coverage"]) == (2, 2, 1.0)
    # the research occupations against occupation usage (O1 14 + O2 4); O2 is no member now
    research = rows[("research_occupations", None)]
    assert research["base_type"] == "occupation"
    assert (research["usage"], research["base_usage"], research["concepts"]) == (14, 18, 1)
    # the replaced URI counts as its successor S4
    assert (rows[("research", None)]["usage"], rows[("research", None)]["concepts"]) == (1, 1)
    # every implementer country is listed for every collection, used or not
    assert [r["country"] for r in result.rows if r["collection"] == "green"] == [
        None, "DE", "ES", "FR", "NL"]
    assert rows[("green", "NL")]["usage"] == 0 and rows[("green", "NL")]["share"] is None


def test_a_concept_in_two_collections_counts_in_both(store):
    rows = {(r["collection"], r["country"]): r["usage"]
            for r in query(store.settings, "collection_usage", Q3).rows}
    # S2: 3 (implementer 1) + 4 (implementer 3), in DE only
    assert rows[("green", "DE")] == 20 + 7
    assert rows[("digital", "DE")] == 7
    assert rows[("digital", None)] == 7 + 1  # and S4 in ES


@pytest.mark.parametrize("filters", [
    {"concept_type": "skill"}, {"concept_type": "occupation"}, {"concept_type": "isco"},
    {"language": "de"}, {"language": "fr"}, {"country": "DE"}, {"country": "NL"},
    {"sector": "pes"}, {"context": "cv"}, {"country": "DE", "context": "job_vacancy"},
])
def test_filters(store, filters):
    result = query(store.settings, "collection_usage", Q3, **filters)
    assert result.tuples() == expected(Q3, **filters)


def test_the_type_filter_picks_collections(store):
    result = query(store.settings, "collection_usage", Q3, concept_type="occupation")
    assert {r["collection"] for r in result.rows} == {"research_occupations"}
    assert query(store.settings, "collection_usage", Q3, concept_type="isco").rows == []


def test_empty_period(store):
    period = Period.quarter("2025-Q1")
    result = query(store.settings, "collection_usage", period)
    assert result.tuples() == expected(period) == [
        ("digital", None, "skill", 0, 0, None, 0, 0, 2, 0, 0.0, "1.10.0"),
        ("green", None, "skill", 0, 0, None, 0, 0, 2, 0, 0.0, "1.10.0"),
        ("research", None, "skill", 0, 0, None, 0, 0, 1, 0, 0.0, "1.10.0"),
        ("research_occupations", None, "occupation", 0, 0, None, 0, 0, 1, 0, 0.0, "1.10.0"),
    ]


def test_other_periods(store):
    for period in (Period.month("2026-07"), Period.custom("2026-06-30", "2026-10-01"),
                   Period.day("2026-09-30")):
        assert query(store.settings, "collection_usage", period).tuples() == expected(period)


# ---------------------------------------------------------------------------------------------
# The bundled ESCO v1.2.0 catalogue and its collection files

FILES = {"green": "greenSkillsCollection_en.csv.gz",
         "digital": "digitalSkillsCollection_en.csv.gz",
         "digcomp": "digCompSkillsCollection_en.csv.gz",
         "transversal": "transversalSkillsCollection_en.csv.gz",
         "language": "languageSkillsCollection_en.csv.gz",
         "research": "researchSkillsCollection_en.csv.gz",
         "research_occupations": "researchOccupationsCollection_en.csv.gz"}
BUNDLED_SIZES = {"green": 591, "digital": 1284, "digcomp": 25, "transversal": 95,
                 "language": 359, "research": 40, "research_occupations": 122}


def uris_of(name: str) -> set[str]:
    with gzip.open(bundled_path() / name, "rt", encoding="utf-8", newline="") as f:
        return {row["conceptUri"] for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def bundled(request, tmp_path_factory):
    """A store with the bundled catalogue, its collections as read from the files here, and a
    few uses of real concepts, aggregated (the first run copies the whole catalogue)."""
    members = {name: sorted(uris_of(file)) for name, file in FILES.items()}
    with fresh_store(request, "sqlite", tmp_path_factory.mktemp("bundled")) as settings:
        from kpi.store.db import make_engine

        store = Store(settings, make_engine(settings))
        try:
            store.implementer(1, "DE", "job_portal")
            store.implementer(2, "FR", "pes")
            add_members(store, BUNDLED_VERSION, members)
            yield store, {name: set(uris) for name, uris in members.items()}
        finally:
            store.engine.dispose()


def test_bundled_collections(bundled):
    store, members = bundled
    assert {name: len(uris) for name, uris in members.items()} == BUNDLED_SIZES
    green, digital = members["green"], members["digital"]
    everything = set().union(*members.values())
    both = sorted(green & digital)[0]
    green_only = sorted(green - digital)[0]
    digital_only = sorted(digital - green)[0]
    occupation = sorted(members["research_occupations"])[0]
    plain_skill = sorted(uris_of("skills_en.csv.gz") - everything)[0]
    plain_occupation = sorted(uris_of("occupations_en.csv.gz") - everything)[0]
    sent = [(1, both, 4), (2, both, 6), (1, green_only, 5), (2, digital_only, 7),
            (1, plain_skill, 8), (2, occupation, 3), (1, plain_occupation, 9)]
    store.events(*({"implementer_id": i, "concept_uri": uri, "count": n, "day": "2026-08-01"}
                   for i, uri, n in sent))
    store.aggregate()
    rows = {r["collection"]: r for r in query(store.settings, "collection_usage", Q3).rows
            if r["country"] is None}
    assert {name: r["concepts"] for name, r in rows.items()} == BUNDLED_SIZES
    skill_usage = 4 + 6 + 5 + 7 + 8
    assert (rows["green"]["usage"], rows["green"]["base_usage"]) == (15, skill_usage)
    assert rows["green"]["share"] == round(15 / skill_usage, 4)
    assert (rows["digital"]["usage"], rows["digital"]["implementers"]) == (17, 2)
    assert (rows["green"]["used"], rows["green"]["coverage"]) == (2, round(2 / 591, 4))
    assert (rows["research_occupations"]["base_type"], rows["research_occupations"]["share"],
            rows["research_occupations"]["coverage"]) == ("occupation", round(3 / 12, 4),
                                                          round(1 / 122, 4))
    for name in ("digcomp", "transversal", "language", "research"):
        expected_usage = sum(n for _, uri, n in sent if uri in members[name])
        assert rows[name]["usage"] == expected_usage, name


# ---------------------------------------------------------------------------------------------
# The export's rows (the exact file: tests/test_export.py)


def indicator_row(collection: str, country: str | None, usage: int, base_usage: int,
                  implementers: int, base_implementers: int, used: int, concepts: int = 40,
                  base_type: str = "skill") -> dict:
    return {"collection": collection, "country": country, "base_type": base_type,
            "usage": usage, "base_usage": base_usage,
            "share": round(usage / base_usage, 4) if base_usage else None,
            "implementers": implementers, "base_implementers": base_implementers,
            "concepts": concepts, "used": used, "coverage": round(used / concepts, 4),
            "collection_version": "1.2.0"}


def test_export_disclosure():
    rows = [
        indicator_row("green", None, 130, 1000, 9, 12, 30),
        indicator_row("green", "AT", 3, 200, 1, 3, 2),  # 3 implementers use skills, but:
        indicator_row("green", "DE", 120, 700, 7, 8, 25),
        indicator_row("green", "FR", 4, 60, 1, 1, 3),  # these two fold into other, which
        indicator_row("green", "LU", 3, 40, 1, 1, 2),  # then has 2: AT, the smallest, too
        indicator_row("green", "NL", 0, 0, 0, 0, 0),  # no skill usage: adds nothing
        indicator_row("=cmd", None, 0, 0, 0, 0, 0),
        indicator_row("=cmd", "NL", 0, 0, 0, 0, 0),
    ]
    header, out = _collections(Result(tuple(rows[0]), rows), Thresholds(3, 5))
    assert header == ["collection", "country", "base_type", "usage", "base_usage", "share",
                      "implementers", "base_implementers", "concepts", "used", "coverage"]
    assert out == [
        ["green", "all", "skill", "130", "1000", "0.1300", "9", "12", "40", "30", "0.7500"],
        ["green", "DE", "skill", "120", "700", "0.1714", "7", "8", "40", "25", "0.6250"],
        # FR, LU and AT: 10 uses out of 300; their distinct concepts used cannot be added up
        ["green", "other", "skill", "10", "300", "0.0333", "3", "5", "40", "", ""],
        # no country folded with any usage: no other row; text never starts a formula
        ["'=cmd", "all", "skill", "0", "0", "", "0", "0", "40", "0", "0.0000"],
    ]
    # a kept country's usage under 5 hides the share worked out from it, and used under 5
    # its coverage
    kept = [indicator_row("green", "AT", 3, 200, 1, 3, 2)]
    assert _collections(Result(tuple(kept[0]), kept), Thresholds(3, 5))[1] == [
        ["green", "AT", "skill", "<5", "200", "", "<3", "3", "40", "<5", ""]]
    # an implementer count of 2 out of 3 needed, and a base under 5, hide the share too
    few = [indicator_row("digital", None, 6, 4, 2, 2, 1, concepts=10)]
    assert _collections(Result(tuple(few[0]), few), Thresholds(3, 5))[1] == [
        ["digital", "all", "skill", "6", "<5", "", "<3", "<3", "10", "<5", ""]]


# ---------------------------------------------------------------------------------------------
# The Collections page

SEARCH = "?period=custom&start=2026-07-01&end=2026-09-30"


@pytest.fixture(scope="module")
def data(store) -> Data:
    return data_of(create_dashboard(store.settings))


def test_page_is_in_the_menu():
    assert collections in PAGES and BY_PATH["collections"] is collections


def test_page_shows_the_indicator(data, store):
    content, _, menu = render_page(data, "/dashboard/collections", SEARCH)
    words = texts(content)
    assert "This page could not be loaded" not in " ".join(words)
    assert [m.children for m in menu].count("Collections") == 1
    assert {"Share of usage by collection", "Green and digital shares by country",
            "Coverage by collection", "Collections by country"} <= set(words)
    # the charts' text alternatives, from the data
    assert ("4 collections. Highest % of usage: research occupations (of occupation usage) "
            "(77.8); lowest: research (2.0).") in words
    assert ("3 countries: green highest in DE (62.8 %), lowest in ES (0 %); digital highest "
            "in ES (100 %), lowest in FR (0 %).") in words
    assert ("Concepts used at least once: digital 2 of 2 (100 %); green 2 of 2 (100 %); "
            "research 1 of 1 (100 %); research occupations 1 of 1 (100 %).") in words
    t = collections.tables(data, parse_query(SEARCH))
    twin = {r["country"]: r for r in t["twin_transition_by_country"].rows}
    assert twin["DE"] == {"country": "DE", "skill_usage": 43, "green_usage": 27,
                          "green_share": 0.6279, "digital_usage": 7, "digital_share": 0.1628}
    assert twin["NL"]["skill_usage"] == 0  # in the table, not drawn
    graphs = find(content, lambda c: type(c).__name__ == "Graph"
                  and c.id == {"type": "chart", "name": "twin_transition"})
    assert [list(trace.x) for trace in graphs[0].figure.data] == [["DE", "ES", "FR"]] * 2
    assert list(graphs[0].figure.data[0].customdata) == ["country=DE", "country=ES",
                                                         "country=FR"]
    everything = query(store.settings, "collection_usage", Q3).rows
    assert len(t["collections"].rows) == 4
    assert len(t["collections_by_country"].rows) == len(everything) - 4
    assert {r["country"] for r in t["collections"].rows} == {"all"}


def test_page_follows_the_filters(data):
    t = collections.tables(data, parse_query(SEARCH + "&country=FR&concept_type=skill"))
    assert [(r["collection"], r["usage"]) for r in t["collections"].rows] == [
        ("digital", 0), ("green", 2), ("research", 0)]
    assert [r["country"] for r in t["collections_by_country"].rows] == ["FR"] * 3


def test_page_download_is_what_it_shows(data):
    state = parse_query(SEARCH + "&language=de")
    payload = download(data, "/dashboard/collections", SEARCH + "&language=de",
                       "twin_transition_by_country")
    assert payload.filename == csv_filename("twin_transition_by_country", state)
    shown = collections.tables(data, state)["twin_transition_by_country"]
    assert payload.text == table_csv(shown.columns, shown.rows)
    assert payload.text.splitlines()[1] == "DE,9,3,0.3333,3,0.3333"


def test_page_without_usage(data):
    content, _, _ = render_page(data, "/dashboard/collections",
                                "?period=custom&start=2020-01-01&end=2020-01-31")
    words = texts(content)
    assert NO_DATA in words  # the share charts
    assert "Concepts of each collection used at least once" in words  # 0 % is a figure
