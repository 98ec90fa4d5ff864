"""Overview: the KPI cards with their change against the previous period, the usage trend, and
the concepts, candidate labels and proposals rising or falling."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components import Table, bar_chart, kpi_card, section, trend_chart
from dashboard.data import Data
from dashboard.state import FilterState, target_href
from dashboard.trends import TABLE as TRENDS
from dashboard.trends import trend_sections, trend_table

TITLE = "Overview"
PATH = ""

CARDS = (
    ("usage", "Concept uses"),
    ("implementers", "Active implementers"),
    ("countries", "Countries"),
    ("coverage", "Catalogue coverage"),
    ("candidate_labels", "New candidate labels"),
    ("proposals", "Concept proposals"),
    ("feedback", "Translation feedback"),
)


def kpis(data: Data, state: FilterState, period) -> dict[str, float | None]:
    """The figures of the KPI cards for one period."""
    # the trend is needed for the chart anyway: its sum is the period's usage
    _, trend = data.trend(period, state)
    uptake = [r for r in data.indicator("implementer_uptake", period, state).rows
              if r["dimension"] == "country"]
    coverage = data.indicator("catalogue_coverage", period, state).rows
    concepts = sum(r["concepts"] for r in coverage)
    return {
        "usage": sum(r["usage"] for r in trend),
        "implementers": sum(r["active_implementers"] for r in uptake),
        "countries": len({r["value"] for r in uptake if r["value"]}),
        "coverage": (sum(r["used"] for r in coverage) / concepts) if concepts else None,
        "candidate_labels": len(data.indicator("candidate_alt_labels", period, state).rows),
        "proposals": len(data.indicator("new_concept_proposals", period, state).rows),
        "feedback": sum(r["events"] for r in
                        data.indicator("translation_feedback", period, state).rows),
    }


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    period = state.period()
    previous = period.previous()
    now, before = kpis(data, state, period), kpis(data, state, previous)
    summary = []
    for key, title in CARDS:
        cur, prev = now[key], before[key]
        pct = None
        if cur is not None and prev:
            pct = round(100.0 * (cur - prev) / prev, 1)
        summary.append({"kpi": title, "current": cur, "previous": prev, "change_pct": pct,
                        "period_start": period.start, "period_end": period.end,
                        "previous_start": previous.start, "previous_end": previous.end})
    grain, trend = data.trend(period, state)
    _, trend_prev = data.trend(previous, state)
    trend_rows = [{"bucket": r["bucket"], "grain": grain, "usage": r["usage"],
                   "events": r["events"], "implementers": r["implementers"],
                   "concepts": r["concepts"],
                   "previous_bucket": p["bucket"] if p else None,
                   "previous_usage": p["usage"] if p else None}
                  for r, p in zip(trend, _align(trend, trend_prev), strict=True)]
    langs = data.indicator("language_usage", period, state)
    return {
        "kpi_summary": Table("KPIs", ("kpi", "current", "previous", "change_pct",
                                      "period_start", "period_end", "previous_start",
                                      "previous_end"), summary),
        "usage_trend": Table("Usage trend", ("bucket", "grain", "usage", "events",
                                             "implementers", "concepts", "previous_bucket",
                                             "previous_usage"), trend_rows),
        "language_usage": Table("Usage by language", langs.columns, langs.rows),
        TRENDS: trend_table(data, state, ("concept", "label", "proposal")),
    }


def _align(current: list[dict], previous: list[dict]) -> list[dict | None]:
    """The previous period's buckets, right-aligned with the current ones."""
    pad = len(current) - len(previous)
    return ([None] * pad + previous) if pad >= 0 else previous[-len(current):]


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)
    cards = [kpi_card(key, title, row["current"], row["previous"], percent=key == "coverage")
             for (key, title), row in zip(CARDS, t["kpi_summary"].rows, strict=True)]
    trend = t["usage_trend"].rows
    grain = trend[0]["grain"] if trend else "day"
    trend_chart_ = trend_chart(
        "usage_trend", f"Concept uses per {grain}, this period and the previous one", grain,
        trend, [{"bucket": r["previous_bucket"], "usage": r["previous_usage"]} for r in trend
                if r["previous_bucket"] is not None])
    langs = t["language_usage"].rows
    uris = [f"language={r['language']}" for r in langs]
    return [
        section("Key figures", "kpi_summary", html.Div(cards, className="kpi-cards"),
                note="Change against the previous period of equal length."),
        section("Usage trend", "usage_trend", trend_chart_,
                note=f"Concept uses per {grain}; the dashed line with diamonds is the previous "
                     "period."),
        *trend_sections(data, state, t[TRENDS], PATH, "concepts, labels and proposals",
                        "concept, label or proposal", with_kind=True),
        section("Usage by language", "language_usage",
                bar_chart("language_usage", "Concept uses by language",
                          [r["language"] for r in langs], [r["usage"] for r in langs],
                          label_name="language", uris=uris, noun="languages",
                          links=[target_href(state, PATH, u) for u in uris],
                          link_note="the links filter by that language"),
                note="Click a bar, or a language in the data table, to filter by that "
                     "language."),
    ]
