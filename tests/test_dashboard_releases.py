"""The dashboard says which ESCO release it speaks of.

A store with two real releases (tests/data/releases: 1.0.8, and 1.2.0, which dropped some
occupations and replaced the old code-style skill-group URIs), events for a concept that 1.2.0
dropped, for a replaced URI and for a concept both hold, from three implementers declaring
either release; aggregated. Checked: the header ("ESCO 1.2.0 (current) · 2 releases loaded",
the releases and their languages) and that it follows a newly loaded release through the
memoised pages; the mark and the words for concepts the current release lacks on the Concepts
and concept pages, the "still used after removal" panel, the replaced URI on its successor's
page; the implementers per declared release on the Uptake page against counts made here; and
all of it once in a real Chromium, under axe-core.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from dash_ag_grid import AgGrid
from sqlalchemy import select

from dashboard.app import create_dashboard
from dashboard.callbacks import render_page
from dashboard.downloads import download
from dashboard.pages import BY_PATH
from dashboard.state import parse_query
from kpi.catalogue.load import load_catalogue
from kpi.catalogue.versions import version_key
from kpi.exports.csvfile import table_csv
from kpi.store.db import concept_successors
from kpi.store.registry import add_user
from kpi.warehouse.indicators import query
from tests.dashboard_world import PASSWORD, data_of, find, log_in, texts
from tests.kpi_fixtures import Store, make_store
from tests.releases import LANGUAGES, NEWER, OLDER, release_path

# An occupation that 1.0.8 holds and 1.2.0 dropped; one both hold; a skill group's old
# code-style URI (1.0.8) that 1.2.0 replaced by a UUID URI, stating the code.
DROPPED = "http://data.europa.eu/esco/occupation/1b99cad3-27c6-4e19-83b6-7b5f8338ed2b"
KEPT = "http://data.europa.eu/esco/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34"
OLD_URI = "http://data.europa.eu/esco/skill/S3.4.2"
SUCCESSOR = "http://data.europa.eu/esco/skill/00d5d1d2-c521-4c58-9df5-2939c0ce9adb"

PERIOD = "?period=custom&start=2026-05-01&end=2026-07-31"
STATE = parse_query(PERIOD)
# (implementer, day, concept URI, declared release, count): implementer 1 moves from 1.0.8 to
# 1.2.0 in July, 2 declares 1.2.0 throughout, 3 stays on 1.0.8.
EVENTS = [
    (1, "2026-05-10", DROPPED, OLDER, 2),
    (1, "2026-05-20", DROPPED, OLDER, 1),
    (3, "2026-06-05", DROPPED, OLDER, 4),
    (1, "2026-05-12", KEPT, OLDER, 1),
    (1, "2026-07-03", KEPT, NEWER, 5),
    (2, "2026-05-15", KEPT, NEWER, 2),
    (2, "2026-06-15", OLD_URI, NEWER, 3),
    (2, "2026-07-20", OLD_URI, NEWER, 1),
    (3, "2026-07-25", KEPT, OLDER, 1),
    (2, "2026-08-10", KEPT, OLDER, 9),  # after the period: never counted here
]


def in_period() -> list[tuple]:
    period = STATE.period()
    return [e for e in EVENTS if period.start <= date.fromisoformat(e[1]) <= period.end]


def build(folder: Path) -> Store:
    """Both releases loaded, the events stored and aggregated, a dashboard user."""
    store = make_store(folder)
    store.implementer(1, "DE", "job_portal")
    store.implementer(2, "FR", "pes")
    store.implementer(3, "NL", "pes")
    for version in (OLDER, NEWER):
        load_catalogue(store.engine, release_path(version), version)
    with store.engine.connect() as conn:
        stated = conn.execute(select(concept_successors.c.successor_uri, concept_successors.c
                                     .version).where(concept_successors.c.uri == OLD_URI)).all()
    assert stated == [(SUCCESSOR, NEWER)], "1.2.0's code column names the replaced URI"
    store.events(*[{"implementer_id": i, "day": day, "concept_uri": uri, "esco_version": v,
                    "count": n} for i, day, uri, v, n in EVENTS])
    store.aggregate()
    add_user(store.engine, "esco", PASSWORD)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[Store]:
    store = build(tmp_path_factory.mktemp("releases"))
    try:
        yield store
    finally:
        store.engine.dispose()


@pytest.fixture(scope="module")
def app(store):
    return create_dashboard(store.settings)


def header(client) -> dict[str, Any]:
    """The header's release note as the app serves it with the layout (a page load)."""
    response = client.get("/dashboard/_dash-layout")
    assert response.status_code == 200

    def walk(node: Any) -> Iterator[dict]:
        if isinstance(node, list):
            for child in node:
                yield from walk(child)
        elif isinstance(node, dict):
            yield node
            yield from walk(node.get("props", {}).get("children"))

    def words(node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            return "".join(words(n) for n in node)
        if isinstance(node, dict):
            return words(node.get("props", {}).get("children"))
        return ""

    found = [n for n in walk(json.loads(response.get_data(as_text=True)))
             if n.get("props", {}).get("id") in ("release-info", "release-summary")]
    return {n["props"]["id"]: words(n) for n in found}


def test_the_header_names_the_current_release_and_lists_the_loaded_ones(app):
    client = app.test_client()
    log_in(client)
    note = header(client)
    assert note["release-summary"] == f"ESCO {NEWER} (current) · 2 releases loaded"
    listed = note["release-info"]
    assert f"{NEWER} (current): 289 concepts" in listed
    for version, languages in LANGUAGES.items():
        assert f"languages: {', '.join(languages)}" in listed, version
    # newest first
    assert listed.index(f"{NEWER} (current):") < listed.index(f"{OLDER}:")


def test_the_header_and_the_pages_follow_a_newly_loaded_release(tmp_path):
    """Loading a release republishes: the header and the memoised pages speak of it."""
    store = build(tmp_path / "store")
    try:
        app = create_dashboard(store.settings)
        data = data_of(app)
        client = app.test_client()
        log_in(client)
        assert header(client)["release-summary"] == f"ESCO {NEWER} (current) · 2 releases loaded"
        before = texts(render_page(data, "/dashboard/concepts", PERIOD)[0])
        assert f"⚠ not in {NEWER} (last in {OLDER})" in before

        # the same files once more, as a newer release: it drops the same occupation
        load_catalogue(store.engine, release_path(NEWER), "1.2.1")
        store.aggregate()
        assert header(client)["release-summary"] == "ESCO 1.2.1 (current) · 3 releases loaded"
        # moving to another page (no full reload) refreshes the note too
        from tests.test_dashboard_review import callback

        moved = callback(client, "release-note.children",
                         {"url.pathname": "/dashboard/concepts"})
        assert moved.status_code == 200
        assert "ESCO 1.2.1 (current) · 3 releases loaded" in json.dumps(
            moved.get_json()["response"], ensure_ascii=False)
        after = texts(render_page(data, "/dashboard/concepts", PERIOD)[0])
        assert "⚠ not in 1.2.1 (last in 1.0.8)" in after
        assert f"⚠ not in {NEWER} (last in {OLDER})" not in after
        concept = texts(render_page(data, "/dashboard/concept",
                                    PERIOD + "&concept=" + DROPPED)[0])
        assert "Not in ESCO 1.2.1" in concept
    finally:
        store.engine.dispose()


def test_concepts_the_current_release_lacks_are_marked_in_symbol_and_words(app, store):
    data = data_of(app)
    t = BY_PATH["concepts"].tables(data, STATE)
    most = {r["concept_uri"]: r for r in t["most_used_concepts"].rows}
    assert most[DROPPED]["in_current"] is False and most[DROPPED]["last_release"] == OLDER
    assert most[DROPPED]["release"] == f"⚠ not in {NEWER} (last in {OLDER})"
    assert most[KEPT]["release"] == most[SUCCESSOR]["release"] == f"✓ in {NEWER}"
    # the download is the indicator's rows, status columns included, without the grid's text
    payload = download(data, "/dashboard/concepts", PERIOD, "most_used_concepts")
    expected = query(store.settings, "most_used_concepts", STATE.period())
    assert "in_current" in expected.columns and "release" not in expected.columns
    assert payload.text == table_csv(expected.columns, expected.rows)

    content, _, _ = render_page(data, "/dashboard/concepts", PERIOD)
    words = texts(content)
    label = most[DROPPED]["label"]
    # the chart (and its data table) names it with the mark and the words
    assert f"⚠ {label} (not in {NEWER})" in words
    grids = {g.id["table"]: g for g in find(content, lambda c: isinstance(c, AgGrid))}
    assert {"release": f"⚠ not in {NEWER} (last in {OLDER})"}.items() <= next(
        r for r in grids["most_used_concepts"].rowData if r["concept_uri"] == DROPPED).items()


def test_the_removal_panel_counts_concepts_still_used_after_removal(app):
    dropped = [e for e in in_period() if e[2] == DROPPED]
    content, _, _ = render_page(data_of(app), "/dashboard/concepts", PERIOD)
    panel = find(content, lambda c: getattr(c, "id", None) == "removal-summary")[0]
    words = "".join(texts(panel))
    assert f"1 concept still used after removal, {len(dropped)} events" in words
    assert f"({sum(e[4] for e in dropped)} uses)" in words and f"ESCO {NEWER}" in words
    grid = find(content, lambda c: isinstance(c, AgGrid)
                and c.id["table"] == "still_used_after_removal")[0]
    assert [(r["concept_uri"], r["release"], r["usage"], r["events"]) for r in grid.rowData] == [
        (DROPPED, f"⚠ not in {NEWER} (last in {OLDER})", sum(e[4] for e in dropped),
         len(dropped))]
    # nothing of the kind in a period without such uses
    quiet, _, _ = render_page(data_of(app), "/dashboard/concepts",
                              "?period=custom&start=2026-07-01&end=2026-07-31")
    assert f"No concept that ESCO {NEWER} lacks was used in this period." in texts(quiet)


def test_the_concept_page_says_it_was_removed_or_what_it_replaced(app):
    data = data_of(app)
    removed = "".join(texts(render_page(data, "/dashboard/concept",
                                        PERIOD + "&concept=" + DROPPED)[0]))
    assert f"⚠ Not in ESCO {NEWER}, the current release: the last release that held it is " \
           f"{OLDER}." in removed
    content, _, _ = render_page(data, "/dashboard/concept", PERIOD + "&concept=" + SUCCESSOR)
    words = texts(content)
    assert "Also counts events sent as " in words and OLD_URI in words
    assert f" (replaced in {NEWER})." in words
    assert "Not in ESCO" not in " ".join(words)
    # ... and it does: the events sent with the old URI are its uses
    t = BY_PATH["concept"].tables(data, STATE.with_(concept=SUCCESSOR))
    assert sum(r["usage"] for r in t["concept_usage_trend"].rows) == sum(
        e[4] for e in in_period() if e[2] == OLD_URI)
    assert t["concept_replaced_uris"].rows == [
        {"replaced_uri": OLD_URI, "replaced_in": NEWER, "source": "code"}]


def test_uptake_counts_implementers_per_declared_release(app):
    events = in_period()
    monthly: dict[tuple[date, str], set[int]] = defaultdict(set)
    for i, day, _, version, _ in events:
        monthly[(date.fromisoformat(day).replace(day=1), version)].add(i)
    last_day = {i: max(e[1] for e in events if e[0] == i) for i, *_ in events}
    latest = {i: max((e[3] for e in events if e[0] == i and e[1] == last_day[i]),
                     key=version_key) for i in last_day}
    older = sum(1 for v in latest.values() if version_key(v) < version_key(NEWER))
    assert older == 1  # implementer 3

    data = data_of(app)
    t = BY_PATH["uptake"].tables(data, STATE)
    assert {(r["month"], r["esco_version"]): r["implementers"]
            for r in t["release_uptake_monthly"].rows} == {k: len(v) for k, v in monthly.items()}
    by_release = {r["esco_version"]: r for r in t["release_uptake"].rows}
    assert list(by_release) == [NEWER, OLDER]  # newest first
    for version, kind in ((NEWER, "current"), (OLDER, "older, loaded")):
        row = by_release[version]
        assert row["release"] == kind
        assert row["implementers"] == len({e[0] for e in events if e[3] == version})
        assert row["events"] == sum(1 for e in events if e[3] == version)
        assert row["latest_implementers"] == sum(1 for v in latest.values() if v == version)

    content, _, _ = render_page(data, "/dashboard/uptake", PERIOD)
    line = "".join(texts(find(content, lambda c: getattr(c, "id", None) == "older-releases")))
    assert line.startswith(f"{older} of {len(latest)} active implementers still declares a "
                           f"release older than ESCO {NEWER}")
    chart = find(content, lambda c: getattr(c, "id", None) == "chart-release-uptake")[0]
    assert f"2 releases declared, May 2026 to Jul 2026; active implementers per month: " \
           f"{NEWER}: up to 2; {OLDER}: up to 1." in texts(chart)
    # a filter narrows it like every figure: only FR (implementer 2, on 1.2.0)
    fr = BY_PATH["uptake"].tables(data, STATE.with_(country="FR"))
    assert {r["esco_version"] for r in fr["release_uptake"].rows} == {NEWER}


@pytest.mark.browser
def test_releases_in_a_browser(store, tmp_path):
    """The header, the marks and the panels as a browser shows them, with no axe-core
    violation on the Concepts, concept and Uptake pages (data tables open)."""
    from selenium.webdriver.common.by import By

    from tests.test_accessibility import axe, goto, open_tables, report, serve
    from tests.test_accessibility import log_in as browser_log_in
    from tests.test_dashboard_browser import by_id, chromium, wait_for

    found: dict[str, list] = {}
    with serve(store.settings) as site, chromium(tmp_path / "downloads") as driver:
        driver.set_script_timeout(60)

        def check(state: str) -> None:
            violations = axe(driver)
            if violations:
                found[state] = violations

        browser_log_in(driver, site)
        summary = by_id(driver, "release-summary")
        assert summary.text == f"ESCO {NEWER} (current) · 2 releases loaded"
        summary.click()  # the list opens, as it does with Enter
        wait_for(driver, lambda d: "languages: de, en, fr, nl" in by_id(d, "release-info").text,
                 "the loaded releases")
        check("Overview, releases open")

        goto(driver, f"/dashboard/concepts{PERIOD}", "Concepts")
        wait_for(driver, lambda d: "1 concept still used after removal, 3 events" in by_id(
            d, "removal-summary").text, "the removal panel")
        wait_for(driver, lambda d: any(e.text == f"⚠ not in {NEWER} (last in {OLDER})"
                                       for e in d.find_elements(By.CSS_SELECTOR, ".ag-cell")),
                 "the release column")
        open_tables(driver)
        check("Concepts")

        goto(driver, f"/dashboard/concept{PERIOD}&concept={SUCCESSOR}", "Concept")
        wait_for(driver, lambda d: OLD_URI in by_id(d, "content").text, "the replaced URI")
        open_tables(driver)
        check("Concept with a replaced URI")

        goto(driver, f"/dashboard/uptake{PERIOD}", "Uptake")
        wait_for(driver, lambda d: "1 of 3 active implementers" in by_id(
            d, "older-releases").text, "the older-release line")
        open_tables(driver)
        check("Uptake")
    assert not found, "axe-core found WCAG 2.1 A/AA violations:\n" + report(found)
