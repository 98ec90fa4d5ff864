"""Keys, revocation and the rate limit hold across every worker of a running server.

One server per backend, with three workers and a small rate limit, serves the tests that send
(starting one takes seconds); each sends as an implementer of its own, with a token bucket
and keys of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from kpi.store.db import api_keys
from kpi.store.registry import add_implementer, revoke_implementer
from tests.conftest import SharedServer, shared_server
from tests.helpers import event, post


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Module-scoped here, so that the shared server below is started once per backend."""
    return request.param


@pytest.fixture(scope="module")
def shared(request, backend, tmp_path_factory) -> Iterator[SharedServer]:
    with shared_server(request, backend, tmp_path_factory.mktemp("security"), workers=3,
                       ingest__rate_limit_events_per_minute=100,
                       ingest__max_events_per_request=50) as shared:
        yield shared


def test_rate_limit_holds_across_workers(shared):
    server, api_key = shared.server, shared.portal().key
    batches = [[event(f"r{n}-{i}") for i in range(50)] for n in range(6)]
    with ThreadPoolExecutor(6) as pool:  # six connections: spread over the three workers
        statuses = sorted(r.status_code for r in pool.map(
            lambda batch: post(server.url, api_key, batch), batches))
    # The bucket holds 100 events (and refills 50 in 30 s): two batches fit, four are refused.
    assert statuses == [202, 202, 429, 429, 429, 429]


def test_revocation_reaches_every_worker_at_once(shared):
    server, engine = shared.server, shared.engine
    implementer, key = add_implementer(engine, "Portal Revoked", "AT", "pes")
    assert all(post(server.url, key, [event(f"v{i}")]).status_code == 202 for i in range(6))
    revoke_implementer(engine, implementer.id)
    with ThreadPoolExecutor(6) as pool:
        statuses = set(pool.map(lambda i: post(server.url, key, [event(f"w{i}")]).status_code,
                                range(12)))
    assert statuses == {401}


def test_keys_are_stored_only_as_hashes(engine):
    _, key = add_implementer(engine, "Portal Hash", "PT", "other")
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys)).mappings().all()
    for row in rows:
        assert all(key not in str(value) for value in row.values())
        assert len(row["key_hash"]) == 64 and row["prefix"] == key[:12]


def test_security_headers_on_every_response(shared):
    server, api_key = shared.server, shared.portal().key
    responses = [requests.get(f"{server.url}/v1/health", timeout=5),
                 requests.get(f"{server.url}/v1/me", timeout=5),
                 requests.get(f"{server.url}/metrics", timeout=5),
                 requests.get(f"{server.url}/nowhere", timeout=5),
                 post(server.url, api_key, [event("h")])]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] in ("no-referrer", "same-origin")
