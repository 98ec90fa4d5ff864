"""Rising and falling items on the pages, on tests/test_trends.py's store (2026-Q3 against Q2):
the slope charts with their captions, data tables and links, the plain words when nothing
was flagged, the CSV downloads, and the memo."""

from __future__ import annotations

import pytest
from dash import dcc

from dashboard.app import create_dashboard
from dashboard.callbacks import render_page
from dashboard.components import GRAPHIC_COLOURS, PALETTE
from dashboard.data import Data
from dashboard.downloads import download
from dashboard.state import csv_filename, parse_query, target_href
from dashboard.trends import ratio_text
from kpi.exports.csvfile import table_csv
from kpi.warehouse import indicators
from kpi.warehouse.indicators import query
from tests import dashboard_world
from tests.dashboard_world import TREND_PERIOD, data_of, find, texts
from tests.kpi_fixtures import O1, S2, S4

trend_world = dashboard_world.trend_world
STATE = parse_query(TREND_PERIOD)
AGAINST = "against the previous 92 days"  # Q3 has 92 days


@pytest.fixture(scope="module")
def data(trend_world) -> Data:
    return data_of(create_dashboard(trend_world.settings))


def page(data: Data, path: str, search: str = TREND_PERIOD) -> list:
    content, _, _ = render_page(data, f"/dashboard/{path}", search)
    words = " ".join(texts(content))
    assert "This page could not be loaded" not in words, path
    return content


def figure(content: list, trend: str):
    """The slope chart of one direction on a rendered page."""
    graphs = find(content, lambda c: isinstance(c, dcc.Graph)
                  and c.id == {"type": "chart", "name": f"trends_{trend}"})
    assert len(graphs) == 1, trend
    return graphs[0].figure


def links(content: list) -> set[str]:
    return {c.href for c in find(content, lambda c: isinstance(c, dcc.Link))}


def test_overview_shows_rising_and_falling_items_of_every_kind(data):
    content = page(data, "")
    words = texts(content)
    assert {"Rising concepts, labels and proposals",
            "Falling concepts, labels and proposals"} <= set(words)
    # the captions (the charts' text alternatives), strongest first, each item with its kind
    assert ("4 rising: prompt engineering (skill, en) (proposal, ×14, 4 implementers), "
            "use spreadsheets (concept, new, 3 implementers), software developer (concept, "
            "×2.8, 3 implementers), Softwareentwicklerin → software developer (de) (label, new, "
            "3 implementers).") in words
    assert "1 falling: manage budgets (concept, ×0.063, 3 implementers)." in words
    assert "How trends are found: " in words
    # the data tables: one row per line, the direction in words
    assert words.count("▲ rising") == 2 and words.count("▲ emerging") == 2
    assert words.count("▼ falling") == 1
    rising, falling = figure(content, "rising"), figure(content, "falling")
    lines = {a.text: t for a, t in zip(rising.layout.annotations, rising.data, strict=True)}
    assert set(lines) == {"proposal: prompt engineering (skill, en)",
                          "concept: use spreadsheets", "concept: software developer",
                          # long labels are cut at the line's end (hover and table: in full)
                          "label: Softwareentwicklerin → software …"}
    o1 = lines["concept: software developer"]
    assert list(o1.y) == [30, 135] and list(o1.x) == ["previous period", "this period"]
    assert "adjusted p-value: 4.3e-05" in o1.hovertext[0]
    assert "share of use: ×2.8" in o1.hovertext[0] and "implementers: 3 → 3" in o1.hovertext[0]
    assert list(o1.customdata) == [O1, O1]  # a click opens the concept
    assert lines["proposal: prompt engineering (skill, en)"].customdata is None
    # rising and falling differ in line and marker, not only in colour; both colours reach 3:1
    (down,) = falling.data
    assert list(down.y) == [60, 6] and "implementers: 3 → 3" in down.hovertext[0]
    assert {t.line.dash for t in rising.data} == {"solid"} and down.line.dash == "dash"
    assert {t.marker.symbol for t in rising.data} == {"triangle-up"}
    assert down.marker.symbol == "triangle-down"
    assert {o1.line.color, down.line.color} <= set(PALETTE[:GRAPHIC_COLOURS])
    assert [t.name for t in (*rising.data, down) if t.showlegend] == ["rising", "falling"]
    # concepts and candidate labels link to their concept page
    assert {target_href(STATE, "", uri) for uri in (O1, S2, S4)} <= links(content)


def test_concepts_page_shows_concepts_only_and_links_them(data):
    content = page(data, "concepts")
    words = texts(content)
    assert {"Rising concepts", "Falling concepts"} <= set(words)
    assert ("2 rising: use spreadsheets (new, 3 implementers), software developer (×2.8, "
            "3 implementers).") in words
    assert "1 falling: manage budgets (×0.063, 3 implementers)." in words
    assert not any("prompt engineering" in w for w in words)
    assert {target_href(STATE, "concepts", uri) for uri in (O1, S2, S4)} <= links(content)
    assert [list(t.y) for t in figure(content, "falling").data] == [[60, 6]]


def test_labels_and_proposals_pages_show_their_own_kind(data):
    labels = texts(page(data, "labels"))
    assert ("1 rising: Softwareentwicklerin → software developer (de) (new, "
            "3 implementers).") in labels
    # nothing of this kind fell, but rows of other kinds tell how many items were tested
    assert f"No candidate label fell significantly {AGAINST}; 9 items tested." in labels
    assert labels.index("Rising candidate labels") < labels.index(
        "Labels most implementers added")  # at the top of the page
    proposals = texts(page(data, "proposals"))
    assert "1 rising: prompt engineering (skill, en) (×14, 4 implementers)." in proposals
    assert f"No proposal fell significantly {AGAINST}; 9 items tested." in proposals
    assert not any("software developer" in w for w in proposals)


