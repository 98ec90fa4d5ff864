"""Overview: the KPI cards with their change against the previous period, the usage trend, and
the concepts, candidate labels and proposals rising or falling."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import PREFIX
from dashboard.components import Table, bar_chart, kpi_card, section, trend_chart
from dashboard.data import Data
from dashboard.state import FilterState, target_href, to_query
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


def kpis(data: Data, state: FilterState, period, trend: list[dict[str, Any]]
         ) -> dict[str, float | None]:
    """The figures of the KPI cards for one period, whose usage per bucket is `trend` (drawn in
    the chart anyway: its sum is the period's usage)."""
    # counted without listing them: sql/kpi_counts.sql gives what implementer_uptake,
    # catalogue_coverage and the lists of labels, proposals and feedback add up to
    counts = data.kpi_counts(period, state)
    concepts = counts["concepts"]
    return {
        "usage": sum(r["usage"] for r in trend),
        "implementers": counts["implementers"],
        "countries": counts["countries"],
        "coverage": (counts["used_concepts"] / concepts) if concepts else None,
        "candidate_labels": counts["candidate_labels"],
        "proposals": counts["proposals"],
        "feedback": counts["feedback_events"],
    }


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    """The page's tables as its CSV downloads give them: those it shows (shown_tables), the
    usage trend and the usage by language with their events and distinct implementers and
    concepts too (language_usage: its share as well)."""
    period = state.period()
    data.prefetch(lambda: data.trend(period, state),
                  lambda: data.indicator("language_usage", period, state))
    return {**shown_tables(data, state), **{name: csv_table(data, state, name)
                                            for name in CSV_MORE}}


# the tables whose CSV carries more than the page shows (see `tables`)
CSV_MORE = ("usage_trend", "language_usage")


def table(data: Data, state: FilterState, name: str) -> Table | None:
    """One of `tables`, for its CSV: each of CSV_MORE computes its own table alone (a
    download of the usage by language need not count each bucket's implementers, nor
    compute the cards and trends of the page)."""
    return csv_table(data, state, name) if name in CSV_MORE else shown_tables(
        data, state).get(name)


def csv_table(data: Data, state: FilterState, name: str) -> Table:
    """One of CSV_MORE as its CSV gives it."""
    period = state.period()
    if name == "language_usage":
        langs = data.indicator("language_usage", period, state)
        return Table("Usage by language", langs.columns, langs.rows)
    data.prefetch(lambda: data.trend(period, state), lambda: data.trend_usage(period, state),
                  lambda: data.trend_usage(period.previous(), state))
    _, trend = data.trend(period, state)
    rows = [{**row, "events": t["events"], "implementers": t["implementers"],
             "concepts": t["concepts"]}
            for row, t in zip(trend_rows(data, state), trend, strict=True)]
    return Table("Usage trend", TREND_COLUMNS, rows)


TREND_COLUMNS = ("bucket", "grain", "usage", "events", "implementers", "concepts",
                 "previous_bucket", "previous_usage")


def shown_tables(data: Data, state: FilterState) -> dict[str, Table]:
    """The page's tables as it shows them. The usage trend (this period's and the previous
    one's) and the usage by language are usage alone: the charts draw nothing else, and the
    distinct implementers and concepts per bucket or language (sql/usage_trend.sql and
    sql/language_usage.sql, in the CSVs: `tables`) cost five times as much."""
    period = state.period()
    previous = period.previous()
    data.prefetch(
        lambda: data.indicator(TRENDS, period, state),  # the longest first
        lambda: review_loop(data),
        lambda: data.usage_by_language(period, state),
        *(call for p in (period, previous) for call in (
            lambda p=p: data.trend_usage(p, state),
            lambda p=p: data.kpi_counts(p, state))))
    _, trend = data.trend_usage(period, state)
    _, trend_prev = data.trend_usage(previous, state)
    now, before = kpis(data, state, period, trend), kpis(data, state, previous, trend_prev)
    summary = []
    for key, title in CARDS:
        cur, prev = now[key], before[key]
        pct = None
        if cur is not None and prev:
            pct = round(100.0 * (cur - prev) / prev, 1)
        summary.append({"kpi": title, "current": cur, "previous": prev, "change_pct": pct,
                        "period_start": period.start, "period_end": period.end,
                        "previous_start": previous.start, "previous_end": previous.end})
    langs = data.usage_by_language(period, state)
    loop = review_loop(data)
    return {
        "review_loop": Table("Review loop", tuple(loop[0]) if loop else LOOP_COLUMNS, loop),
        "kpi_summary": Table("KPIs", ("kpi", "current", "previous", "change_pct",
                                      "period_start", "period_end", "previous_start",
                                      "previous_end"), summary),
        "usage_trend": Table("Usage trend", ("bucket", "grain", "usage", "previous_bucket",
                                             "previous_usage"), trend_rows(data, state)),
        "language_usage": Table("Usage by language", ("language", "usage"), langs),
        TRENDS: trend_table(data, state, ("concept", "label", "proposal")),
    }


LOOP_COLUMNS = ("open", "accepted", "rejected", "deferred", "released", "covered",
                "days_to_decision", "days_to_release")


def review_loop(data: Data) -> list[dict[str, Any]]:
    """The review loop's own figures over every item and all time (kpi.review.summary), one
    row; none before the first aggregation."""
    try:
        rows = data.review_summary(overall=True)
    except FileNotFoundError:
        return []
    return [{k: rows[0][k] for k in LOOP_COLUMNS}] if rows else []


def _loop_section(state: FilterState, rows: list[dict[str, Any]]) -> html.Section:
    """Open, accepted and released items and the median days to a decision, with a link to
    the review queue."""
    queue = dcc.Link("Open the review queue", id="overview-review-link",
                     href=f"{PREFIX}review{to_query(state.with_(concept=None))}")
    if not rows:
        return section("Review loop", None, html.P(["No suggestions yet. ", queue],
                                                     className="note"))
    r = rows[0]
    days = r["days_to_decision"]
    cards = [
        kpi_card("review_open", "Open suggestions", r["open"], None, change=False),
        kpi_card("review_accepted", "Accepted, awaiting a release", r["accepted"], None,
                 change=False),
        kpi_card("review_released", "Taken up by a release", r["released"], None, change=False),
        kpi_card("review_days", "Median days to a decision",
                 None if days is None else round(float(days), 1), None, change=False),
    ]
    return section(
        "Review loop", "review_loop", html.Div(cards, className="kpi-cards"),
        html.P([f"Also {r['rejected']} rejected, {r['deferred']} deferred and {r['covered']} "
                "covered by a release without a decision. ", queue], className="note"),
        note="Every suggestion implementers sent, over all time (not the period): what the "
             "reviewers decided and what a newer release took up.")


def trend_rows(data: Data, state: FilterState) -> list[dict[str, Any]]:
    """The usage trend as the page shows it: per bucket this period's usage and the previous
    period's bucket and usage, right-aligned with it."""
    period = state.period()
    grain, trend = data.trend_usage(period, state)
    _, previous = data.trend_usage(period.previous(), state)
    return [{"bucket": r["bucket"], "grain": grain, "usage": r["usage"],
             "previous_bucket": p["bucket"] if p else None,
             "previous_usage": p["usage"] if p else None}
            for r, p in zip(trend, _align(trend, previous), strict=True)]


def _align(current: list[dict], previous: list[dict]) -> list[dict | None]:
    """The previous period's buckets, right-aligned with the current ones."""
    pad = len(current) - len(previous)
    return ([None] * pad + previous) if pad >= 0 else previous[-len(current):]


def render(data: Data, state: FilterState) -> list[Any]:
    t = shown_tables(data, state)
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
        _loop_section(state, t["review_loop"].rows),
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
