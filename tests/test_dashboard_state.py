"""The filter state in the URL: round trips, junk in hand-edited links, the controls kept in
step with the URL, file names of downloads, and click-to-filter links."""

from __future__ import annotations

from datetime import date

from dash import no_update

from dashboard.callbacks import click_href, concept_href, sync_controls
from dashboard.data import bucket_starts, grain_for
from dashboard.state import FilterState, csv_filename, parse_query, to_query
from kpi.review.items import item_id
from kpi.warehouse.indicators import Period
from tests.helpers import SKILL


def test_url_state_round_trip():
    state = FilterState(preset="custom", start=Period.day("2026-07-01").start,
                        end=Period.day("2026-09-30").start, country="DE", language="de",
                        label_language="fr", concept=SKILL)
    search = to_query(state)
    assert parse_query(search) == state
    assert to_query(FilterState()) == ""
    # junk in a hand-edited link falls back to the defaults
    assert parse_query("?period=forever&country=germany&language=xx&labels=zz&concept=x") \
        == FilterState()
    assert csv_filename("most_used_concepts", state) == \
        "most_used_concepts_2026-07-01_2026-09-30_language-de_country-DE_concept-" \
        + SKILL.rsplit("/", 1)[-1] + ".csv"


def test_sync_controls_url_wins_on_load_and_controls_write_the_url():
    out = sync_controls(None, "?country=FR&period=last_quarter", (None,) * 9)
    assert out[0] is no_update
    assert out[1] == "last_quarter" and out[6] == "FR"
    assert out[-1] == {"display": "none"}
    values = ("last30", None, None, "skill", None, "DE", None, None, "de")
    out = sync_controls("f-country", "?concept=" + SKILL, values)
    assert parse_query(out[0]) == FilterState(concept_type="skill", country="DE",
                                              label_language="de", concept=SKILL)
    # the Review page's own choices stay too: a linked item is still shown under new filters
    item = item_id("label", SKILL, "en", "data wizard")
    out = sync_controls("f-country", f"?kind=label&status=open&item={item}", values)
    assert parse_query(out[0]) == FilterState(concept_type="skill", country="DE",
                                              label_language="de", kind="label",
                                              status="open", item=item)
    # switching to custom starts from the period shown so far
    out = sync_controls("f-period", "", ("custom", None, None, *(None,) * 5, "en"))
    state = parse_query(out[0])
    assert state.preset == "custom" and state.period() == FilterState().period()
    assert out[-1] == {}


def test_click_to_filter():
    assert click_href("/dashboard/uptake", "?period=last_quarter", "country=FR") == \
        "/dashboard/uptake?period=last_quarter&country=FR"
    assert click_href("/dashboard/", "?country=FR", "language=de") == \
        "/dashboard/?language=de&country=FR"
    assert click_href("/dashboard/concepts", "", SKILL) == concept_href("", SKILL)
    for bad in ("country=france", "implementer_id=3", "language=xx", None, 42):
        assert click_href("/dashboard/uptake", "", bad) is None
    assert click_href("/elsewhere", "", "country=FR") is None


def test_a_long_period_s_trend_has_a_bucket_for_every_month_it_touches():
    """Buckets without usage show as zero, so every month from the first to the last is one,
    across the turn of a year and whatever day the period starts on."""
    period = Period(date(2025, 11, 15), date(2027, 1, 3))
    assert grain_for(period) == "month"
    starts = bucket_starts(period, "month")
    assert starts[:3] == [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1)]
    assert starts[-2:] == [date(2026, 12, 1), date(2027, 1, 1)]
    assert len(starts) == 15
