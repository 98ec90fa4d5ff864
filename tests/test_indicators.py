"""Golden tests of the KPI indicators: known events in, exact rows out (real SQLite ingest
store, real aggregation, real DuckDB reader)."""

from __future__ import annotations

from datetime import date

import pytest

from kpi.catalogue.labels import normalise_label
from kpi.warehouse.indicators import (
    INDICATORS,
    Period,
    Result,
    applicable_filters,
    load_sql,
    parameters,
    query,
)
from tests.kpi_fixtures import ISCO, O1, O2, S1, S2, S3, S4, standard_store

Q3 = Period.quarter("2026-Q3")


def rows(result: Result, *columns: str) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in result.rows]


@pytest.fixture
def store(tmp_path):
    store = standard_store(tmp_path)
    yield store
    store.engine.dispose()


# ---------------------------------------------------------------------------------------------
# Periods, loader, filters


def test_periods():
    assert Period(date(2026, 7, 1), date(2026, 9, 30)) == Q3
    assert Q3.days == 92
    assert Q3.previous() == Period(date(2026, 3, 31), date(2026, 6, 30))
    assert Period.quarter(date(2026, 2, 3)) == Period(date(2026, 1, 1), date(2026, 3, 31))
    assert Period.month("2024-02") == Period(date(2024, 2, 1), date(2024, 2, 29))
    assert Period.week("2026-W01") == Period(date(2025, 12, 29), date(2026, 1, 4))
    assert Period.week(date(2026, 7, 16)) == Period(date(2026, 7, 13), date(2026, 7, 19))
    assert Period.day("2026-07-01").previous() == Period.day("2026-06-30")
    assert Period.custom("2026-07-01", "2026-07-10").previous() == Period.custom(
        "2026-06-21", "2026-06-30")
    for bad in ("2026-Q5", "2026Q", "x"):
        with pytest.raises(ValueError, match="quarter"):
            Period.quarter(bad)
    with pytest.raises(ValueError, match="before it starts"):
        Period.custom("2026-07-02", "2026-07-01")
    with pytest.raises(ValueError, match="not a date"):
        Period.custom("2026-13-01", "2026-07-01")


def test_every_indicator_has_a_documented_sql_file():
    for name in INDICATORS:
        sql = load_sql(name)
        assert sql.startswith(f"-- {name}:"), name
        code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
        assert code == code.lower(), name  # lower-case SQL
        # its period: the dates, or their span bounds (kpi.warehouse.spans)
        assert {"start", "end"} <= parameters(name) or "period" in parameters(name), name
        assert "{" not in code  # no format placeholders
    assert applicable_filters("data_quality") == ("country", "sector", "implementer_id")
    assert applicable_filters("most_used_concepts") == (
        "concept_type", "language", "country", "sector", "context")
    assert applicable_filters("candidate_alt_labels") == (
        "concept_type", "language", "country", "sector", "context", "concept_uri")
    assert "concept_uri" in applicable_filters("translation_feedback")


def test_bad_filters_are_refused_in_plain_words(store):
    store.aggregate()
    with pytest.raises(ValueError, match="unknown filter 'colour'"):
        query(store.settings, "language_usage", Q3, colour="red")
    with pytest.raises(ValueError, match="language must be one of"):
        query(store.settings, "language_usage", Q3, language="xx")
    with pytest.raises(ValueError, match="country must be a two-letter"):
        query(store.settings, "language_usage", Q3, country="Germany")
    with pytest.raises(ValueError, match="concept_uri must be an ESCO concept URI"):
        query(store.settings, "candidate_alt_labels", Q3, concept_uri="javascript:alert(1)")
    with pytest.raises(ValueError, match="unknown indicator"):
        query(store.settings, "nope", Q3)
    with pytest.raises(ValueError, match="label_language"):
        query(store.settings, "most_used_concepts", Q3, label_language="xx")
    # a filter that an indicator cannot apply is ignored, an empty one means all
    assert query(store.settings, "data_quality", Q3, language="de", sector="").rows == []


def test_every_indicator_runs_before_the_first_aggregation(store):
    for name in INDICATORS:
        result = query(store.settings, name, Q3)
        assert result.columns
        assert result.rows == [] or name in ("least_used_concepts",)


