"""Every page against real data: the content follows the indicators, the period and the
filters; empty states instead of errors; free text shown as text; the concept page."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dash_ag_grid import AgGrid
from plotly.io.json import to_json_plotly

from dashboard.app import create_dashboard
from dashboard.callbacks import concept_href, render_page
from dashboard.components import NO_DATA, Grid
from dashboard.downloads import download
from dashboard.pages import BY_PATH
from dashboard.state import FilterState, parse_query, to_query
from kpi.warehouse.indicators import query
from tests.dashboard_world import HTML_LABEL, data_of, find, texts
from tests.helpers import SKILL


def test_every_page_renders(app):
    data = data_of(app)
    for path in BY_PATH:
        search = "?concept=" + SKILL if path == "concept" else ""
        content, info, menu = render_page(data, f"/dashboard/{path}", search)
        words = texts(content)
        assert "This page could not be loaded" not in " ".join(words), path
        assert len(menu) == 9 and "compared with" in info
    content, _, _ = render_page(data, "/dashboard/nowhere", "")
    assert "No such page." in texts(content)


def test_overview_cards_follow_the_indicators_and_filters(app, world):
    data = data_of(app)
    rows = BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows
    figures = {r["kpi"]: (r["current"], r["previous"]) for r in rows}
    period = FilterState().period()
    usage = sum(r["usage"] for r in query(world.settings, "language_usage", period).rows)
    assert figures["Concept uses"] == (usage, 4) == (10, 4)
    assert figures["Active implementers"][0] == 2
    assert figures["Countries"][0] == 2
    assert figures["New candidate labels"][0] == 1
    assert figures["Concept proposals"][0] == 1
    assert figures["Translation feedback"][0] == 1
    german = BY_PATH[""].tables(data, FilterState(country="FR"))["kpi_summary"].rows
    assert german[0]["current"] == 2 and german[1]["current"] == 1
    content, _, _ = render_page(data, "/dashboard/", "?country=FR")
    assert "▼ -50.0 % vs previous period" in texts(content)  # FR: 2 uses, 4 the period before


def test_overview_draws_usage_alone_and_its_csvs_add_the_distinct_counts(app, monkeypatch):
    """The page runs neither usage_trend nor language_usage (each bucket's and language's
    distinct implementers and concepts, which the charts do not draw); its CSVs carry them,
    with the usage the charts show."""
    from dashboard import data as data_module
    from kpi.warehouse import indicators

    data = data_of(app)
    # a period of this test's own: nothing memoised for it yet
    state = FilterState(preset="custom", start=date.today() - timedelta(days=371),
                        end=date.today(), country="FR")
    ran: list[str] = []
    real_extra, real_query = data_module.run_extra, indicators.query

    def counting_extra(settings, name, params):
        ran.append(name)
        return real_extra(settings, name, params)

    def counting_query(source, name, *args, **kwargs):
        ran.append(name)
        return real_query(source, name, *args, **kwargs)

    monkeypatch.setattr(data_module, "run_extra", counting_extra)
    monkeypatch.setattr(indicators, "query", counting_query)
    render_page(data, "/dashboard/", to_query(state))
    assert {"usage_per_bucket", "usage_per_language", "kpi_counts"} <= set(ran)
    assert not {"usage_trend", "language_usage"} & set(ran)
    # the CSV of one of its other tables needs them no more than the page does
    assert download(data, "/dashboard/", to_query(state), "kpi_summary").text.startswith(
        "kpi,current,previous,")
    assert not {"usage_trend", "language_usage"} & set(ran)
    csv = download(data, "/dashboard/", to_query(state), "language_usage").text
    assert csv.startswith("language,usage,events,implementers,concepts,share\n")
    shown = BY_PATH[""].shown_tables(data, state)
    full = BY_PATH[""].tables(data, state)
    assert {"usage_trend", "language_usage"} <= set(ran)  # for the CSVs only
    trend = full["usage_trend"]
    assert trend.columns == ("bucket", "grain", "usage", "events", "implementers", "concepts",
                             "previous_bucket", "previous_usage")
    assert [{c: r[c] for c in shown["usage_trend"].columns} for r in trend.rows] == list(
        shown["usage_trend"].rows)
    _, buckets = data.trend(state.period(), state)
    assert [(r["events"], r["implementers"], r["concepts"]) for r in trend.rows] == [
        (t["events"], t["implementers"], t["concepts"]) for t in buckets]
    assert sum(r["implementers"] for r in trend.rows) > 0
    langs = full["language_usage"]
    assert langs.columns == ("language", "usage", "events", "implementers", "concepts", "share")
    assert [(r["language"], r["usage"]) for r in langs.rows] == [
        (r["language"], r["usage"]) for r in shown["language_usage"].rows]
    assert langs.rows and all(r["implementers"] > 0 for r in langs.rows)
    # the CSV of a view nobody opened runs its own table's queries alone: not the page's cards
    # and trends, nor the other CSV's distinct counts
    unseen = state.with_(start=state.start - timedelta(days=1))
    ran.clear()
    download(data, "/dashboard/", to_query(unseen), "language_usage")
    assert ran == ["language_usage"]
    ran.clear()
    download(data, "/dashboard/", to_query(unseen), "usage_trend")
    assert sorted(ran) == ["usage_per_bucket", "usage_per_bucket", "usage_trend"]


def test_pages_before_the_first_aggregation(settings, engine):
    """A fresh install: every page answers, with empty states instead of errors."""
    data = create_dashboard(settings).extensions["esco_dashboard_data"]
    for path in BY_PATH:
        search = "?concept=" + SKILL if path == "concept" else ""
        words = texts(render_page(data, f"/dashboard/{path}", search)[0])
        assert "This page could not be loaded" not in " ".join(words), path
        assert path in ("", "concept") or NO_DATA in words or (
            path == "review" and "No review items." in words), path
        # and each of its CSV downloads: a header at least, never an error
        page = BY_PATH[path]
        for table in page.tables(data, parse_query(search)):
            found = download(data, f"/dashboard/{path}", search, table)
            assert found is not None and found.text.count("\n") >= 1, (path, table)


def test_empty_period_says_so(app):
    content, _, _ = render_page(data_of(app), "/dashboard/concepts",
                                "?period=custom&start=2020-01-01&end=2020-01-31")
    assert NO_DATA in texts(content)


def test_labels_are_text_in_the_grid(app):
    content, _, _ = render_page(data_of(app), "/dashboard/labels", "")
    assert HTML_LABEL in texts(content)
    grids = find(content, lambda c: isinstance(c, AgGrid))
    assert grids
    for g in grids:
        for col in g.columnDefs:
            assert "cellRenderer" not in col  # the default renderer shows text, never HTML
    assert not find(content, lambda c: getattr(c, "dangerously_allow_html", False))


def test_concept_page_and_drill_down(app):
    data = data_of(app)
    href = concept_href("?country=DE", SKILL)
    assert href == "/dashboard/concept?" + to_query(FilterState(country="DE",
                                                                concept=SKILL))[1:]
    assert concept_href("", "javascript:alert(1)") is None
    t = BY_PATH["concept"].tables(data, FilterState(concept=SKILL))
    assert {r["country"]: r["usage"] for r in t["concept_by_country"].rows} == {"DE": 5,
                                                                              "FR": 2}
    assert {r["language"] for r in t["concept_by_language"].rows} == {"de", "fr"}
    assert sum(r["usage"] for r in t["concept_usage_trend"].rows) == 7
    assert [r["label"] for r in t["concept_candidate_labels"].rows] == [HTML_LABEL]
    assert [r["label"] for r in t["concept_proposals"].rows] == ["quantum plumbing"]
    assert [r["suggested_label"] for r in t["concept_feedback"].rows] == ["Gewindearten neu"]
    assert any(r["kind"] == "preferred" for r in t["concept_labels"].rows)


def test_label_language(app):
    data = data_of(app)
    en = BY_PATH["concepts"].tables(data, FilterState())["most_used_concepts"].rows
    de = BY_PATH["concepts"].tables(data, FilterState(label_language="de"))[
        "most_used_concepts"].rows
    assert [r["concept_uri"] for r in en] == [r["concept_uri"] for r in de]
    assert [r["label"] for r in en] != [r["label"] for r in de]


def test_the_shared_world_flags_no_trend(app):
    """Two implementers are fewer than a trend needs: the trend sections say nothing was
    flagged (tests/test_dashboard_trends.py shows trends on a store of its own)."""
    for path, kind in (("", "concept, label or proposal"), ("concepts", "concept"),
                       ("labels", "candidate label"), ("proposals", "proposal")):
        content, _, _ = render_page(data_of(app), f"/dashboard/{path}", "")
        assert (f"No {kind} was flagged as rising or falling against the previous 30 days."
                in texts(content)), path


def test_small_shares_are_not_shown_as_zero():
    from dashboard.components import fmt_number

    assert fmt_number(2 / 18237, percent=True) == "0.01 %"
    assert fmt_number(0.0, percent=True) == "0.0 %"
    assert fmt_number(0.256, percent=True) == "25.6 %"
    assert fmt_number(None, percent=True) == "–"


def test_a_grid_hands_its_rows_over_as_plotly_would_encode_them():
    rows = [{"label": "x</script><b>", "usage": 3, "share": 0.25, "note": None,
             "ratio": Decimal("0.1235"), "text": "Straße\u2028"}]
    ours = to_json_plotly(Grid(id="g", rowData=rows, columnDefs=[{"field": "label"}]))
    theirs = to_json_plotly(AgGrid(id="g", rowData=rows, columnDefs=[{"field": "label"}]))
    assert json.loads(ours) == json.loads(theirs)
    assert "</" not in ours and "\u2028" not in ours  # still safe inside a page
    assert Grid(id="g", rowData=rows).rowData is rows  # the component keeps its rows
    with pytest.raises(TypeError, match="not JSON serializable"):
        to_json_plotly(Grid(id="g", rowData=[{"label": object()}]))