def test_nothing_flagged_says_so(data, trend_world):
    # France has one implementer: no trend at all, so how many were tested is unknown
    content = page(data, "", TREND_PERIOD + "&country=FR")
    assert (f"No concept, label or proposal was flagged as rising or falling {AGAINST}."
            in texts(content))
    assert not find(content, lambda c: isinstance(c, dcc.Graph)
                    and str(c.id.get("name", "")).startswith("trends_"))
    # in German only the candidate label rises: the concepts page says none of its kind did
    tested = query(trend_world.settings, "concept_trends", STATE.period(),
                   language="de").rows[0]["tested"]
    words = texts(page(data, "concepts", TREND_PERIOD + "&language=de"))
    assert f"No concept rose or fell significantly {AGAINST}; {tested} items tested." in words
    assert "How trends are found: " in words


@pytest.mark.parametrize(("path", "kinds", "count"), [
    ("", ("concept", "label", "proposal"), 5), ("concepts", ("concept",), 3),
    ("labels", ("label",), 1), ("proposals", ("proposal",), 1)])
def test_trend_csv_is_what_the_page_shows(data, trend_world, path, kinds, count):
    payload = download(data, f"/dashboard/{path}", TREND_PERIOD, "concept_trends")
    assert payload.filename == csv_filename("concept_trends", STATE) == (
        "concept_trends_2026-07-01_2026-09-30.csv")
    result = query(trend_world.settings, "concept_trends", STATE.period())
    rows = [r for r in result.rows if r["kind"] in kinds]
    assert len(rows) == count
    assert payload.text == table_csv(result.columns, rows)
    assert payload.text.splitlines()[0] == (
        "kind,trend,concept_uri,concept_type,language,label,label_en,label_norm,"
        "previous_events,current_events,previous_usage,current_usage,share_ratio,p_value,"
        "p_adjusted,previous_implementers,current_implementers,tested")
    # every trend section offers it
    content = page(data, path)
    buttons = find(content, lambda c: isinstance(getattr(c, "id", None), dict)
                   and c.id.get("type") == "download" and c.id.get("table") == "concept_trends")
    assert len(buttons) == 2


def test_trends_are_queried_once_for_all_pages(trend_world, monkeypatch):
    """Through Data.indicator: the pages and the downloads share one memoised result."""
    calls: list[str] = []
    original = indicators.query

    def counting(source, name, *args, **kwargs):
        calls.append(name)
        return original(source, name, *args, **kwargs)

    monkeypatch.setattr(indicators, "query", counting)
    fresh = data_of(create_dashboard(trend_world.settings))
    search = TREND_PERIOD + "&sector=pes"  # a view no other test rendered (shared pages)
    for path in ("", "concepts", "labels", "proposals"):
        page(fresh, path, search)
        assert download(fresh, f"/dashboard/{path}", search, "concept_trends")
    assert calls.count("concept_trends") == 1


def test_ratios_in_words():
    assert [ratio_text({"share_ratio": r}) for r in (None, 14.154, 2.827, 1.5, 0.063, 0.5)] == [
        "new", "×14", "×2.8", "×1.5", "×0.063", "×0.5"]



def test_many_items_show_the_strongest_and_labels_keep_apart():
    from dashboard.trends import trend_chart

    rows = [{"kind": "concept", "trend": "rising", "concept_uri": None, "label": f"skill {i}",
             "previous_events": 10, "current_events": 40 + i, "share_ratio": 3.0,
             "p_adjusted": 0.001, "previous_implementers": 3, "current_implementers": 5}
            for i in range(12)]
    parts = trend_chart(rows, "rising", STATE, "concepts", "concepts", with_kind=False)
    words = texts(parts)
    assert "The 10 strongest of 12; the CSV has them all." in words
    assert ("12 rising: skill 0 (×3.0, 5 implementers), skill 1 (×3.0, 5 implementers), "
            "skill 2 (×3.0, 5 implementers), skill 3 (×3.0, 5 implementers), skill 4 (×3.0, "
            "5 implementers) and 7 more.") in words
    (graph,) = find(parts, lambda c: isinstance(c, dcc.Graph))
    assert len(graph.figure.data) == 10
    # the lines end 1 event apart: their labels are spread out, in the same order
    spots = [a.y for a in graph.figure.layout.annotations]
    assert spots == sorted(spots)
    assert min(b - a for a, b in zip(spots, spots[1:], strict=False)) > 2


def test_the_review_queue_starts_with_what_is_emerging_and_rising(data):
    from dashboard.review import review_rows
    from kpi.review.items import item_id

    rows = review_rows(data, STATE)
    label = item_id("label", O1, "de", "softwareentwicklerin")
    proposal = item_id("proposal", "skill", "en", "prompt engineering")
    assert [(r["item_id"], r["trend"]) for r in rows[:2]] == [(label, "emerging"),
                                                               (proposal, "rising")]
    assert {r["trend"] for r in rows[2:]} == {""}
    # the rest keep the evidence order: implementers, then events
    rest = [(r["implementers"], r["events"]) for r in rows[2:]]
    assert rest == sorted(rest, reverse=True)
    # in a period with no trend, the queue is by evidence alone
    calm = review_rows(data, parse_query("?period=custom&start=2026-05-01&end=2026-05-31"))
    assert {r["trend"] for r in calm} == {""}
