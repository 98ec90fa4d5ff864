"""The ingestion API over HTTP against a real `esco-kpi serve` process: the contract that
README.md documents ("Sending events").

Starting a server takes seconds, so one server per backend serves every test of the module
that only needs a server with the default settings: each of those tests sends with an
implementer of its own (`portal`) and counts only that implementer's events. The tests that
need other settings, a whole store's figures or a stopped server start one of their own
(`server_factory`, on the fresh store of `settings`).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import orjson
import pytest
import requests
from openapi_spec_validator import validate
from sqlalchemy import func, select

from kpi.store.db import events
from kpi.store.registry import add_implementer, revoke_implementer, rotate_key
from tests.conftest import Portal, Server, SharedServer, shared_server
from tests.helpers import OCCUPATION, SKILL, days_ago, event, post


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Module-scoped here, so that the shared server below is started once per backend."""
    return request.param


@pytest.fixture(scope="module")
def shared(request, backend, tmp_path_factory) -> Iterator[SharedServer]:
    with shared_server(request, backend, tmp_path_factory.mktemp("contract")) as shared:
        yield shared


@pytest.fixture
def server(shared) -> Server:
    """The shared server (no test of this module stops it)."""
    return shared.server


@pytest.fixture
def portal(shared) -> Portal:
    return shared.portal()


def stored_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def test_health_needs_no_key(server):
    response = requests.get(f"{server.url}/v1/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_openapi_is_valid_and_built_from_the_schemas(server):
    spec = requests.get(f"{server.url}/v1/openapi.json", timeout=5).json()
    validate(spec)
    event_schema = spec["components"]["schemas"]["Event"]
    assert set(event_schema["required"]) == {"event_id", "type", "occurred_at", "language"}
    assert "comment" in event_schema["properties"]
    assert set(spec["paths"]["/v1/events"]["post"]["responses"]) == {
        "202", "400", "401", "413", "415", "429", "503"}


def test_accepted_then_resend_is_all_duplicates(server, portal):
    api_key = portal.key
    batch = [event("a-1"), event("a-2", type="label_added", label="Datenbankpflege"),
             event("a-3", type="concept_proposed", concept_uri=None, concept_type="skill",
                   label="prompt engineering", comment="LLM prompting")]
    first = post(server.url, api_key, batch)
    assert first.status_code == 202
    assert first.json() == {"received": 3, "accepted": 3, "duplicates": 0, "quarantined": 0,
                            "rejected": 0, "errors": []}
    again = post(server.url, api_key, batch)
    assert again.status_code == 202
    assert again.json()["duplicates"] == 3 and again.json()["accepted"] == 0
    assert portal.stored() == 3


def test_four_outcomes_and_reasons_in_one_request(server, portal):
    api_key = portal.key
    post(server.url, api_key, [event("dup-1")])
    batch = [
        event("ok-1", language="de-AT", concept_uri=OCCUPATION.replace("http:", "https:") + "/"),
        event("dup-1"),
        event("q-1", concept_uri="http://data.europa.eu/esco/skill/not-in-the-catalogue"),
        event("bad-1", language="xx"),
        event("q-2", esco_version="9.0.0"),
    ]
    response = post(server.url, api_key, batch)
    assert response.status_code == 202
    body = response.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["quarantined"],
            body["rejected"]) == (5, 1, 1, 2, 1)
    assert [(e["index"], e["event_id"], e["outcome"]) for e in body["errors"]] == [
        (2, "q-1", "quarantined"), (3, "bad-1", "rejected"), (4, "q-2", "quarantined")]
    assert body["errors"][1]["reasons"]["language"][0].startswith("Must be one of: bg, cs")
    assert "concept_uri" in body["errors"][0]["reasons"]
    assert "esco_version" in body["errors"][2]["reasons"]
    with portal.engine.connect() as conn:
        row = conn.execute(select(events).where(
            events.c.implementer_id == portal.implementer.id, events.c.event_id == "ok-1"
        )).mappings().one()
    assert row["language"] == "de" and row["concept_uri"] == OCCUPATION


def test_every_event_rejected_is_400_with_summary(server, portal):
    response = post(server.url, portal.key, [event("x", type="nope"), {"event_id": "y"}])
    assert response.status_code == 400
    body = response.json()
    assert body["rejected"] == 2 and body["accepted"] == 0
    assert body["errors"][0]["reasons"] == {"type": ["Must be one of: concept_used, label_added, "
                                                     "concept_proposed, translation_feedback."]}
    assert set(body["errors"][1]["reasons"]) == {"type", "occurred_at", "language"}
    assert portal.stored() == 0


