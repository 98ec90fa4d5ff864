"""Labels: candidate alternative labels per concept and language, and those rising or
falling."""

from __future__ import annotations

from typing import Any

from dashboard.components import Table, bar_chart, grid, section
from dashboard.data import Data
from dashboard.review import review_links, with_review
from dashboard.state import FilterState, target_href
from dashboard.trends import TABLE as TRENDS
from dashboard.trends import trend_sections, trend_table

TITLE = "Labels"
PATH = "labels"


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    data.prefetch(*(lambda name=name: data.indicator(name, state.period(), state)
                    for name in (TRENDS, "candidate_alt_labels")))
    r = data.indicator("candidate_alt_labels", state.period(), state)
    # the CSV keeps the indicator's columns; the grid adds each row's review status
    return {"candidate_alt_labels": Table(
        "Candidate alternative labels", r.columns, with_review(data, "label", r.rows),
        grid_columns=("label", "label_concept", "language", "implementers", "usage",
                      "spellings", "verdict", "review")),
        TRENDS: trend_table(data, state, ("label",))}


def render(data: Data, state: FilterState) -> list[Any]:
    all_tables = tables(data, state)
    t = all_tables["candidate_alt_labels"]
    top = t.rows[:15]
    uris = [r["concept_uri"] for r in top]
    chart = bar_chart(
        "candidate_labels", "Candidate labels by number of implementers",
        [f"{r['label']} → {r['label_concept'] or r['concept_uri']} ({r['language']})"
         for r in top], [r["implementers"] for r in top],
        label_name="label → concept (language)", value_name="implementers", uris=uris,
        noun="labels", links=[target_href(state, PATH, u) for u in uris],
        link_note="the links open the concept")
    return [
        *trend_sections(data, state, all_tables[TRENDS], PATH, "candidate labels",
                        "candidate label"),
        section("Labels most implementers added", "candidate_alt_labels", chart),
        section("Candidate alternative labels", "candidate_alt_labels",
                grid("candidate_alt_labels", t, clickable_concepts=True),
                note="Labels implementers gave a concept that no loaded release holds in "
                     "that language (compared ignoring case, accents and punctuation); "
                     "review: the item's status in the review queue."),
        section("Decide in the review queue", None,
                review_links(data, state, "label", t.rows, lambda r: f"{r['label']} → "
                             f"{r['label_concept'] or r['concept_uri']} ({r['language']})"),
                note="The labels most implementers added, each linked to its review item."),
    ]
