"""Translations: feedback on labels per language and concept, with the suggested labels."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dashboard.components import Table, bar_chart, grid, section
from dashboard.data import Data
from dashboard.review import review_links, with_review
from dashboard.state import FilterState, target_href
from kpi.warehouse.indicators import column_values, most_rows

TITLE = "Translations"
PATH = "translations"


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    r = data.indicator("translation_feedback", state.period(), state)
    # from the columns: a dict for each of 30,000 rows cost most of the page (60-70 ms)
    per_language: Counter = Counter()
    for language, events in zip(column_values(r.rows, "language"),
                                column_values(r.rows, "events"), strict=True):
        per_language[language] += events
    return {
        # the CSV keeps the indicator's columns; the grid adds each row's review status
        "translation_feedback": Table(
            "Translation feedback", r.columns, with_review(data, "translation", r.rows),
            grid_columns=("language", "label_en", "current_label", "suggested_label",
                          "implementers", "events", "concept_events", "review")),
        "translation_feedback_by_language": Table(
            "Feedback by language", ("language", "events"),
            [{"language": k, "events": v} for k, v in per_language.most_common()]),
    }


def render(data: Data, state: FilterState) -> list[Any]:
    t = tables(data, state)
    by_lang = t["translation_feedback_by_language"].rows
    uris = [f"language={r['language']}" for r in by_lang]
    chart = bar_chart("feedback_by_language", "Translation feedback events by language",
                      [r["language"] for r in by_lang], [r["events"] for r in by_lang],
                      label_name="language", value_name="events", uris=uris, noun="languages",
                      links=[target_href(state, PATH, u) for u in uris],
                      link_note="the links filter by that language")
    return [
        section("Feedback by language", "translation_feedback_by_language", chart),
        section("Translation feedback", "translation_feedback",
                grid("translation_feedback", t["translation_feedback"],
                     clickable_concepts=True),
                note="review: the item's status in the review queue."),
        section("Decide in the review queue", None,
                review_links(data, state, "translation",
                             most_rows(t["translation_feedback"].rows, "implementers", 15),
                             lambda r: f"{r['suggested_label']} for {r['label_en']} "
                                       f"({r['language']})"),
                note="The suggestions most implementers sent, each linked to its review "
                     "item."),
    ]
