"""The review loop (kpi.review): items with stable ids and evidence, decisions in an
append-only audit trail, statuses, reconciliation with a newer release, the hand-over files and
the summary; on real SQLite and PostgreSQL stores, with real aggregation, and through the real
command line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from rdflib import SKOS, Graph, Literal, URIRef
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from esco_kpi.cli import main
from kpi.review import ReviewError
from kpi.review.decisions import STATUSES, decide, list_items, queue, trail
from kpi.review.handover import changes_graph, export_changes, proposal_uri
from kpi.review.items import evidence_table, item_id, item_keys_table
from kpi.review.reconcile import reconcile
from kpi.review.summary import review_summary
from kpi.settings import Settings
from kpi.store.db import init_store, make_engine
from kpi.store.registry import add_user, user_role
from tests.conftest import write_config
from tests.kpi_fixtures import (
    CATALOGUE_V2,
    O1,
    OCC,
    S1,
    S2,
    Store,
    pg_database,
    standard_store,
    store_on,
)

O3 = OCC + "o3"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> Iterator[Store]:
    """The standard store (three implementers, catalogue 1.0.0 and 1.10.0) on each backend,
    with a reviewer `eva` and a viewer `vic`."""
    with store_on(request.param, lambda url: standard_store(tmp_path, url)) as store:
        add_user(store.engine, "eva", "password-eva", role="reviewer")
        add_user(store.engine, "vic", "password-vic")
        yield store


LABEL = {"type": "label_added", "concept_uri": O1, "language": "de"}
PROPOSAL = {"type": "concept_proposed", "concept_uri": O1, "concept_type": "occupation",
            "language": "en"}
FEEDBACK = {"type": "translation_feedback", "concept_uri": S1, "language": "de"}

L_ID = item_id("label", O1, "de", "software entwickler")
P_ID = item_id("proposal", "occupation", "en", "prompt engineer")
T_ID = item_id("translation", S1, "de", "python programmierung")


def seed(store: Store) -> None:
    store.events(
        {**LABEL, "label": "Software-Entwickler", "implementer_id": 1, "day": "2026-07-02"},
        {**LABEL, "label": "software entwickler", "implementer_id": 2, "day": "2026-08-10",
         "count": 3},
        {**LABEL, "label": "programmierer!", "implementer_id": 3},  # the catalogue's alt label
        {**PROPOSAL, "label": "Prompt engineer", "implementer_id": 1},
        {**PROPOSAL, "label": "prompt-engineer", "implementer_id": 2, "concept_uri": None},
        {**PROPOSAL, "label": "Prompt Engineer", "implementer_id": 3, "day": "2026-07-20"},
        {**FEEDBACK, "label": "Python-Programmierung", "implementer_id": 2},
        {**LABEL, "concept_uri": S2, "language": "en", "label": "=budget plans",
         "implementer_id": 1},
    )
    store.aggregate()


def by_id(store: Store, **filters) -> dict[str, dict]:
    return {i.item_id: i.public() | {"item": i}
            for i in list_items(store.settings, store.engine, **filters)}


def rebuild_warehouse(store: Store) -> None:
    shutil.rmtree(store.settings.warehouse_path)
    assert store.aggregate().events_read > 0


# ---------------------------------------------------------------------------------------------
# Items


def test_items_have_stable_ids_and_their_evidence(store):
    seed(store)
    items = by_id(store)
    budget = item_id("label", S2, "en", "budget plans")
    assert list(items) == [P_ID, L_ID, budget, T_ID]  # implementers, events, then id
    assert L_ID.startswith("L-") and P_ID.startswith("P-") and T_ID.startswith("T-")
    label = items[L_ID]
    assert {k: label[k] for k in ("kind", "status", "concept_uri", "concept_type", "language",
                                  "implementers", "events", "first_seen", "last_seen")} == {
        "kind": "label", "status": "open", "concept_uri": O1, "concept_type": "occupation",
        "language": "de", "implementers": 2, "events": 2, "first_seen": "2026-07-02",
        "last_seen": "2026-08-10"}
    assert label["item"].countries == 2 and label["item"].spellings == 2
    assert label["label"] == "software entwickler"  # the most used spelling (count 3)
    proposal = items[P_ID]
    assert (proposal["implementers"], proposal["events"], proposal["concept_uri"]) == (3, 3, None)
    assert proposal["item"].broader_uris == [O1] and proposal["item"].countries == 2
    assert items[T_ID]["item"].current_label == "Python (Computerprogrammierung)"
    # the catalogue's own label is no candidate
    assert item_id("label", O1, "de", "programmierer") not in items
    assert set(by_id(store, kind="label")) == {L_ID, budget}
    assert set(by_id(store, language="de")) == {L_ID, T_ID}

    # more events, another quarter: the same ids, the evidence grows
    store.events({**LABEL, "label": "Software Entwickler", "implementer_id": 3,
                  "day": "2026-10-05"})
    store.aggregate()
    grown = by_id(store)
    assert set(grown) == set(items)
    assert (grown[L_ID]["implementers"], grown[L_ID]["last_seen"]) == (3, "2026-10-05")
    # a warehouse rebuilt from the events: the same ids and evidence
    rebuild_warehouse(store)
    assert {k: v["item"] for k, v in by_id(store).items()} == {
        k: v["item"] for k, v in grown.items()}


# ---------------------------------------------------------------------------------------------
# Decisions and the audit trail


def test_a_decision_is_audited_and_survives_a_rebuild(store):
    seed(store)
    [item] = decide(store.settings, store.engine, [L_ID], "accept", "eva", note="good one")
    assert item.status == "accepted"
    decide(store.settings, store.engine, [P_ID, T_ID], "reject", "eva", reason="duplicate")
    rows = trail(store.engine)
    assert [(r["item_id"], r["decision"], r["status"], r["decided_by"], r["reason"])
            for r in rows] == [(L_ID, "accept", "accepted", "eva", None),
                               (P_ID, "reject", "rejected", "eva", "duplicate"),
                               (T_ID, "reject", "rejected", "eva", "duplicate")]
    assert rows[0]["note"] == "good one" and rows[0]["implementers"] == 2
    assert json.loads(rows[0]["evidence"])["first_seen"] == "2026-07-02"
    rebuild_warehouse(store)
    statuses = {k: v["status"] for k, v in by_id(store).items()}
    assert (statuses[L_ID], statuses[P_ID], statuses[T_ID]) == (
        "accepted", "rejected", "rejected")
    assert set(by_id(store, status="rejected")) == {P_ID, T_ID}
    # a changed mind is a new row; the old one stays
    decide(store.settings, store.engine, [P_ID], "accept", "eva")
    assert by_id(store)[P_ID]["status"] == "accepted"
    assert len(trail(store.engine)) == 4


def test_the_audit_trail_refuses_update_and_delete(store):
    seed(store)
    decide(store.settings, store.engine, [L_ID], "accept", "eva")
    for statement in ("update review_decisions set status = 'rejected'",
                      "update review_decisions set note = 'changed' where id > 0",
                      "delete from review_decisions"):
        with pytest.raises(SQLAlchemyError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    if store.engine.dialect.name == "postgresql":
        with pytest.raises(SQLAlchemyError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text("truncate review_decisions"))
    [row] = trail(store.engine)
    assert (row["status"], row["note"]) == ("accepted", None)
    init_store(store.engine)  # running it again keeps the triggers (and creates none twice)
    with pytest.raises(SQLAlchemyError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("delete from review_decisions"))


REFUSALS = [
    (([L_ID], "reject", "eva"), "a rejection needs a reason"),
    (([L_ID], "reject", "eva", "because"), "reason must be one of"),
    (([L_ID], "accept", "eva", "duplicate"), "with --decision reject only"),
    (([L_ID], "accept", "vic"), "'vic' is a viewer, not a reviewer"),
    (([L_ID], "accept", "nobody"), "no user named 'nobody'"),
    (([L_ID], "accept", "system"), "kept for reconciliation"),
    (([L_ID, "L-0000000000000000"], "accept", "eva"), "no review item 'L-0000000000000000'"),
    (([L_ID], "approve", "eva"), "decision must be one of"),
    (([L_ID], "reopen", "eva"), "is already open"),
    (([], "accept", "eva"), "at least one item id"),
]


def test_refused_decisions_write_nothing(store):
    seed(store)
    for (ids, decision, by, *reason), message in REFUSALS:
        with pytest.raises(ReviewError, match=message):
            decide(store.settings, store.engine, ids, decision, by,
                   reason=reason[0] if reason else None)
    # all or none: one item that cannot take the decision stops the others
    decide(store.settings, store.engine, [T_ID], "accept", "eva")
    with pytest.raises(ReviewError, match=f"{T_ID} is already accepted"):
        decide(store.settings, store.engine, [L_ID, T_ID], "accept", "eva")
    assert [r["item_id"] for r in trail(store.engine)] == [T_ID]


def test_a_decision_taken_earlier_keeps_its_date(store):
    from datetime import UTC, datetime, timedelta

    seed(store)
    items = {i.item_id: i for i in list_items(store.settings, store.engine)}
    first = items[L_ID].first_seen
    earlier = datetime(first.year, first.month, first.day, 9, 30, tzinfo=UTC) + timedelta(days=3)
    decide(store.settings, store.engine, [L_ID], "accept", "eva", decided_at=earlier)
    assert trail(store.engine)[-1]["decided_at"].replace(tzinfo=UTC) == earlier
    later = datetime.now(UTC) + timedelta(hours=1)
    for when, message in ((later, "is in the future"),
                          (earlier - timedelta(days=4), "is before item .* was first seen"),
                          (earlier.replace(tzinfo=None), "needs a time zone")):
        with pytest.raises(ReviewError, match=message):
            decide(store.settings, store.engine, [T_ID], "accept", "eva", decided_at=when)
    assert [r["item_id"] for r in trail(store.engine)] == [L_ID]


def test_deferred_reopens_and_rejected_is_marked_when_more_implementers_send_it(store):
    seed(store)
    decide(store.settings, store.engine, [L_ID], "defer", "eva")
    decide(store.settings, store.engine, [T_ID], "reject", "eva", reason="not_a_label")
    with pytest.raises(ReviewError, match="already deferred"):
        decide(store.settings, store.engine, [L_ID], "defer", "eva")
    store.events({**LABEL, "label": "Software-Entwickler", "implementer_id": 1,
                  "day": "2026-09-01"},  # an implementer it had already: still deferred
                 {**FEEDBACK, "label": "Python Programmierung", "implementer_id": 3})
    store.aggregate()
    items = by_id(store)
    assert items[L_ID]["status"] == "deferred"
    assert (items[T_ID]["status"], items[T_ID]["grown_since_decision"]) == ("rejected", True)
    store.events({**LABEL, "label": "Software-Entwickler", "implementer_id": 3})
    store.aggregate()
    items = by_id(store)
    assert items[L_ID]["status"] == "open"  # reopened: three implementers now, two then
    decide(store.settings, store.engine, [L_ID], "accept", "eva")
    decide(store.settings, store.engine, [L_ID], "reopen", "eva")
    assert by_id(store)[L_ID]["status"] == "open"


# ---------------------------------------------------------------------------------------------
# Reconciliation


CATALOGUE_V3 = {
    "concepts": [*CATALOGUE_V2["concepts"], (O3, "occupation")],
    "labels": [
        *CATALOGUE_V2["labels"],
        (O1, "de", "alt", "Software-Entwickler"),  # the accepted label
        (O3, "en", "preferred", "prompt engineer"),  # the accepted proposal
        (S1, "de", "hidden", "Python Programmierung"),  # a hidden label is no translation
    ],
}


def test_reconciliation_with_a_newer_release(store):
    seed(store)
    budget = item_id("label", S2, "en", "budget plans")
    decide(store.settings, store.engine, [L_ID, P_ID], "accept", "eva")
    decide(store.settings, store.engine, [budget], "defer", "eva")
    assert reconcile(store.settings, store.engine).sentence() == (
        "0 accepted suggestions are in 1.10.0, 0 open ones were covered.")
    v3 = {**CATALOGUE_V3, "labels": [*CATALOGUE_V3["labels"],
                                     (S2, "en", "alt", "budget plans")]}
    store.catalogue("1.11.0", v3)
    summary = reconcile(store.settings, store.engine)
    assert (summary.release, summary.released, summary.covered) == ("1.11.0", 2, 1)
    assert summary.sentence() == (
        "2 accepted suggestions are in 1.11.0, 1 open one was covered.")
    items = by_id(store)
    assert {k: (items[k]["status"], items[k]["in_release"], items[k]["released_as"])
            for k in (L_ID, P_ID, budget, T_ID)} == {
        L_ID: ("released", "1.11.0", None), P_ID: ("released", "1.11.0", O3),
        budget: ("covered", "1.11.0", None), T_ID: ("open", None, None)}
    system = [r for r in trail(store.engine) if r["decided_by"] == "system"]
    assert sorted((r["item_id"], r["decision"]) for r in system) == sorted(
        [(L_ID, "release"), (P_ID, "release"), (budget, "cover")])
    assert reconcile(store.settings, store.engine).sentence() == (
        "0 accepted suggestions are in 1.11.0, 0 open ones were covered.")
    # once the warehouse knows 1.11.0, the released label is among the concept's labels, and
    # still listed, as released
    store.aggregate()
    assert by_id(store)[L_ID]["status"] == "released"
    with pytest.raises(ReviewError, match="is released; reopen it first"):
        decide(store.settings, store.engine, [L_ID], "reject", "eva", reason="other")


# ---------------------------------------------------------------------------------------------
# Hand-over and summary


def test_handover_files(store, tmp_path):
    seed(store)
    budget = item_id("label", S2, "en", "budget plans")
    decide(store.settings, store.engine, [L_ID, P_ID, T_ID, budget], "accept", "eva",
           note="-checked")
    out = tmp_path / "handover"
    summary = export_changes(store.settings, store.engine, out)
    assert summary.items == 4
    assert sorted(p.name for p in out.iterdir()) == ["changes.csv", "changes.ttl",
                                                     "manifest.json"]
    rows = list(csv.DictReader(io.StringIO((out / "changes.csv").read_text())))
    # by implementers, then events, then id
    assert [r["item_id"] for r in rows] == [P_ID, L_ID, budget, T_ID]
    assert {r["item_id"]: r["action"] for r in rows} == {
        P_ID: "add_concept", L_ID: "add_alt_label", T_ID: "review_translation",
        budget: "add_alt_label"}
    first = rows[0]
    assert (first["decision"], first["reviewer"], first["reason"], first["status"]) == (
        "accept", "eva", "", "accepted")
    assert first["note"] == "'-checked"  # the formula rule
    assert rows[2]["label"] == "'=budget plans"

    graph = Graph().parse(out / "changes.ttl", format="turtle")
    items = [i for i in list_items(store.settings, store.engine, status="accepted")]
    assert set(graph) == set(changes_graph(items))
    concept = proposal_uri(P_ID)
    assert (URIRef(O1), SKOS.altLabel, Literal("software entwickler", lang="de")) in graph
    # the most used spelling; ties: alphabetical
    assert (concept, SKOS.prefLabel, Literal("Prompt Engineer", lang="en")) in graph
    assert (concept, SKOS.broader, URIRef(O1)) in graph
    assert (concept, SKOS.inScheme, URIRef("urn:esco-kpi:proposals")) in graph
    assert any(s == URIRef(S1) and p == SKOS.editorialNote for s, p, _ in graph)

    manifest = json.loads((out / "manifest.json").read_text())
    for name in ("changes.csv", "changes.ttl"):
        assert manifest["files"][name]["sha256"] == hashlib.sha256(
            (out / name).read_bytes()).hexdigest()
    assert manifest["files"]["changes.ttl"]["triples"] == len(graph)
    for name in ("changes.csv", "changes.ttl", "manifest.json"):
        assert "Implementer" not in (out / name).read_text()  # no implementer named
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    export_changes(store.settings, store.engine, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # byte-identical

    rejected = export_changes(store.settings, store.engine, tmp_path / "none", "rejected")
    assert (rejected.items, rejected.triples) == (0, 0)


def test_summary(store):
    seed(store)
    decide(store.settings, store.engine, [L_ID, P_ID], "accept", "eva")
    decide(store.settings, store.engine, [T_ID], "defer", "eva")
    store.catalogue("1.11.0", CATALOGUE_V3)
    reconcile(store.settings, store.engine)
    rows = {(r["kind"], r["language"]): r for r in review_summary(store.settings, store.engine)}
    assert set(rows) == {("label", "de"), ("label", "en"), ("proposal", "en"),
                         ("translation", "de")}
    label = rows[("label", "de")]
    assert (label["open"], label["accepted"], label["released"]) == (0, 0, 1)
    assert label["days_to_release"] == 0
    assert label["days_to_decision"] > 100  # first seen in July 2026
    assert rows[("translation", "de")]["deferred"] == 1
    assert rows[("label", "en")]["open"] == 1
    assert rows[("label", "en")]["days_to_decision"] is None


def test_the_sql_item_ids_are_the_python_ones(store):
    seed(store)
    store.events({**LABEL, "label": "Straßenbahnführerin", "implementer_id": 1},
                 {**PROPOSAL, "label": "Ingénieur·e IA", "language": "fr", "implementer_id": 2})
    store.aggregate()
    table = evidence_table(store.settings)
    assert table.num_rows == 7
    for row in table.to_pylist():
        concept = row["concept_type"] if row["kind"] == "proposal" else row["concept_uri"]
        assert row["item_id"] == item_id(row["kind"], concept, row["language"],
                                         row["label_norm"])
    # the items without their evidence (what the review loop's figures read of open items)
    keys = ["item_id", "kind", "language", "in_catalogue"]
    assert sorted(item_keys_table(store.settings).select(keys).to_pylist(), key=repr) == sorted(
        table.select(keys).to_pylist(), key=repr)
    assert any(table.column("in_catalogue").to_pylist())
    # the evidence of some label_norms alone (what the decided items need)
    norms = {row["label_norm"] for row in table.to_pylist()[:3]}
    assert sorted(evidence_table(store.settings, label_norms=norms).to_pylist(), key=repr) == (
        sorted([r for r in table.to_pylist() if r["label_norm"] in norms], key=repr))
    assert evidence_table(store.settings, label_norms=[]).num_rows == 0


def test_kept_evidence_is_never_changed_by_statuses_or_decisions(store):
    """The dashboard keeps the evidence table and a queue between requests and hands the
    queue's items to decide(): decisions change copies, never the kept items."""
    seed(store)
    known = evidence_table(store.settings)
    first = queue(store.settings, store.engine, known=known)
    done = decide(store.settings, store.engine, [L_ID], "accept", "eva", items=first.items())
    assert done[0].status == "accepted"
    assert first.items([L_ID])[0].status == "open"  # the queue as it was when it was made
    again = queue(store.settings, store.engine, known=known)
    assert [i.status for i in again.items([L_ID, P_ID])] == ["accepted", "open"]
    decide(store.settings, store.engine, [L_ID], "reject", "eva", reason="other",
           items=again.items())
    assert again.items([L_ID])[0].status == "accepted"
    assert queue(store.settings, store.engine, known=known).items([L_ID])[0].status == "rejected"


