"""Store down (docs/RELIABILITY.md): 503 with Retry-After, nothing acknowledged, recovery
without a restart; /v1/health keeps answering."""

from __future__ import annotations

import sqlite3
import time

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from kpi.store.db import events
from tests.helpers import event, post
from tests.support import TcpProxy

BATCH = [event(f"sd-{i}") for i in range(5)]


def stored_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def assert_503(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "error" in response.json() and "accepted" not in response.json()


def me(url: str, key: str) -> requests.Response:
    return requests.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=10)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_write_lock_is_503_then_recovers(server_factory, settings, engine, api_key):
    server = server_factory(ingest__store_timeout_seconds=0.5)
    blocker = sqlite3.connect(settings.data_dir / "ingest.sqlite3", isolation_level=None)
    try:
        blocker.execute("begin exclusive")
        for _ in range(2):
            started = time.monotonic()
            assert_503(post(server.url, api_key, BATCH))
            assert time.monotonic() - started < 5
        assert requests.get(f"{server.url}/v1/health", timeout=5).status_code == 200
    finally:
        blocker.rollback()
        blocker.close()
    response = post(server.url, api_key, BATCH)
    assert response.status_code == 202
    assert response.json()["accepted"] == 5  # nothing of the refused requests was stored
    assert stored_count(engine) == 5
    assert me(server.url, api_key).json()["accepted"] == 5


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_table_lock_is_503_then_recovers(server_factory, engine, api_key):
    server = server_factory(ingest__store_timeout_seconds=0.5)
    with engine.connect() as conn:
        conn.execute(text("lock table events in access exclusive mode"))
        for _ in range(2):
            started = time.monotonic()
            assert_503(post(server.url, api_key, BATCH))
            assert time.monotonic() - started < 5
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0
        conn.rollback()
    response = post(server.url, api_key, BATCH)
    assert response.status_code == 202
    assert response.json()["accepted"] == 5
    assert stored_count(engine) == 5
    assert me(server.url, api_key).json()["accepted"] == 5


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_unreachable_is_503_and_recovers_without_restart(server_factory, settings,
                                                                     engine, api_key):
    url = make_url(settings.database_url)
    proxy = TcpProxy((url.host, url.port or 5432))
    proxy.start()
    try:
        via_proxy = url.set(host="127.0.0.1", port=proxy.port)
        server = server_factory(ingest__store_timeout_seconds=1.0,
                                storage__database_url=via_proxy.render_as_string(False))
        assert post(server.url, api_key, [event("up-1")]).status_code == 202
        proxy.stop()
        for _ in range(2):
            started = time.monotonic()
            # authentication needs the store: 503, never 401 or 500
            assert_503(post(server.url, api_key, BATCH))
            assert time.monotonic() - started < 5
        assert_503(me(server.url, api_key))
        assert requests.get(f"{server.url}/v1/health", timeout=5).status_code == 200
        proxy.start()
        response = post(server.url, api_key, BATCH)
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 5
    finally:
        proxy.stop()
    assert stored_count(engine) == 6


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_server_started_while_postgresql_is_unreachable(server_factory):
    server = server_factory(
        ingest__store_timeout_seconds=1.0,
        storage__database_url="postgresql+psycopg://postgres@127.0.0.1:1/esco_kpi_nowhere")
    assert requests.get(f"{server.url}/v1/health", timeout=5).status_code == 200
    assert_503(post(server.url, "esk_00000000_whatever", BATCH))
