"""The quarterly export, compared as exact strings."""

from __future__ import annotations

import hashlib
import json

import pytest

from kpi.exports.csvfile import safe_text
from kpi.exports.quarterly import ExportError, export_quarter, parse_quarter
from tests.kpi_fixtures import O1, O2, S1, S2, S3, S4, standard_store


@pytest.fixture
def store(tmp_path):
    store = standard_store(tmp_path)
    store.implementer(4, "ES", "pes")
    store.implementer(5, "NL", "job_portal")
    store.implementer(6, "DE", "job_portal")
    q3, q2 = "2026-08-10", "2026-05-10"
    store.events(
        # usage in 2026-Q3
        {"implementer_id": 1, "concept_uri": O1, "count": 10, "day": q3},
        {"implementer_id": 2, "concept_uri": O1, "count": 3, "day": q3},
        {"implementer_id": 3, "concept_uri": O1, "count": 1, "day": q3},
        {"implementer_id": 1, "concept_uri": S1, "count": 2, "day": q3},
        {"implementer_id": 1, "concept_uri": S2, "count": 5, "day": q3},
        {"implementer_id": 2, "concept_uri": S2, "count": 1, "day": q3},
        {"implementer_id": 6, "type": "concept_proposed", "concept_uri": None,
         "concept_type": "skill", "label": "AI literacy", "day": q3},
        # the previous period
        {"implementer_id": 1, "concept_uri": O1, "count": 4, "day": q2},
        {"implementer_id": 1, "concept_uri": S2, "count": 10, "day": q2},
    )
    for implementer in (1, 2, 3):
        store.events(
            {"implementer_id": implementer, "type": "label_added", "concept_uri": O1,
             "language": "de", "label": "Entwickler", "day": q3},
            {"implementer_id": implementer, "type": "label_added", "concept_uri": O1,
             "language": "de", "label": "programmierer!", "day": q3},  # an alt label
            {"implementer_id": implementer, "type": "label_added", "concept_uri": O1,
             "language": "de", "label": "=HYPERLINK(\"x\")", "day": q3},
        )
    for implementer in (1, 2):  # only two implementers: never published
        store.events({"implementer_id": implementer, "type": "label_added", "concept_uri": O1,
                      "language": "de", "label": "Kodierer", "day": q3})
    for implementer, spelling in ((1, "Prompt engineering"), (2, "prompt-engineering"),
                                  (3, "Prompt Engineering")):
        store.events({"implementer_id": implementer, "type": "concept_proposed",
                      "concept_uri": S1, "concept_type": "skill", "label": spelling,
                      "day": q3})
    for implementer in (1, 2, 4):
        store.events({"implementer_id": implementer, "type": "translation_feedback",
                      "concept_uri": S1, "language": "fr", "label": "Python (programmation)",
                      "comment": "shorter", "day": q3})
    store.aggregate()
    return store


def read(folder, name: str) -> str:
    return (folder / name).read_text(encoding="utf-8")