def test_the_queue_makes_items_only_for_the_ids_asked(store):
    seed(store)
    decide(store.settings, store.engine, [L_ID], "accept", "eva")
    every = queue(store.settings, store.engine)
    listed = list_items(store.settings, store.engine)
    assert every.ids() == [i.item_id for i in listed] and len(every) == len(listed)
    last, first = every.ids()[-1], every.ids()[0]
    assert [i.item_id for i in every.items([last, "L-0000000000000000", first])] == [last, first]
    assert every.items([L_ID])[0].status == "accepted"
    accepted = queue(store.settings, store.engine, status="accepted")
    assert accepted.ids() == [L_ID]
    opened = queue(store.settings, store.engine, status="open", kind="proposal")
    assert opened.ids() == [P_ID]
    assert len(every.where(pa.array([i == P_ID for i in every.ids()]))) == 1
    # the whole queue's Items, by their evidence rows' place: the same Items, decided ones
    # shared, as by their ids, for every head of the queue and a queue in another order
    assert every.ids()[0] != L_ID and L_ID in every.ids()
    for count in (None, 0, 1, 2, len(every), len(every) + 5):
        ids = every.ids()[:count]
        assert every.head(count).items() == every.items(ids)
        assert [i.item_id for i in every.head(count).items()] == ids
    assert next(i for i in every.items() if i.item_id == L_ID) is every.decided[L_ID]
    reordered = every.where(pa.array([i != first for i in every.ids()]))
    assert reordered.items() == every.items(every.ids()[1:])


