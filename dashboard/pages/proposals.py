"""Proposals: new concepts that implementers proposed, grouped by label, type and language, and
those rising or falling."""

from __future__ import annotations

from typing import Any

from dashboard.components import Table, bar_chart, grid, section
from dashboard.data import Data
from dashboard.review import review_links, with_review
from dashboard.state import FilterState
from dashboard.trends import TABLE as TRENDS
from dashboard.trends import trend_sections, trend_table

TITLE = "Proposals"
PATH = "proposals"


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    r = data.indicator("new_concept_proposals", state.period(), state)
    # the CSV keeps the indicator's columns; the grid adds each row's review status
    return {"new_concept_proposals": Table(
        "Concept proposals", r.columns, with_review(data, "proposal", r.rows),
        grid_columns=("label", "concept_type", "language", "implementers", "events",
                      "spellings", "broader_labels_en", "review")),
        TRENDS: trend_table(data, state, ("proposal",))}


def render(data: Data, state: FilterState) -> list[Any]:
    all_tables = tables(data, state)
    t = all_tables["new_concept_proposals"]
    top = t.rows[:15]
    chart = bar_chart("proposals", "Proposed concepts by number of implementers",
                      [f"{r['label']} ({r['concept_type']}, {r['language']})" for r in top],
                      [r["implementers"] for r in top], label_name="proposal (type, language)",
                      value_name="implementers", noun="proposals")
    return [
        *trend_sections(data, state, all_tables[TRENDS], PATH, "proposals", "proposal"),
        section("Most proposed concepts", "new_concept_proposals", chart),
        section("Concept proposals", "new_concept_proposals", grid("new_concept_proposals", t),
                note="review: the item's status in the review queue."),
        section("Decide in the review queue", None,
                review_links(data, state, "proposal", t.rows,
                             lambda r: f"{r['label']} ({r['concept_type']}, {r['language']})"),
                note="The concepts most implementers proposed, each linked to its review "
                     "item."),
    ]