def test_normalisation_used_for_grouping():
    assert normalise_label("  Développeur   WEB!! ") == "developpeur web"
    assert normalise_label("Straße") == normalise_label("STRASSE") == "strasse"
    assert normalise_label("ﬁnance-Manager") == "finance manager"
    assert normalise_label("Ærø/Œuvre") == "ærø œuvre"
    assert normalise_label("C++ & C#") == "c c"
    assert normalise_label("¡¿!!") == ""


# ---------------------------------------------------------------------------------------------
# Concept usage


def seed_usage(store):
    store.events(
        # O1: 15 in Q3 from two implementers, 10 in the previous period
        {"concept_uri": O1, "implementer_id": 1, "day": "2026-07-05", "count": 10},
        {"concept_uri": O1, "implementer_id": 2, "day": "2026-08-01", "count": 5,
         "language": "de"},
        {"concept_uri": O1, "implementer_id": 1, "day": "2026-06-15", "count": 10},
        # S1: 15 in Q3 (a tie with O1), nothing before
        {"concept_uri": S1, "implementer_id": 1, "day": "2026-07-10", "count": 15},
        # O2: dropped by the newest version
        {"concept_uri": O2, "implementer_id": 3, "day": "2026-09-30", "count": 3},
        # outside both periods
        {"concept_uri": S2, "implementer_id": 2, "day": "2026-10-01", "count": 100},
        {"concept_uri": S2, "implementer_id": 2, "day": "2026-03-30", "count": 100},
        # quarantined: not counted
        {"concept_uri": S3, "implementer_id": 2, "day": "2026-07-20", "count": 7,
         "status": "quarantined", "quarantine_reason": "unknown_concept"},
    )
    store.aggregate()


def test_most_used_concepts(store):
    seed_usage(store)
    result = query(store.settings, "most_used_concepts", Q3)
    assert result.columns == (
        "rank", "concept_uri", "concept_type", "label_en", "label", "status", "in_current",
        "last_release", "usage", "implementers", "events", "previous_usage", "change",
        "change_pct")
    assert result.tuples() == [
        (1, O1, "occupation", "software developer", "software developer", "released", True,
         "1.10.0", 15, 2, 2, 10, 5, 50.0),
        (1, S1, "skill", "Python (computer programming)", "Python (computer programming)",
         "released", True, "1.10.0", 15, 1, 1, 0, 15, None),
        # 1.10.0 dropped O2: still counted, marked, with the last release that held it
        (3, O2, "occupation", "data clerk", "data clerk", "absent", False, "1.0.0", 3, 1, 1,
         0, 3, None),
    ]


def test_most_used_concepts_labels_and_filters(store):
    seed_usage(store)
    german = query(store.settings, "most_used_concepts", Q3, label_language="de")
    assert rows(german, "concept_uri", "label") == [
        (O1, "Softwareentwickler"), (S1, "Python (Computerprogrammierung)"),
        (O2, "data clerk"),  # no German label: English
    ]
    assert rows(query(store.settings, "most_used_concepts", Q3, language="de"),
                "concept_uri", "usage", "previous_usage") == [(O1, 5, 0)]
    assert rows(query(store.settings, "most_used_concepts", Q3, country="DE"),
                "rank", "concept_uri", "usage", "change_pct") == [
        (1, S1, 15, None), (2, O1, 10, 0.0), (3, O2, 3, None)]
    assert rows(query(store.settings, "most_used_concepts", Q3, sector="pes",
                      concept_type="occupation"), "concept_uri", "usage") == [(O1, 5), (O2, 3)]
    assert query(store.settings, "most_used_concepts", Q3, context="cv").rows == []


def test_least_used_concepts_include_unused_ones(store):
    seed_usage(store)
    result = query(store.settings, "least_used_concepts", Q3)
    assert result.columns == ("concept_uri", "concept_type", "label_en", "label", "usage",
                              "implementers", "events")
    # every occupation and skill of the newest version (1.10.0: no O2, no ISCO group)
    assert rows(result, "concept_uri", "usage", "implementers") == [
        (S2, 0, 0), (S3, 0, 0), (S4, 0, 0), (O1, 15, 2), (S1, 15, 1)]
    assert rows(query(store.settings, "least_used_concepts", Q3, concept_type="occupation"),
                "concept_uri", "usage") == [(O1, 15)]
    assert rows(query(store.settings, "least_used_concepts", Q3, language="de"),
                "concept_uri", "usage")[-1] == (O1, 5)