def test_the_summary_agrees_with_the_items_statuses(store):
    """review_summary counts statuses from the evidence table and the decided items alone;
    the same figures as counting list_items' statuses one by one, whatever the decisions."""
    seed(store)
    decide(store.settings, store.engine, [P_ID], "accept", "eva")
    decide(store.settings, store.engine, [L_ID], "reject", "eva", reason="out_of_scope")
    decide(store.settings, store.engine, [T_ID], "defer", "eva")
    # more implementers since: the rejected label is marked grown, the deferred one reopens
    store.events({**LABEL, "label": "Software Entwickler", "implementer_id": 3},
                 {**FEEDBACK, "label": "Python Programmierung", "implementer_id": 3})
    store.aggregate()
    for kind, language in ((None, None), ("label", None), (None, "de"), ("proposal", "en")):
        items = list_items(store.settings, store.engine, kind=kind, language=language)
        expected: dict[tuple[str, str], dict[str, int]] = {}
        for i in items:
            counts = expected.setdefault((i.kind, i.language), {})
            counts[i.status] = counts.get(i.status, 0) + 1
        rows = review_summary(store.settings, store.engine, kind=kind, language=language)
        got = {(r["kind"], r["language"]): {s: r[s] for s in STATUSES if r[s]} for r in rows}
        assert got == expected
        # from the items' keys and the decided items' evidence, or from the whole evidence:
        # the same rows, the medians too
        assert rows == review_summary(store.settings, store.engine, kind=kind,
                                      language=language, known=evidence_table(store.settings))
        overall = review_summary(store.settings, store.engine, kind=kind, language=language,
                                 overall=True)
        assert [r["open"] for r in overall] == [sum(i.status == "open" for i in items)]
    statuses = {i.item_id: i.status for i in list_items(store.settings, store.engine)}
    assert (statuses[P_ID], statuses[L_ID], statuses[T_ID]) == ("accepted", "rejected", "open")


