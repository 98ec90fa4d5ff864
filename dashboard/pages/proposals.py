"""Proposals: new concepts that implementers proposed, grouped by label, type and language."""

from __future__ import annotations

from typing import Any

from dashboard.components import Table, bar_chart, grid, section
from dashboard.data import Data
from dashboard.state import FilterState

TITLE = "Proposals"
PATH = "proposals"


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    r = data.indicator("new_concept_proposals", state.period(), state)
    return {"new_concept_proposals": Table(
        "Concept proposals", r.columns, r.rows,
        grid_columns=("label", "concept_type", "language", "implementers", "events",
                      "spellings", "broader_labels_en"))}


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)["new_concept_proposals"]
    top = t.rows[:15]
    chart = bar_chart("proposals", "Proposed concepts by number of implementers",
                      [f"{r['label']} ({r['concept_type']}, {r['language']})" for r in top],
                      [r["implementers"] for r in top], label_name="proposal (type, language)",
                      value_name="implementers", noun="proposals")
    return [
        section("Most proposed concepts", "new_concept_proposals", chart),
        section("Concept proposals", "new_concept_proposals", grid("new_concept_proposals", t)),
    ]