@pytest.mark.parametrize(("fields", "field", "start"), [
    ({"type": "label_added", "label": "write to jane.doe@example.org"}, "label",
     "personal_data: looks like an e-mail address"),
    ({"type": "label_added", "label": "call +49 30 1234567"}, "label",
     "personal_data: looks like a phone number"),
    ({"type": "label_added", "label": "see https://example.org/cv"}, "label",
     "personal_data: looks like a URL"),
    ({"type": "label_added", "label": "DE89 3704 0044 0532 0130 00"}, "label",
     "personal_data: looks like an IBAN"),
    ({"type": "label_added", "label": "customer 1234567"}, "label", "personal_data"),
    ({"type": "translation_feedback", "label": "Pflege", "comment": "mail me: a@b.eu"},
     "comment", "personal_data: looks like an e-mail address"),
    ({"user_email": "x@y.z"}, "user_email", "Unknown field."),
    ({"count": 0}, "count", "Must be greater than or equal to 1"),
    ({"count": "3"}, "count", "Not a valid integer."),
    ({"occurred_at": days_ago(401)}, "occurred_at", "Must not be older than 400 days."),
    ({"occurred_at": "2026-13-01"}, "occurred_at", "Not a valid RFC 3339"),
    ({"concept_uri": "http://example.org/esco/skill/1"}, "concept_uri", "Not an ESCO concept"),
    ({"event_id": "has space"}, "event_id", "Must be 1 to 64 characters"),
    ({"context": "web"}, "context", "Must be one of"),
    ({"type": "label_added"}, "label", "Missing data for required field for type label_added"),
    ({"type": "label_added", "label": "bad\x07bell"}, "label", "Must not contain control"),
])
def test_rejection_reasons(server, portal, fields, field, start):
    response = post(server.url, portal.key, [event("r-1", **fields), event("fine")])
    assert response.status_code == 202
    reasons = response.json()["errors"][0]["reasons"]
    assert reasons[field][0].startswith(start), reasons


def test_ndjson_and_gzip(server, portal):
    api_key = portal.key
    lines = b"\n".join(orjson.dumps(event(f"n-{i}")) for i in range(5)) + b"\n\n"
    response = post(server.url, api_key, body=lines, content_type="application/x-ndjson",
                    gzip_body=True)
    assert response.status_code == 202
    assert response.json()["accepted"] == 5
    broken = orjson.dumps(event("n-9")) + b"\n{not json\n"
    response = post(server.url, api_key, body=broken, content_type="application/x-ndjson")
    assert response.status_code == 202
    assert response.json()["errors"][0]["index"] == 1
    assert portal.stored() == 6


def test_dry_run_answers_alike_and_stores_nothing(server, portal):
    api_key = portal.key
    post(server.url, api_key, [event("d-1")])
    batch = [event("d-1"), event("d-2"), event("d-3", language="zz")]
    dry = post(server.url, api_key, batch, params={"dry_run": "true"})
    assert portal.stored() == 1
    real = post(server.url, api_key, batch)
    assert dry.status_code == real.status_code == 202
    assert dry.json() == real.json()


@pytest.mark.parametrize("key", [None, "esk_00000000_unknown", "garbage"])
def test_401_for_missing_or_unknown_key(server, key):
    response = post(server.url, key, [event("k")])
    assert response.status_code == 401
    assert "error" in response.json()


def test_revoked_key_fails_on_next_request_and_rotation_keeps_old_key(server, shared):
    from datetime import timedelta

    engine = shared.engine
    imp, key = add_implementer(engine, "Portal Rotate", "FR", "pes")
    new_key = rotate_key(engine, imp.id, timedelta(hours=1))
    assert post(server.url, key, [event("r1")]).status_code == 202
    assert post(server.url, new_key, [event("r2")]).status_code == 202
    revoke_implementer(engine, imp.id)
    assert post(server.url, new_key, [event("r3")]).status_code == 401
    assert post(server.url, key, [event("r4")]).status_code == 401