def test_files_exactly(store, tmp_path):
    summary = export_quarter(store.settings, "2026-Q3", tmp_path / "out")
    folder = tmp_path / "out" / "2026-Q3"
    assert summary.folder == folder
    assert read(folder, "most_used_concepts.csv") == (
        "rank,concept_uri,label_en,concept_type,status,usage,implementers,previous_usage,"
        "change,change_pct\n"
        "1,http://data.europa.eu/esco/occupation/o1,software developer,occupation,released,"
        "14,3,<5,,\n"
        "2,http://data.europa.eu/esco/skill/s2,manage budgets,skill,released,6,<3,10,-4,-40.0\n"
        ",http://data.europa.eu/esco/skill/s1,Python (computer programming),skill,released,"
        "<5,<3,0,,\n"
    )
    assert read(folder, "least_used_concepts.csv") == (
        "concept_uri,label_en,concept_type,usage,implementers\n"
        "http://data.europa.eu/esco/skill/s3,cook pasta,skill,0,0\n"
        "http://data.europa.eu/esco/skill/s4,use spreadsheets,skill,0,0\n"
        "http://data.europa.eu/esco/skill/s1,Python (computer programming),skill,<5,<3\n"
        "http://data.europa.eu/esco/skill/s2,manage budgets,skill,6,<3\n"
        "http://data.europa.eu/esco/occupation/o1,software developer,occupation,14,3\n"
    )
    assert read(folder, "catalogue_coverage.csv") == (
        "concept_type,catalogue_version,concepts,used,share\n"
        "isco,1.10.0,1,0,0.0000\n"
        "occupation,1.10.0,1,<5,\n"
        "skill,1.10.0,4,<5,\n"
    )
    candidates = read(folder, "candidate_alt_labels.csv").splitlines()
    assert candidates[0] == ("concept_uri,label_en,concept_type,language,label,spellings,events,"
                             "usage,implementers,catalogue_has_language,verdict")
    assert sorted(candidates[1:]) == [
        # the label that starts a formula is published with a leading quote
        "http://data.europa.eu/esco/occupation/o1,software developer,occupation,de,"
        '"\'=HYPERLINK(""x"")",1,<5,<5,3,true,new',
        "http://data.europa.eu/esco/occupation/o1,software developer,occupation,de,Entwickler,"
        "1,<5,<5,3,true,new",
    ]
    assert read(folder, "new_concept_proposals.csv") == (
        "label,label_norm,concept_type,language,spellings,implementers,events,usage,"
        "broader_uris,broader_labels_en\n"
        "Prompt Engineering,prompt engineering,skill,en,3,3,<5,<5,"
        "http://data.europa.eu/esco/skill/s1,Python (computer programming)\n"
    )
    assert read(folder, "translation_feedback.csv") == (
        "language,concept_uri,label_en,concept_type,current_label,suggested_label,events,usage,"
        "implementers,concept_events,concept_implementers\n"
        "fr,http://data.europa.eu/esco/skill/s1,Python (computer programming),skill,"
        "Python (programmation informatique),Python (programmation),<5,<5,3,<5,3\n"
    )
    # Active: 1, 3, 6 (DE), 2 (FR), 4 (ES); 5 sent nothing. FR and ES fold into "other",
    # which then has 2 implementers: DE folds too (else "other" would show two portals'
    # figures, and any total minus DE would give them away). The same for the sectors.
    assert read(folder, "implementer_uptake.csv") == (
        "dimension,value,active_implementers,events,usage,events_per_implementer,esco_versions\n"
        "country,other,5,24,40,4.8,1.0.0\n"
        "sector,other,5,24,40,4.8,1.0.0\n"
    )
    assert read(folder, "language_usage.csv") == (
        "language,usage,events,implementers,concepts,share\n"
        "en,22,6,3,<5,1.0000\n"  # every count that comes from events is thresholded
    )


def test_manifest_and_byte_identical_rerun(store, tmp_path):
    export_quarter(store.settings, "2026-Q3", tmp_path / "a")
    export_quarter(store.settings, "2026-Q3", tmp_path / "b")
    first, second = tmp_path / "a" / "2026-Q3", tmp_path / "b" / "2026-Q3"
    names = sorted(p.name for p in first.iterdir())
    assert names == ["candidate_alt_labels.csv", "catalogue_coverage.csv", "collection_usage.csv",
                     "concept_trends.csv", "implementer_uptake.csv", "language_usage.csv",
                     "least_used_concepts.csv", "manifest.json", "most_used_concepts.csv",
                     "new_concept_proposals.csv", "review_summary.csv",
                     "translation_feedback.csv"]
    manifest = json.loads(read(first, "manifest.json"))
    assert manifest["quarter"] == "2026-Q3"
    assert (manifest["start"], manifest["end"]) == ("2026-07-01", "2026-09-30")
    assert manifest["catalogue_version"] == "1.10.0"
    assert manifest["thresholds"] == {"export_min_implementers": 3, "export_min_count": 5}
    for name in names:
        if name == "manifest.json":
            continue
        body = (first / name).read_bytes()
        assert body == (second / name).read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(body).hexdigest()
        assert manifest["files"][name]["rows"] == body.count(b"\n") - 1


