"""One concept: its usage over time, by country and language, labels, proposals, feedback."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components import (
    NOT_IN_RELEASE_MARK,
    Table,
    bar_chart,
    empty_state,
    grid,
    section,
    trend_chart,
)
from dashboard.data import Data
from dashboard.state import FilterState, target_href

TITLE = "Concept"
PATH = "concept"


def tables(data: Data, state: FilterState) -> dict[str, Table]:
    uri = state.concept
    if not uri:
        return {}
    period = state.period()
    data.prefetch(
        lambda: data.indicator("new_concept_proposals", period, state),
        lambda: data.concept_detail(period, state, uri),
        lambda: data.trend(period, state, concept_uri=uri),
        lambda: data.indicator("candidate_alt_labels", period, state, concept_uri=uri),
        lambda: data.indicator("translation_feedback", period, state, concept_uri=uri))
    detail = data.concept_detail(period, state, uri).rows
    grain, trend = data.trend(period, state, concept_uri=uri)
    part = {s: [r for r in detail if r["section"] == s] for s in
            ("concept", "country", "language", "label", "replaced")}
    usage_cols = ("usage", "events", "implementers")
    candidates = data.indicator("candidate_alt_labels", period, state, concept_uri=uri).rows
    # A proposal group's figures cover all its proposals, also those naming other broader
    # concepts: the groups are kept whole and picked here, not filtered in the SQL.
    proposals = [r for r in data.indicator("new_concept_proposals", period, state).rows
                 if uri in (r["broader_uris"] or [])]
    feedback = data.indicator("translation_feedback", period, state, concept_uri=uri).rows
    return {
        "concept_usage_trend": Table("Usage over time", ("bucket", "grain", "usage", "events",
                                                         "implementers"),
                                     [r | {"grain": grain} for r in trend]),
        "concept_by_country": Table("Usage by country", ("country", *usage_cols),
                                    [{"country": r["key"], **{c: r[c] for c in usage_cols}}
                                     for r in part["country"]]),
        "concept_by_language": Table("Usage by language", ("language", *usage_cols),
                                     [{"language": r["key"], **{c: r[c] for c in usage_cols}}
                                      for r in part["language"]]),
        "concept_labels": Table("Catalogue labels", ("language", "kind", "label"),
                                [{"language": r["key"], "kind": r["kind"], "label": r["label"]}
                                 for r in part["label"]]),
        "concept_candidate_labels": Table(
            "Candidate labels", ("language", "label", "implementers", "usage", "verdict"),
            candidates),
        "concept_proposals": Table(
            "Proposals naming it as broader concept",
            ("label", "concept_type", "language", "implementers", "events"), proposals),
        "concept_feedback": Table(
            "Translation feedback", ("language", "current_label", "suggested_label",
                                     "implementers", "events"), feedback),
        "concept_info": Table("Concept", ("concept_uri", "status", "concept_type",
                                          "newest_version"),
                              [{"concept_uri": uri, "status": r["key"],
                                "concept_type": r["kind"], "newest_version": r["label"]}
                               for r in part["concept"]]),
        "concept_replaced_uris": Table(
            "URIs it replaced", ("replaced_uri", "replaced_in", "source"),
            [{"replaced_uri": r["key"], "replaced_in": r["label"], "source": r["kind"]}
             for r in part["replaced"]]),
    }


def concept_name(labels: list[dict], language: str) -> str | None:
    """The preferred label in the chosen language, else the English one."""
    for lang in (language, "en"):
        for r in labels:
            if r["language"] == lang and r["kind"] == "preferred":
                return r["label"]
    return None


def release_notes(info: list[dict], replaced: list[dict], current: str | None) -> list[Any]:
    """What the concept's place in the loaded releases means for its figures: a concept the
    current release dropped (a symbol and words, not colour alone), and the replaced URIs
    whose events it counts."""
    notes: list[Any] = []
    if info and info[0]["status"] == "absent" and current:
        notes.append(html.P(id="concept-removed", className="release-notice", children=[
            html.Span(NOT_IN_RELEASE_MARK, className="release-mark"), " ",
            html.Strong(f"Not in ESCO {current}"),
            f", the current release: the last release that held it is "
            f"{info[0]['newest_version']}. Its uses still count (still used after removal)."]))
    for r in replaced:
        notes.append(html.P(className="note replaced-uri", children=[
            "Also counts events sent as ", html.Code(r["replaced_uri"]),
            f" (replaced in {r['replaced_in']})."]))
    return notes


def render(data: Data, state: FilterState) -> list[Any]:
    if not state.concept:
        return [empty_state("No concept chosen: open one from the Concepts page.")]
    t = tables(data, state)
    info = t["concept_info"].rows
    name = concept_name(t["concept_labels"].rows, state.label_language) or state.concept
    status = (f"{info[0]['concept_type']} · {info[0]['status']} · newest version "
              f"{info[0]['newest_version']}") if info else "not in the loaded catalogue"
    trend = t["concept_usage_trend"].rows
    grain = trend[0]["grain"] if trend else "day"
    country, language = t["concept_by_country"].rows, t["concept_by_language"].rows
    return [
        html.Div(className="concept-head", children=[
            html.H2(name, id="concept-name"),
            html.P([html.Code(state.concept), " · ", status], className="note"),
            *release_notes(info, t["concept_replaced_uris"].rows, data.current_release()),
        ]),
        section("Usage over time", "concept_usage_trend",
                trend_chart("concept_trend", f"Uses of {name} per {grain}", grain, trend, None)),
        html.Div(className="two-columns", children=[
            section("By country", "concept_by_country", bar_chart(
                "concept_country", f"Uses of {name} by country",
                [r["country"] or "unknown" for r in country], [r["usage"] for r in country],
                label_name="country", uris=[f"country={r['country']}" for r in country],
                noun="countries", link_note="the links filter by that country",
                links=[target_href(state, PATH, f"country={r['country']}") for r in country])),
            section("By language", "concept_by_language", bar_chart(
                "concept_language", f"Uses of {name} by language",
                [r["language"] for r in language], [r["usage"] for r in language],
                label_name="language", uris=[f"language={r['language']}" for r in language],
                noun="languages", link_note="the links filter by that language",
                links=[target_href(state, PATH, f"language={r['language']}")
                       for r in language])),
        ]),
        section("Candidate labels from implementers", "concept_candidate_labels",
                grid("concept_candidate_labels", t["concept_candidate_labels"])),
        section("Translation feedback", "concept_feedback",
                grid("concept_feedback", t["concept_feedback"])),
        section("Proposals naming it as broader concept", "concept_proposals",
                grid("concept_proposals", t["concept_proposals"])),
        section("Catalogue labels", "concept_labels",
                grid("concept_labels", t["concept_labels"])),
    ]
