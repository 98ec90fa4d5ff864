"""Concepts: the most and least used concepts, those rising or falling, and catalogue coverage
by type."""

from __future__ import annotations

from typing import Any

from dashboard.components import Table, bar_chart, grid, section
from dashboard.data import Data
from dashboard.state import FilterState, target_href
from dashboard.trends import TABLE as TRENDS
from dashboard.trends import trend_sections, trend_table

TITLE = "Concepts"
PATH = "concepts"
TOP = 20


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    period = state.period()
    most = data.indicator("most_used_concepts", period, state)
    least = data.indicator("least_used_concepts", period, state)
    coverage = data.indicator("catalogue_coverage", period, state)
    return {
        "most_used_concepts": Table(
            "Most used concepts", most.columns, most.rows,
            grid_columns=("rank", "label", "concept_type", "status", "usage", "implementers",
                          "previous_usage", "change", "change_pct"),
            widths={"rank": 80}),
        "least_used_concepts": Table(
            "Least used concepts", least.columns, least.rows,
            grid_columns=("label", "concept_type", "usage", "implementers", "events")),
        "catalogue_coverage": Table("Catalogue coverage", coverage.columns, coverage.rows),
        TRENDS: trend_table(data, state, ("concept",)),
    }


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)
    most = t["most_used_concepts"].rows[:TOP]
    uris = [r["concept_uri"] for r in most]
    chart = bar_chart("most_used", f"Top {TOP} concepts by usage",
                      [r["label"] or r["concept_uri"] for r in most], [r["usage"] for r in most],
                      label_name="concept", uris=uris, noun="concepts",
                      links=[target_href(state, PATH, u) for u in uris],
                      link_note="the links open the concept")
    return [
        section(f"Top {TOP} concepts", "most_used_concepts", chart,
                note="Click a bar, or a concept in the data table, to open the concept."),
        *trend_sections(data, state, t[TRENDS], PATH, "concepts", "concept"),
        section("Most used concepts", "most_used_concepts",
                grid("most_used_concepts", t["most_used_concepts"], clickable_concepts=True)),
        section("Least used concepts", "least_used_concepts",
                grid("least_used_concepts", t["least_used_concepts"], clickable_concepts=True),
                note="Every occupation and skill of the newest catalogue version, "
                     "never-used ones (usage 0) first."),
        section("Catalogue coverage", "catalogue_coverage",
                grid("catalogue_coverage", t["catalogue_coverage"])),
    ]