def test_no_text_cell_starts_a_formula(store, tmp_path):
    export_quarter(store.settings, "2026-Q3", tmp_path)
    import csv

    for path in (tmp_path / "2026-Q3").glob("*.csv"):
        for row in csv.reader(path.open(encoding="utf-8")):
            for cell in row:
                if cell and not cell.lstrip("-").replace(".", "").isdigit():
                    assert not cell.startswith(("=", "+", "-", "@")), (path.name, cell)


def test_thresholds_come_from_settings(store, tmp_path):
    settings = store.settings.replace(privacy__export_min_implementers=4,
                                      privacy__export_min_count=2)
    export_quarter(settings, "2026-Q3", tmp_path)
    folder = tmp_path / "2026-Q3"
    assert read(folder, "candidate_alt_labels.csv").count("\n") == 1  # header only
    most_used = read(folder, "most_used_concepts.csv").splitlines()
    assert most_used[1] == ("1,http://data.europa.eu/esco/occupation/o1,software developer,"
                            "occupation,released,14,<4,4,10,250.0")
    assert most_used[3] == ("3,http://data.europa.eu/esco/skill/s1,Python (computer programming),"
                            "skill,released,2,<4,0,2,")


@pytest.mark.parametrize("quarter", ["2026-Q5", "2026Q3", "26-Q1", "2026-q3", "", "Q3-2026"])
def test_malformed_quarter(quarter):
    with pytest.raises(ExportError, match="quarter must look like 2026-Q3"):
        parse_quarter(quarter)


def test_quarter_without_data(store, tmp_path):
    with pytest.raises(ExportError, match="no data for 2025-Q1"):
        export_quarter(store.settings, "2025-Q1", tmp_path)
    assert not (tmp_path / "2025-Q1").exists()


def test_nothing_aggregated_yet(tmp_path):
    from tests.kpi_fixtures import make_store

    empty = make_store(tmp_path)
    with pytest.raises(ExportError):
        export_quarter(empty.settings, "2026-Q3", tmp_path / "out")