def test_catalogue_coverage_against_the_newest_version(store):
    seed_usage(store)
    result = query(store.settings, "catalogue_coverage", Q3)
    assert result.columns == ("concept_type", "catalogue_version", "concepts", "used", "share")
    # O2 was used, but 1.10.0 dropped it: it does not count as coverage
    assert result.tuples() == [
        ("isco", "1.10.0", 1, 0, 0.0),
        ("occupation", "1.10.0", 1, 1, 1.0),
        ("skill", "1.10.0", 4, 1, 0.25),
    ]
    assert query(store.settings, "catalogue_coverage", Period.quarter("2027-Q1")).tuples()[2] \
        == ("skill", "1.10.0", 4, 0, 0.0)


def test_language_usage(store):
    seed_usage(store)
    result = query(store.settings, "language_usage", Q3)
    assert result.columns == ("language", "usage", "events", "implementers", "concepts",
                              "share")
    assert result.tuples() == [("en", 28, 3, 2, 3, 0.8485), ("de", 5, 1, 1, 1, 0.1515)]


# ---------------------------------------------------------------------------------------------
# Free text


def test_candidate_alt_labels(store):
    label = {"type": "label_added", "concept_uri": O1, "language": "de"}
    store.events(
        # equal to the alt label "Programmierer" once normalised: not a candidate
        {**label, "label": "programmierer!", "implementer_id": 1},
        # equal to the hidden label "Coder": not a candidate
        {**label, "label": "CODER", "implementer_id": 2},
        # three spellings of one candidate
        {**label, "label": "Software-Entwickler", "implementer_id": 1},
        {**label, "label": "software entwickler", "implementer_id": 2, "count": 2},
        {**label, "label": "SOFTWARE   ENTWICKLER", "implementer_id": 3},
        # ß and ss group together
        {**label, "label": "Straßenbauer", "implementer_id": 1},
        {**label, "label": "STRASSENBAUER", "implementer_id": 1},
        # the catalogue has no French label for O1: "new" cannot be judged
        {**label, "label": "Développeur", "language": "fr", "implementer_id": 1},
        {**label, "label": "developpeur", "language": "fr", "implementer_id": 2},
        # equal to S1's French preferred label, accents, case and punctuation aside
        {**label, "concept_uri": S1, "language": "fr",
         "label": "PYTHON programmation-informatique"},
        # a ligature
        {**label, "concept_uri": S2, "language": "en", "label": "ﬁnance manager"},
        {**label, "concept_uri": S2, "language": "en", "label": "Finance-Manager",
         "implementer_id": 2},
        # only punctuation: no label at all
        {**label, "label": "!!!"},
        # outside the period
        {**label, "label": "Entwickler", "day": "2026-06-30"},
    )
    store.aggregate()
    result = query(store.settings, "candidate_alt_labels", Q3)
    assert result.columns == (
        "concept_uri", "concept_type", "label_en", "label_concept", "language", "label",
        "label_norm", "spellings", "events", "usage", "implementers", "catalogue_has_language",
        "verdict")
    judged = "cannot judge: no catalogue label in this language"
    assert rows(result, "concept_uri", "language", "label", "label_norm", "spellings",
                "events", "usage", "implementers", "catalogue_has_language", "verdict") == [
        (O1, "de", "software entwickler", "software entwickler", 3, 3, 4, 3, True, "new"),
        (O1, "fr", "Développeur", "developpeur", 2, 2, 2, 2, False, judged),
        (S2, "en", "Finance-Manager", "finance manager", 2, 2, 2, 2, True, "new"),
        (O1, "de", "STRASSENBAUER", "strassenbauer", 2, 2, 2, 1, True, "new"),
    ]
    assert result.rows[0]["label_en"] == "software developer"
    assert rows(query(store.settings, "candidate_alt_labels", Q3, language="fr",
                      label_language="fr"), "label_concept") == [("software developer",)]
    # one concept: the same rows as the whole list holds for it
    for uri in (O1, S2, S3):
        assert query(store.settings, "candidate_alt_labels", Q3, concept_uri=uri).rows == [
            r for r in result.rows if r["concept_uri"] == uri]


