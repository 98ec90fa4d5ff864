"""Rising and falling items (the concept_trends indicator) as the pages show them: a slope chart
per direction, previous period to this one, through components.chart, and plain words when
nothing was flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import html

from dashboard.components import (
    DIRECTION_STYLES,
    Table,
    chart,
    empty_state,
    plotly_text,
    section,
    slope_figure,
)
from dashboard.data import Data
from dashboard.state import FilterState, target_href

TABLE = "concept_trends"
# The lines a slope chart draws: more cross each other into a tangle; the data table under the
# chart lists the same items, the CSV all of them.
CHART_TOP = 10
# Items named in a chart's caption; the rest are counted.
SUMMARY_TOP = 5


def trend_table(data: Data, state: FilterState, kinds: Sequence[str]) -> Table:
    """The flagged items of `kinds` ('concept', 'label', 'proposal') for the state's period and
    filters, with every column of the indicator (what the CSV holds)."""
    result = data.indicator(TABLE, state.period(), state)
    return Table("Rising and falling", result.columns,
                 [r for r in result.rows if r["kind"] in kinds])


def tested_items(data: Data, state: FilterState) -> int | None:
    """How many items were tested, all kinds together; None when nothing was flagged (the
    indicator returns the count with its rows only)."""
    rows = data.indicator(TABLE, state.period(), state).rows
    return rows[0]["tested"] if rows else None


def ratio_text(row: dict[str, Any]) -> str:
    """The share's change as a factor ("×2.8", "×0.06"), or "new" for an emerging item."""
    ratio = row.get("share_ratio")
    if ratio is None:
        return "new"
    ratio = float(ratio)
    if ratio >= 10:
        return f"×{ratio:.0f}"
    return f"×{ratio:.1f}" if ratio >= 1 else f"×{ratio:.2g}"


def implementers(row: dict[str, Any]) -> int:
    """The implementers of the period where the item is larger (the ones a trend needs)."""
    return row["previous_implementers" if row["trend"] == "falling" else "current_implementers"]


def item_text(row: dict[str, Any]) -> str:
    """The item in words: a concept's label; a candidate label with its concept and language;
    a proposal with its type and language."""
    label = row.get("label") or row.get("label_norm") or row.get("concept_uri") or "–"
    if row["kind"] == "label":
        return f"{label} → {row.get('label_en') or row.get('concept_uri')} ({row['language']})"
    if row["kind"] == "proposal":
        return f"{label} ({row.get('concept_type')}, {row.get('language')})"
    return str(label)


def p_text(value: Any) -> str:
    """A p-value in two significant digits (0.00043, 2.2e-14)."""
    return "–" if value is None else f"{float(value):.2g}"


def summary(rows: list[dict[str, Any]], trend: str, with_kind: bool) -> str:
    """A chart's text alternative: "3 rising: mount photovoltaic panels (×3.3,
    12 implementers), …"."""
    parts = [f"{item_text(r)} ({r['kind'] + ', ' if with_kind else ''}{ratio_text(r)}, "
             f"{implementers(r)} implementers)" for r in rows[:SUMMARY_TOP]]
    more = f" and {len(rows) - SUMMARY_TOP} more" if len(rows) > SUMMARY_TOP else ""
    return f"{len(rows)} {trend}: {', '.join(parts)}{more}."


def _hover(row: dict[str, Any], name: str) -> str:
    return (f"{plotly_text(name)}<br>events: {row['previous_events']:,} → "
            f"{row['current_events']:,}<br>share of use: {ratio_text(row)}"
            f"<br>adjusted p-value: {p_text(row['p_adjusted'])}"
            f"<br>implementers: {row['previous_implementers']} → "
            f"{row['current_implementers']}")