# ---------------------------------------------------------------------------------------------
# Roles in an older store


@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_older_store_gets_the_role_column(backend, tmp_path):
    # the users table as the first release created it
    key = "serial primary key" if backend == "postgresql" else "integer primary key"
    old_users = (f"create table users (id {key}, username varchar(100) not null "
                 "unique, password_hash varchar(300) not null, created_at timestamp not null)")
    insert = ("insert into users (username, password_hash, created_at) "
              "values ('old', 'x', '2026-01-01')")
    databases = pg_database() if backend == "postgresql" else None
    try:
        if databases:
            url = next(databases)
            settings = Settings({"storage.database_url": url,
                                 "storage.data_dir": str(tmp_path)})
            raw = create_engine(url)
            with raw.begin() as conn:
                conn.execute(text(old_users))
                conn.execute(text(insert))
            raw.dispose()
        else:
            settings = Settings({"storage.data_dir": str(tmp_path)})
            with sqlite3.connect(tmp_path / "ingest.sqlite3") as conn:
                conn.execute(old_users)
                conn.execute(insert)
        engine = make_engine(settings)
        init_store(engine)
        init_store(engine)  # twice: nothing more to do
        assert user_role(engine, "old") == "viewer"
        add_user(engine, "new", "password-new", role="reviewer")
        assert user_role(engine, "new") == "reviewer"
        engine.dispose()
    finally:
        if databases:
            databases.close()