def test_new_concept_proposals(store):
    proposal = {"type": "concept_proposed", "concept_uri": None, "concept_type": "occupation"}
    store.events(
        {**proposal, "label": "Prompt engineer", "implementer_id": 1, "concept_uri": O1},
        {**proposal, "label": "prompt-engineer", "implementer_id": 2},
        {**proposal, "label": "Prompt Engineer", "implementer_id": 3, "concept_uri": O2},
        {**proposal, "label": "Prompt  engineer!", "implementer_id": 3, "concept_uri": O1},
        {**proposal, "label": "Prompt engineer", "implementer_id": 1, "concept_type": "skill"},
        {**proposal, "label": "Prompt engineer", "language": "de", "implementer_id": 1},
    )
    store.aggregate()
    result = query(store.settings, "new_concept_proposals", Q3)
    assert result.columns == (
        "label_norm", "label", "concept_type", "language", "spellings", "implementers",
        "events", "usage", "broader_uris", "broader_labels_en")
    assert result.tuples() == [
        ("prompt engineer", "Prompt  engineer!", "occupation", "en", 4, 3, 4, 4, [O1, O2],
         ["software developer", "data clerk"]),
        ("prompt engineer", "Prompt engineer", "occupation", "de", 1, 1, 1, 1, [], []),
        ("prompt engineer", "Prompt engineer", "skill", "en", 1, 1, 1, 1, [], []),
    ]
    assert rows(query(store.settings, "new_concept_proposals", Q3, concept_type="skill",
                      country="DE"), "concept_type", "implementers") == [("skill", 1)]


def test_translation_feedback(store):
    feedback = {"type": "translation_feedback", "concept_uri": S1, "language": "de",
                "comment": "wrong term"}
    store.events(
        {**feedback, "label": "Python-Programmierung", "implementer_id": 1},
        {**feedback, "label": "python programmierung", "implementer_id": 2},
        {**feedback, "label": "Python Entwicklung", "implementer_id": 1, "count": 3},
        {**feedback, "label": "Développement", "language": "fr", "concept_uri": O1,
         "implementer_id": 3},
    )
    store.aggregate()
    result = query(store.settings, "translation_feedback", Q3)
    assert result.columns == (
        "language", "concept_uri", "concept_type", "label_en", "current_label",
        "suggested_label", "label_norm", "events", "usage", "implementers", "concept_events",
        "concept_implementers")
    assert result.tuples() == [
        ("de", S1, "skill", "Python (computer programming)", "Python (Computerprogrammierung)",
         "Python-Programmierung", "python programmierung", 2, 2, 2, 3, 2),
        ("de", S1, "skill", "Python (computer programming)", "Python (Computerprogrammierung)",
         "Python Entwicklung", "python entwicklung", 1, 3, 1, 3, 2),
        ("fr", O1, "occupation", "software developer", None, "Développement", "developpement",
         1, 1, 1, 1, 1),
    ]
    assert query(store.settings, "translation_feedback", Q3, concept_uri=S1).tuples() == (
        result.tuples()[:2])
    assert query(store.settings, "translation_feedback", Q3, concept_uri=S4).rows == []


# ---------------------------------------------------------------------------------------------
# Implementers and data quality