def test_body_shape_errors_are_400(server, portal):
    api_key = portal.key
    cases = [b"{", b"[]", b'{"events": {}}', b'{"events": []}', b'{"events": [1], "x": 2}',
             b'\xff\xfe{"events": []}', b'{"events": [{"count": NaN}]}']
    for body in cases:
        response = post(server.url, api_key, body=body)
        assert response.status_code == 400, body
        assert "error" in response.json() or response.json()["rejected"] >= 1


def test_limits_are_413(server_factory, api_key):
    # of its own, for its limits; one worker is enough (and starts sooner)
    server = server_factory(workers=1, ingest__max_events_per_request=10,
                            ingest__max_body_bytes=20_000)
    too_many = post(server.url, api_key, [event(f"m-{i}") for i in range(11)])
    assert too_many.status_code == 413
    big = post(server.url, api_key, body=b'{"events": [' + b" " * 30_000 + b"]}")
    assert big.status_code == 413
    bomb = gzip.compress(b'{"events": [' + b" " * 50_000_000 + b"]}")
    assert len(bomb) < 100_000
    response = post(server.url, api_key, body=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert requests.get(f"{server.url}/v1/health", timeout=5).status_code == 200


def test_415_for_other_types_and_encodings(server, portal):
    api_key = portal.key
    assert post(server.url, api_key, [event("t")], content_type="text/plain").status_code == 415
    response = post(server.url, api_key, [event("t")], headers={"Content-Encoding": "br"})
    assert response.status_code == 415


def test_429_with_retry_after_and_nothing_stored(server_factory, engine, api_key):
    # of its own, for its limits; test_security holds the limit across workers
    server = server_factory(workers=1, ingest__rate_limit_events_per_minute=60,
                            ingest__max_events_per_request=50)
    assert post(server.url, api_key, [event(f"b-{i}") for i in range(50)]).status_code == 202
    # a dry run takes no tokens
    assert post(server.url, api_key, [event("c-0")], params={"dry_run": "1"}).status_code == 202
    refused = post(server.url, api_key, [event(f"c-{i}") for i in range(20)])
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert stored_count(engine) == 50


def test_me_reports_last_30_days(server, portal):
    api_key = portal.key
    post(server.url, api_key, [event("m-1"), event("m-2", language="xx"),
                               event("m-3", user="x")])
    post(server.url, api_key, [event("m-1")])
    me = requests.get(f"{server.url}/v1/me", headers={"Authorization": f"Bearer {api_key}"},
                      timeout=5).json()
    assert me == {"id": portal.implementer.id, "name": portal.implementer.name,
                  "country": "DE", "sector": "job_portal",
                  "accepted": 1, "duplicates": 1, "quarantined": 0, "rejected": 2,
                  "rejected_by_reason": {"language: not an allowed value": 1,
                                         "unknown field": 1}}


def test_metrics_in_prometheus_format(server_factory, api_key):
    # of its own: the backlog counts the whole store; two workers, whose metrics add up
    server = server_factory()
    post(server.url, api_key, [event("p-1"), event("p-2", language="xx")])
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    assert 'esco_kpi_events_total{outcome="accepted"}' in text
    assert "esco_kpi_ingest_seconds_bucket" in text
    assert "esco_kpi_aggregation_backlog_events 1" in text


def test_skill_uri_accepted_as_is(server, portal):
    response = post(server.url, portal.key, [event("s-1", concept_uri=SKILL, count=1_000_000)])
    assert response.json()["accepted"] == 1


def test_logs_hold_no_addresses_keys_or_labels(server_factory, api_key):
    server = server_factory(workers=1)  # of its own: the test stops it
    post(server.url, api_key, [event("l-1", type="label_added", label="Zierfischpflege"),
                               event("l-2", type="label_added", label="mail x@example.org")],
         headers={"User-Agent": "PortalBot/1.0 (secret-agent)", "X-Forwarded-For": "203.0.113.9"})
    post(server.url, "esk_00000000_wrongwrongwrong", [event("l-3")])
    requests.get(f"{server.url}/v1/nothing-here", timeout=5)
    server.stop()
    # The server's own address appears once, where gunicorn says where it listens.
    log = "\n".join(line for line in server.log.read_text().splitlines()
                    if "Listening at" not in line)
    for secret in ("127.0.0.1", "203.0.113.9", "PortalBot", api_key, "wrongwrong",
                   "Zierfischpflege", "x@example.org"):
        assert secret not in log, secret