# ---------------------------------------------------------------------------------------------
# The command line


def run(config: Path, *args: str) -> subprocess.CompletedProcess:
    """The command line as a real process."""
    return subprocess.run([sys.executable, "-m", "esco_kpi.cli", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=120)


class Cli:
    """The command line's entry point (esco_kpi.cli.main) in this process: what a real
    process runs, one line per error included, without a process start per command."""

    def __init__(self, config: Path, capsys, monkeypatch) -> None:
        self.config, self.capsys, self.monkeypatch = config, capsys, monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["--config", str(self.config), *args])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def ok(self, *args: str, stdin: str = "") -> str:
        code, out, err = self(*args, stdin=stdin)
        assert code == 0, err
        return out

    def error(self, *args: str, text: str) -> None:
        code, _, err = self(*args)
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1, err
        assert lines[0].startswith("esco-kpi: error: ") and text in lines[0], lines[0]


def _release(folder: Path) -> Path:
    """ESCO's CSV download format: 1.10.0's occupation O1 with the accepted German label, and
    a new occupation holding the accepted proposal."""
    header = "conceptType,conceptUri,iscoGroup,preferredLabel,altLabels,hiddenLabels,status\n"
    folder.mkdir()
    (folder / "occupations_en.csv").write_text(
        header + f"Occupation,{O1},2512,software developer,,,released\n"
        f"Occupation,{O3},2512,prompt engineer,,,released\n")
    (folder / "occupations_de.csv").write_text(
        header + f'Occupation,{O1},2512,Softwareentwickler,"Programmierer\n'
        f'Software-Entwickler",Coder,released\n')
    return folder