def trend_chart(rows: list[dict[str, Any]], trend: str, state: FilterState, path: str,
                noun: str, with_kind: bool) -> list[Any]:
    """The slope chart of one direction's items, the strongest CHART_TOP of them, with its
    caption and data table (components.chart); concepts link to their page."""
    shown = rows[:CHART_TOP]
    names = [f"{r['kind']}: {item_text(r)}" if with_kind else item_text(r) for r in shown]
    # a candidate label belongs to a concept: its line and link open that concept too
    uris = [r.get("concept_uri") for r in shown]
    fig = slope_figure(names, [r["previous_events"] for r in shown],
                       [r["current_events"] for r in shown], direction=trend,
                       hover=[_hover(r, n) for r, n in zip(shown, names, strict=True)],
                       targets=uris)
    headers = ("item", *(("kind",) if with_kind else ()), "trend", "events previous period",
               "events this period", "share of use", "adjusted p-value",
               "implementers previous period", "implementers this period")
    arrow = DIRECTION_STYLES[trend]["arrow"]
    table_rows = [(item_text(r), *((r["kind"],) if with_kind else ()), f"{arrow} {r['trend']}",
                   r["previous_events"], r["current_events"], ratio_text(r),
                   p_text(r["p_adjusted"]), r["previous_implementers"],
                   r["current_implementers"]) for r in shown]
    links = [target_href(state, path, u) for u in uris]
    linked = any(links)
    figure = chart(f"trends_{trend}", fig,
                   title=f"{trend.capitalize()} {noun}: events in the previous period and "
                         "this one",
                   headers=headers, rows=table_rows, links=links if linked else None,
                   link_note="the links open the concept" if linked else None,
                   summary=summary(rows, trend, with_kind))
    if len(rows) > CHART_TOP:
        return [html.P(f"The {CHART_TOP} strongest of {len(rows)}; the CSV has them all.",
                       className="note"), figure]
    return [figure]


def how_found(data: Data) -> html.P:
    """What "significant" means here, in two sentences."""
    least = data.settings["privacy.export_min_implementers"]
    return html.P(className="note trend-method", children=[
        html.Strong("How trends are found: "),
        "an item's share of all use of its kind in this period (counted in events) is tested "
        "against its share in the previous period of equal length. It is flagged when the "
        "change is significant at a 5 % false discovery rate, at least 1.5-fold, carried by "
        f"at least {least} implementers, and still holds without any one portal."])


NOTES = {
    "rising": "Solid lines with upward triangles, from the previous period's events to this "
              "period's; an emerging item was not used before.",
    "falling": "Dashed lines with downward triangles, from the previous period's events to "
               "this period's.",
}


def trend_sections(data: Data, state: FilterState, table: Table, path: str, noun: str,
                   singular: str, with_kind: bool = False) -> list[html.Section]:
    """A "Rising" and a "Falling" section of the table's items (`noun`: what they are, plural;
    `singular`: one of them, for "No concept rose …"), or one section saying that nothing was
    flagged. `with_kind` marks each item with its kind, for pages showing several."""
    against = f"against the previous {state.period().days} days"
    tested = tested_items(data, state)
    counted = "" if tested is None else f"; {tested:,} item{'' if tested == 1 else 's'} tested"
    rising = [r for r in table.rows if r["trend"] != "falling"]
    falling = [r for r in table.rows if r["trend"] == "falling"]
    if not rising and not falling:
        # without a row of any kind, how many were tested is unknown: only say so
        words = (f"No {singular} rose or fell significantly {against}{counted}."
                 if tested is not None
                 else f"No {singular} was flagged as rising or falling {against}.")
        return [section(f"Rising and falling {noun}", TABLE, empty_state(words),
                        how_found(data))]
    out = []
    for trend, rows, verb in (("rising", rising, "rose"), ("falling", falling, "fell")):
        body = (trend_chart(rows, trend, state, path, noun, with_kind) if rows else
                [empty_state(f"No {singular} {verb} significantly {against}{counted}.")])
        if trend == "falling":
            body.append(how_found(data))
        out.append(section(f"{trend.capitalize()} {noun}", TABLE, *body,
                           note=NOTES[trend] + " Hover a line for its share of use, adjusted "
                                "p-value and implementers." if rows else None))
    return out