@pytest.mark.parametrize(("text", "safe"), [
    ("=1+1", "'=1+1"), ("+49", "'+49"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("plain", "plain"), (None, ""), ("a=b", "a=b"),
    ("\rx", "'\rx"), ("-1", "'-1"),
])
def test_safe_text(text, safe):
    assert safe_text(text) == safe


def test_review_summary_file(store, tmp_path):
    from kpi.review.decisions import decide, list_items
    from kpi.store.registry import add_user

    add_user(store.engine, "editor", "a long enough password", role="reviewer")
    items = {(i.kind, i.label): i.item_id for i in list_items(store.settings, store.engine)}
    decide(store.settings, store.engine, [items[("label", "Entwickler")]], "accept", "editor")
    decide(store.settings, store.engine, [items[("label", "Kodierer")]], "reject", "editor",
           reason="too_specific")
    export_quarter(store.settings, "2026-Q3", tmp_path / "out")
    folder = tmp_path / "out" / "2026-Q3"
    # every count is below 5 here: shown as <5, and the medians over them left blank
    assert read(folder, "review_summary.csv") == (
        "kind,language,open,accepted,rejected,deferred,released,covered,days_to_decision,"
        "days_to_release\n"
        "label,de,<5,<5,<5,0,0,0,,\n"
        "proposal,en,<5,0,0,0,0,0,,\n"
        "translation,fr,<5,0,0,0,0,0,,\n"
    )
    manifest = json.loads(read(folder, "manifest.json"))
    assert manifest["files"]["review_summary.csv"]["rows"] == 3


def test_review_summary_disclosure():
    from kpi.exports.quarterly import Thresholds, _review_summary

    rows = [
        {"kind": "label", "language": "de", "open": 40, "accepted": 6, "rejected": 3,
         "deferred": 0, "released": 2, "covered": 0, "days_to_decision": 12.5,
         "days_to_release": 30.0},
        {"kind": "proposal", "language": "en", "open": 7, "accepted": 1, "rejected": 1,
         "deferred": 1, "released": 0, "covered": 5, "days_to_decision": 3.0,
         "days_to_release": None},
    ]
    header, out = _review_summary(rows, Thresholds(3, 5))
    assert out == [
        # 11 decided items: their median is shown; 2 released: theirs is not
        ["label", "de", "40", "6", "<5", "0", "<5", "0", "12.5", ""],
        ["proposal", "en", "7", "<5", "<5", "<5", "0", "5", "", ""],
    ]


# ---------------------------------------------------------------------------------------------
# collection_usage.csv


@pytest.fixture
def collection_store(tmp_path):
    """Collections over the small catalogue (S2 is green and digital; O2, a research
    occupation, is not in the newest release) and a quarter of uses in four countries."""
    from sqlalchemy import insert

    from kpi.store.db import concept_collections

    store = standard_store(tmp_path)
    store.implementer(4, "ES", "pes")
    store.implementer(5, "NL", "job_portal")
    store.implementer(6, "DE", "job_portal")
    with store.engine.begin() as conn:
        conn.execute(insert(concept_collections), [
            {"version": "1.10.0", "collection": name, "uri": uri}
            for name, uris in (("green", (S1, S2)), ("digital", (S2, S4)),
                               ("research_occupations", (O1, O2))) for uri in uris])
    q3 = "2026-08-10"
    store.events(*({"implementer_id": i, "concept_uri": uri, "count": n, "day": q3}
                   for i, uri, n in ((1, S1, 20), (1, S2, 3), (1, O1, 7), (3, S2, 4),
                                     (3, S3, 10), (6, S3, 6), (6, O1, 2), (2, S1, 2),
                                     (2, S3, 5), (4, S4, 1), (5, O1, 5))))
    store.aggregate()
    return store


def test_collection_usage_file(collection_store, tmp_path):
    export_quarter(collection_store.settings, "2026-Q3", tmp_path / "a")
    export_quarter(collection_store.settings, "2026-Q3", tmp_path / "b")
    folder = tmp_path / "a" / "2026-Q3"
    # Skill usage: DE 43 (implementers 1, 3, 6), FR 7 (2), ES 1 (4); 51 in all. FR and ES
    # fold into other (NL used no skill: it adds nothing), which then holds 2 implementers:
    # DE folds too, else all minus DE would show FR's and ES's figures. For the research
    # occupations DE has 2 implementers using occupations and NL 1: both fold. Concepts used
    # (2 or 1) read <5 and hide the coverage; other's concepts used cannot be added up over
    # its countries and are left blank.
    assert read(folder, "collection_usage.csv") == (
        "collection,country,base_type,usage,base_usage,share,implementers,base_implementers,"
        "concepts,used,coverage\n"
        "digital,all,skill,8,51,0.1569,3,5,2,<5,\n"
        "digital,other,skill,8,51,0.1569,3,5,2,,\n"
        "green,all,skill,29,51,0.5686,3,5,2,<5,\n"
        "green,other,skill,29,51,0.5686,3,5,2,,\n"
        "research_occupations,all,occupation,14,14,1.0000,3,3,1,<5,\n"
        "research_occupations,other,occupation,14,14,1.0000,3,3,1,,\n"
    )
    body = (folder / "collection_usage.csv").read_bytes()
    assert body == (tmp_path / "b" / "2026-Q3" / "collection_usage.csv").read_bytes()
    manifest = json.loads(read(folder, "manifest.json"))
    assert manifest["files"]["collection_usage.csv"] == {
        "rows": 6, "sha256": hashlib.sha256(body).hexdigest()}


def test_collection_usage_thresholds_come_from_settings(collection_store, tmp_path):
    settings = collection_store.settings.replace(privacy__export_min_implementers=2,
                                                 privacy__export_min_count=2)
    export_quarter(settings, "2026-Q3", tmp_path)
    lines = read(tmp_path / "2026-Q3", "collection_usage.csv").splitlines()
    # FR and ES, one implementer each, fold into an other of 2: enough now, DE stays shown
    assert lines[4:7] == ["green,all,skill,29,51,0.5686,3,5,2,2,1.0000",
                          "green,DE,skill,27,43,0.6279,2,3,2,2,1.0000",
                          "green,other,skill,2,8,0.2500,<2,2,2,,"]
    # for the research occupations NL alone (1 implementer) folds: too few, so DE (2) too
    assert lines[7:] == ["research_occupations,all,occupation,14,14,1.0000,3,3,1,<2,",
                         "research_occupations,other,occupation,14,14,1.0000,3,3,1,,"]
