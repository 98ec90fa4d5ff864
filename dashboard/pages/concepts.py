"""Concepts: the most and least used concepts, those rising or falling, those still used after
the current ESCO release dropped them, and catalogue coverage by type."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components import (
    GRID_ROW_LIMIT,
    NOT_IN_RELEASE_MARK,
    Table,
    bar_chart,
    empty_state,
    fmt_number,
    grid,
    release_status,
    section,
)
from dashboard.data import Data
from dashboard.state import FilterState, target_href
from dashboard.trends import TABLE as TRENDS
from dashboard.trends import trend_sections, trend_table
from kpi.warehouse.indicators import head_replaced, rows_where

TITLE = "Concepts"
PATH = "concepts"
TOP = 20
REMOVED = "still_used_after_removal"
# wide enough for "⚠ not in 1.2.0 (last in 1.0.8)"
RELEASE_WIDTH = 240
REMOVED_COLUMNS = ("rank", "concept_uri", "label", "concept_type", "last_release", "usage",
                   "events", "implementers")


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    period = state.period()
    data.prefetch(*(lambda name=name: data.indicator(name, period, state) for name in (
        TRENDS, "most_used_concepts", "least_used_concepts", "catalogue_coverage")))
    most = data.indicator("most_used_concepts", period, state)
    least = data.indicator("least_used_concepts", period, state)
    coverage = data.indicator("catalogue_coverage", period, state)
    current = data.current_release()

    def with_release(row: dict[str, Any]) -> dict[str, Any]:
        # a new dict: the results are shared with the memo
        return row | {"release": release_status(row["in_current"], current, row["last_release"])}

    # `release` is for the grids only (the CSV keeps the indicator's columns, in_current and
    # last_release): given to the rows a grid shows, the others left unmade
    shown = head_replaced(most.rows, [with_release(r) for r in most.rows[:GRID_ROW_LIMIT]])
    removed = [with_release(r) for r in rows_where(most.rows, "in_current", False)]
    return {
        "most_used_concepts": Table(
            "Most used concepts", most.columns, shown,
            grid_columns=("rank", "label", "concept_type", "release", "usage", "implementers",
                          "previous_usage", "change", "change_pct"),
            widths={"rank": 80, "release": RELEASE_WIDTH}),
        REMOVED: Table("Still used after removal", REMOVED_COLUMNS, removed,
                       grid_columns=("rank", "label", "concept_type", "release", "usage",
                                     "events", "implementers"),
                       widths={"rank": 80, "release": RELEASE_WIDTH}),
        "least_used_concepts": Table(
            "Least used concepts", least.columns, least.rows,
            grid_columns=("label", "concept_type", "usage", "implementers", "events")),
        "catalogue_coverage": Table("Catalogue coverage", coverage.columns, coverage.rows),
        TRENDS: trend_table(data, state, ("concept",)),
    }


def concept_label(row: dict[str, Any], current: str | None) -> str:
    """A concept's name on a chart: marked, in a symbol and words, when the current release
    lacks it."""
    name = row["label"] or row["concept_uri"]
    if row["in_current"] or current is None:
        return name
    return f"{NOT_IN_RELEASE_MARK} {name} (not in {current})"


def removal_panel(current: str | None, table: Table) -> Any:
    """"N concepts still used after removal, M events": the concepts the current release
    dropped that were used in the period, most used first, with the release that last held
    each."""
    rows = table.rows
    release = f"ESCO {current}" if current else "the current release"
    noun = "concept" if len(rows) == 1 else "concepts"
    headline = html.P(id="removal-summary", className="release-notice", children=[
        html.Span(NOT_IN_RELEASE_MARK, className="release-mark"), " ",
        html.Strong(f"{fmt_number(len(rows))} {noun} still used after removal, "
                    f"{fmt_number(sum(r['events'] for r in rows))} events"),
        f" ({fmt_number(sum(r['usage'] for r in rows))} uses) in this period: "
        + (f"{release}, the current release," if current else release)
        + " no longer holds them. Their uses still count; the release column names the "
        "release that last held each."])
    body = (grid(REMOVED, table, clickable_concepts=True) if rows else
            empty_state(f"No concept that {release} lacks was used in this period."))
    return section("Still used after removal", REMOVED, headline, body,
                   note="Only the concepts the current release lacks, most used first.")


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)
    current = data.current_release()
    release = f"ESCO {current}" if current else "ESCO"
    most = t["most_used_concepts"].rows[:TOP]
    uris = [r["concept_uri"] for r in most]
    chart = bar_chart("most_used", f"Top {TOP} concepts by usage",
                      [concept_label(r, current) for r in most], [r["usage"] for r in most],
                      label_name="concept", uris=uris, noun="concepts",
                      links=[target_href(state, PATH, u) for u in uris],
                      link_note="the links open the concept")
    return [
        section(f"Top {TOP} concepts", "most_used_concepts", chart,
                note="Click a bar, or a concept in the data table, to open the concept. "
                     f"{NOT_IN_RELEASE_MARK} marks a concept that {release}, the current "
                     "release, no longer holds."),
        removal_panel(current, t[REMOVED]),
        *trend_sections(data, state, t[TRENDS], PATH, "concepts", "concept"),
        section("Most used concepts", "most_used_concepts",
                grid("most_used_concepts", t["most_used_concepts"], clickable_concepts=True),
                note=f"The release column says whether {release}, the current release, "
                     f"holds each concept ({NOT_IN_RELEASE_MARK} not in it, with the release "
                     "that last held it). For only the concepts it lacks, filter that column "
                     "by “not in”, or see Still used after removal above."),
        section("Least used concepts", "least_used_concepts",
                grid("least_used_concepts", t["least_used_concepts"], clickable_concepts=True),
                note="Every occupation and skill of the newest catalogue version, "
                     "never-used ones (usage 0) first."),
        section("Catalogue coverage", "catalogue_coverage",
                grid("catalogue_coverage", t["catalogue_coverage"])),
    ]