def test_implementer_uptake(store):
    store.implementer(4, "AT", "pes")  # never active
    store.events(
        {"implementer_id": 1, "count": 5},
        {"implementer_id": 1, "type": "label_added", "label": "x", "esco_version": "1.10.0"},
        {"implementer_id": 2, "esco_version": "1.2.0"},
        {"implementer_id": 3, "type": "concept_proposed", "concept_uri": None,
         "concept_type": "skill", "label": "y"},
        {"implementer_id": 3, "day": "2026-06-30"},  # outside the period
    )
    store.aggregate()
    result = query(store.settings, "implementer_uptake", Q3)
    assert result.columns == ("dimension", "value", "active_implementers", "events", "usage",
                              "events_per_implementer", "esco_versions")
    assert result.tuples() == [
        ("country", "DE", 2, 3, 7, 1.5, ["1.0.0", "1.10.0"]),
        ("country", "FR", 1, 1, 1, 1.0, ["1.2.0"]),
        ("sector", "job_portal", 1, 2, 6, 2.0, ["1.0.0", "1.10.0"]),
        ("sector", "pes", 2, 2, 2, 1.0, ["1.0.0", "1.2.0"]),
    ]
    assert rows(query(store.settings, "implementer_uptake", Q3, concept_type="skill"),
                "dimension", "value", "active_implementers") == [
        ("country", "DE", 1), ("sector", "pes", 1)]


def test_data_quality(store):
    store.outcome(1, "2026-07-01", "rejected", "language", 4)
    store.outcome(1, "2026-07-01", "rejected", "personal_data", 1)
    store.outcome(1, "2026-07-01", "accepted", "", 100)  # not a quality problem
    store.outcome(2, "2026-07-02", "quarantined", "unknown_concept", 3)
    store.outcome(2, "2026-09-01", "duplicate", "", 9)
    store.events(*[{"implementer_id": 2, "received_on": "2026-07-02", "status": "quarantined",
                    "quarantine_reason": "unknown_concept", "concept_uri": S3}] * 2)
    store.aggregate()
    result = query(store.settings, "data_quality", Q3)
    assert result.columns == ("received_on", "implementer_id", "implementer", "country",
                              "sector", "outcome", "reason", "events", "still_quarantined")
    assert result.tuples() == [
        (date(2026, 7, 1), 1, "Implementer 1", "DE", "job_portal", "rejected", "language", 4,
         None),
        (date(2026, 7, 1), 1, "Implementer 1", "DE", "job_portal", "rejected",
         "personal_data", 1, None),
        (date(2026, 7, 2), 2, "Implementer 2", "FR", "pes", "quarantined", "unknown_concept",
         3, 2),
    ]
    assert query(store.settings, "data_quality", Q3, implementer_id=2).tuples()[0][6] == \
        "unknown_concept"
    assert query(store.settings, "data_quality", Q3, country="FR").tuples() == \
        query(store.settings, "data_quality", Q3, implementer_id="2").tuples()
    with pytest.raises(ValueError, match="whole number"):
        query(store.settings, "data_quality", Q3, implementer_id="two")


def test_concept_status_becomes_absent_when_a_new_version_drops_it(store):
    store.events({"concept_uri": S3, "count": 2})
    store.aggregate()
    assert rows(query(store.settings, "most_used_concepts", Q3), "concept_uri", "status") == [
        (S3, "released")]
    store.catalogue("1.11.0", {"concepts": [(O1, "occupation"), (ISCO, "isco")],
                               "labels": [(O1, "en", "preferred", "software engineer")]})
    summary = store.aggregate()
    assert summary.catalogue_copied and summary.days_recomputed == 0
    result = query(store.settings, "most_used_concepts", Q3)
    # S3 keeps the labels of the newest version that held it
    assert rows(result, "concept_uri", "status", "label_en") == [(S3, "absent", "cook pasta")]
    assert query(store.settings, "catalogue_coverage", Q3).tuples() == [
        ("isco", "1.11.0", 1, 0, 0.0), ("occupation", "1.11.0", 1, 0, 0.0)]


def test_normalisation_agrees_with_its_definition_on_any_text():
    """The translate table gives what the definition says, character by character."""
    import random
    import unicodedata

    def by_definition(text: str) -> str:
        folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
        chars = [ch if ch.isalnum() else " " for ch in folded
                 if not unicodedata.category(ch).startswith("M")]
        return " ".join("".join(chars).split())

    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(chr(rng.choice((rng.randrange(0x20, 0x250), rng.randrange(0x300, 0x2FFF),
                                       rng.randrange(0x3000, 0x2FFFF))))
                       for _ in range(rng.randrange(0, 10)))
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            continue  # lone surrogates are not text
        assert normalise_label(text) == by_definition(text), repr(text)
