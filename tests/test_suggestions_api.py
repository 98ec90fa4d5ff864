"""`GET /v1/me/suggestions` over HTTP against a real server, on SQLite and PostgreSQL: an
implementer sees the review items it contributed to, with its own spelling and their status,
and nothing of any other implementer.

One server per backend serves the module; each test sends as implementers of its own, with
labels no other test sends, and aggregates the shared store itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from kpi.catalogue.labels import normalise_label
from kpi.review.decisions import decide
from kpi.review.items import item_id
from kpi.store.registry import add_user, revoke_implementer
from kpi.warehouse.aggregate import run_aggregation
from tests.conftest import SharedServer, shared_server
from tests.helpers import OCCUPATION, SKILL, event, post


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Module-scoped here, so that the shared server is started once per backend."""
    return request.param


@pytest.fixture(scope="module")
def shared(request, backend, tmp_path_factory) -> Iterator[SharedServer]:
    with shared_server(request, backend, tmp_path_factory.mktemp("suggestions")) as shared:
        add_user(shared.engine, "eva", "password-eva", role="reviewer")
        yield shared


def suggestions(shared: SharedServer, key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return requests.get(f"{shared.server.url}/v1/me/suggestions", headers=headers, timeout=10)


def test_a_contributor_sees_its_own_spelling_and_the_decisions(shared):
    alpha, beta, gamma = shared.portal(), shared.portal("FR"), shared.portal()
    label = {"type": "label_added", "concept_uri": OCCUPATION, "language": "de"}
    proposal = {"type": "concept_proposed", "concept_uri": None, "concept_type": "skill",
                "language": "en"}
    feedback = {"type": "translation_feedback", "concept_uri": SKILL, "language": "fr"}
    # alpha's most used spelling is "Quanten-Pflege"; beta's, used more, is the group's
    assert post(shared.server.url, alpha.key, [
        event("a1", **label, label="Quanten-Pflege", count=3),
        event("a2", **label, label="quanten pflege"),
        event("a3", **proposal, label="Prompt-Gärtnerei"),
        event("a4", **feedback, label="Jardinage quantique"),
    ]).status_code == 202
    assert post(shared.server.url, beta.key, [
        event("b1", **label, label="QUANTEN PFLEGE", count=10),
        event("b2", **proposal, label="prompt gärtnerei", count=7),
        event("b3", type="label_added", concept_uri=SKILL, language="en",
              label="Beta-only Widget"),
    ]).status_code == 202
    # gamma sends usage only
    assert post(shared.server.url, gamma.key, [event("g1")]).status_code == 202
    run_aggregation(shared.settings, shared.engine)

    label_id = item_id("label", OCCUPATION, "de", normalise_label("Quanten-Pflege"))
    proposal_id = item_id("proposal", "skill", "en", normalise_label("Prompt-Gärtnerei"))
    translation_id = item_id("translation", SKILL, "fr", normalise_label("Jardinage quantique"))
    response = suggestions(shared, alpha.key)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert {s["item_id"]: (s["label"], s["status"]) for s in
            response.json()["suggestions"]} == {
        label_id: ("Quanten-Pflege", "open"), proposal_id: ("Prompt-Gärtnerei", "open"),
        translation_id: ("Jardinage quantique", "open")}

    decide(shared.settings, shared.engine, [label_id], "accept", "eva")
    decide(shared.settings, shared.engine, [proposal_id], "reject", "eva",
           reason="too_specific", note="a niche of one portal")
    body = suggestions(shared, alpha.key).json()
    assert body == {"suggestions": [
        {"item_id": label_id, "kind": "label", "concept_uri": OCCUPATION, "language": "de",
         "label": "Quanten-Pflege", "status": "accepted", "in_release": None, "reason": None},
        {"item_id": proposal_id, "kind": "proposal", "concept_uri": None, "language": "en",
         "label": "Prompt-Gärtnerei", "status": "rejected", "in_release": None,
         "reason": "too_specific"},
        {"item_id": translation_id, "kind": "translation", "concept_uri": SKILL,
         "language": "fr", "label": "Jardinage quantique", "status": "open",
         "in_release": None, "reason": None},
    ]}
    # nothing of beta: its spellings, its own item, its name, nor how many sent an item
    text = suggestions(shared, alpha.key).text
    for other in ("QUANTEN PFLEGE", "prompt gärtnerei", "Beta-only", beta.implementer.name,
                  "implementers", "events", "note", "niche", "eva"):
        assert other not in text

    # beta sees the same items with its own spellings
    mine = {s["item_id"]: s["label"] for s in suggestions(shared, beta.key).json()["suggestions"]}
    assert mine[label_id] == "QUANTEN PFLEGE" and mine[proposal_id] == "prompt gärtnerei"
    assert translation_id not in mine

    # an implementer that sent no suggestion sees an empty list
    assert suggestions(shared, gamma.key).json() == {"suggestions": []}

    # the next aggregation's groups are seen at once (the server keeps them per publication)
    assert post(shared.server.url, alpha.key, [
        event("a5", type="label_added", concept_uri=SKILL, language="de",
              label="Quanten-Gießen")]).status_code == 202
    run_aggregation(shared.settings, shared.engine)
    new_id = item_id("label", SKILL, "de", normalise_label("Quanten-Gießen"))
    mine = {s["item_id"]: s["status"] for s in suggestions(shared, alpha.key).json()["suggestions"]}
    assert mine == {label_id: "accepted", proposal_id: "rejected", translation_id: "open",
                    new_id: "open"}


@pytest.mark.parametrize("key", [None, "esk_00000000_unknown", "garbage", "revoked"])
def test_wrong_or_missing_key_answers_like_me(shared, key):
    if key == "revoked":
        portal = shared.portal()
        revoke_implementer(shared.engine, portal.implementer.id)
        key = portal.key
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    me = requests.get(f"{shared.server.url}/v1/me", headers=headers, timeout=10)
    answer = suggestions(shared, key)
    assert answer.status_code == me.status_code == 401
    assert answer.json() == me.json()
    assert answer.headers["WWW-Authenticate"] == me.headers["WWW-Authenticate"]


def test_described_in_openapi(shared):
    spec = requests.get(f"{shared.server.url}/v1/openapi.json", timeout=10).json()
    operation = spec["paths"]["/v1/me/suggestions"]["get"]
    assert set(operation["responses"]) == {"200", "401", "503"}
    item = spec["components"]["schemas"]["Suggestion"]
    assert set(item["required"]) == {"item_id", "kind", "concept_uri", "language", "label",
                                     "status", "in_release", "reason"}