def test_review_through_the_command_line(tmp_path, capsys, monkeypatch):
    store = standard_store(tmp_path)
    seed(store)
    config = write_config(store.settings, tmp_path)
    cli = Cli(config, capsys, monkeypatch)
    assert "(reviewer)" in cli.ok("user", "add", "eva", "--password-stdin", "--role",
                                  "reviewer", stdin="password-eva\n")
    cli.ok("user", "add", "vic", "--password-stdin", stdin="password-vic\n")

    items = json.loads(cli.ok("review", "list", "--json"))
    assert [i["item_id"] for i in items][:2] == [P_ID, L_ID]
    assert set(items[0]) >= {"item_id", "kind", "status", "concept_uri", "concept_type",
                             "language", "label", "implementers", "events", "first_seen",
                             "last_seen", "in_release", "released_as"}
    assert L_ID in cli.ok("review", "list", "--kind", "label")

    # a real process: one plain line, no traceback
    refused = run(config, "review", "decide", L_ID, "--decision", "accept", "--by", "vic")
    assert refused.returncode == 1 and refused.stderr == (
        "esco-kpi: error: user 'vic' is a viewer, not a reviewer: only reviewers decide\n")
    cli.error("review", "decide", L_ID, "--decision", "accept", "--by", "ghost",
              text="no user named 'ghost'")
    cli.error("review", "decide", L_ID, "--decision", "reject", "--by", "eva",
              text="a rejection needs a reason")
    cli.error("review", "decide", L_ID, "--decision", "reject", "--by", "eva", "--reason",
              "dislike", text="Invalid value for '--reason'")
    assert f"{L_ID}: accepted" in cli.ok("review", "decide", L_ID, P_ID, "--decision",
                                         "accept", "--by", "eva", "--note", "for 1.11")
    cli.ok("review", "decide", T_ID, "--decision", "reject", "--by", "eva", "--reason",
           "wrong_language")
    accepted = json.loads(cli.ok("review", "list", "--status", "accepted", "--json"))
    assert {i["item_id"] for i in accepted} == {L_ID, P_ID}

    out = tmp_path / "handover"
    assert "Wrote 2 accepted items" in cli.ok("review", "export", "--out", str(out))
    assert len(Graph().parse(out / "changes.ttl", format="turtle")) > 0

    loaded = cli.ok("catalogue", "load", str(_release(tmp_path / "esco-1.11.0")), "--version",
                    "1.11.0")
    assert "2 accepted suggestions are in 1.11.0, 0 open ones were covered." in loaded
    released = {i["item_id"]: i for i in json.loads(
        cli.ok("review", "list", "--status", "released", "--json"))}
    assert released[P_ID]["released_as"] == O3 and released[L_ID]["in_release"] == "1.11.0"
    assert cli.ok("review", "reconcile").strip() == (
        "0 accepted suggestions are in 1.11.0, 0 open ones were covered.")
    summary = json.loads(cli.ok("review", "summary", "--json"))
    assert {(r["kind"], r["released"]) for r in summary} >= {("label", 1), ("proposal", 1)}
    assert "label" in cli.ok("review", "summary")
    store.engine.dispose()
