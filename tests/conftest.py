"""Shared fixtures: real stores (SQLite and PostgreSQL), a real server process, real keys.

Every test that asks for `settings` runs once against SQLite and once against PostgreSQL.
PostgreSQL is the server on 127.0.0.1:5432 (or $ESCO_KPI_TEST_PG); without one the PostgreSQL
runs skip locally, and fail in CI, where one must run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, func, select

from esco_kpi.server import spawn_serve, wait_until_up
from kpi.catalogue.load import load_bundled
from kpi.settings import Settings
from kpi.store.db import events, init_store, make_engine
from kpi.store.registry import Implementer, add_implementer
from kpi.warehouse.label_keys import prepare as prepare_label_keys
from tests.dashboard_world import app, world  # noqa: F401 - the dashboard tests' fixtures
from tests.support import (
    PG_ADMIN_URL,
    PgTemplate,
    admin_sql,
    default_signals,
    free_port,
    fresh_store,
    pg_available,
    pg_url,
    stop_process,
)

# One template per test session: two sessions on one server never touch each other's.
PG_TEMPLATE = f"esco_kpi_template_{os.getpid()}"
ROOT = Path(__file__).resolve().parent.parent


def init_like(settings: Settings) -> None:
    """What `esco-kpi init` does: the stores, the bundled catalogue, its labels' keys kept in
    the data folder (copied with the store by tests.support.fresh_store)."""
    engine = make_engine(settings)
    init_store(engine)
    prepare_label_keys(settings, engine, load_bundled(engine).version)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite ingest store as `init` leaves it, built once and copied per test."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    settings = Settings({"storage.data_dir": str(folder)})
    init_like(settings)
    engine = make_engine(settings)
    with engine.connect() as conn:
        conn.exec_driver_sql("pragma wal_checkpoint(truncate)")
    engine.dispose()
    return folder / "ingest.sqlite3"


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory) -> Iterator[PgTemplate]:
    """A PostgreSQL database as `init` leaves it, built once and copied per test."""
    problem = pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must run in CI: {problem}")
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {problem}")
    admin_sql(f"drop database if exists {PG_TEMPLATE}")
    admin_sql(f"create database {PG_TEMPLATE}")
    folder = tmp_path_factory.mktemp("pg-template")
    init_like(Settings({"storage.database_url": pg_url(PG_TEMPLATE),
                        "storage.data_dir": str(folder)}))
    yield PgTemplate(PG_TEMPLATE, folder)
    admin_sql(f"drop database if exists {PG_TEMPLATE} with (force)")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(backend, tmp_path, request) -> Iterator[Settings]:
    """Settings for a fresh, catalogue-loaded store of the parametrised backend."""
    with fresh_store(request, backend, tmp_path) as settings:
        yield settings


@pytest.fixture
def engine(settings):
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def api_key(engine) -> str:
    return add_implementer(engine, "Portal Alpha", "DE", "job_portal")[1]


def write_config(settings: Settings, folder: Path, **overrides) -> Path:
    """A config.yaml reproducing `settings` (plus overrides such as ingest__max_age_days)."""
    tree: dict = {}
    merged = settings.replace(**overrides)
    for name in merged:
        section, key = name.split(".", 1)
        value = merged[name]
        if name == "storage.data_dir":
            value = str(merged.data_dir)
        tree.setdefault(section, {})[key] = value
    path = folder / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@dataclass
class Server:
    """A real `esco-kpi serve` process."""

    url: str
    process: subprocess.Popen
    config: Path
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig`, then SIGKILL what is left of the server's process group."""
        stop_process(self.process, sig)


def start_server(config: Path, log: Path, workers: int = 2) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with default_signals():  # so that tests can stop it however the suite was started
        process = spawn_serve(config, port, log, ("--workers", str(workers)), env=env,
                              cwd=config.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
    except RuntimeError:
        stop_process(process, signal.SIGKILL)
        raise
    return Server(url, process, config, log)


@dataclass
class Portal:
    """An implementer of its own on a shared store, and its API key."""

    implementer: Implementer
    key: str
    engine: Engine

    def stored(self) -> int:
        """How many of this implementer's events the store holds."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events).where(
                events.c.implementer_id == self.implementer.id)).scalar_one()


@dataclass
class SharedServer:
    """A server, its store's settings and an engine on that store, shared by the tests of a
    module: each test sends as an implementer of its own (`portal()`), so that it never meets
    another test's events."""

    server: Server
    settings: Settings
    engine: Engine
    _portals: itertools.count = field(default_factory=lambda: itertools.count(1))

    def portal(self, country: str = "DE", sector: str = "job_portal") -> Portal:
        """A new implementer ("Portal Alpha N") and its key."""
        implementer, key = add_implementer(self.engine, f"Portal Alpha {next(self._portals)}",
                                           country, sector)
        return Portal(implementer, key, self.engine)


@contextlib.contextmanager
def shared_server(request, backend: str, folder: Path, workers: int = 2, **overrides
                  ) -> Iterator[SharedServer]:
    """A fresh store of `backend` under `folder` and a server on it, stopped on exit: for a
    module-scoped fixture (`server_factory` starts servers for one test). Starting a server
    takes seconds; a module whose tests only send and read answers needs one per backend."""
    with fresh_store(request, backend, folder) as settings:
        config = write_config(settings, folder, **overrides)
        server = start_server(config, folder / "server.log", workers)
        engine = make_engine(settings)
        try:
            yield SharedServer(server, settings, engine)
        finally:
            engine.dispose()
            server.stop()


@pytest.fixture
def server_factory(settings, tmp_path):
    """Start servers on free ports with optional setting overrides; all stopped at the end."""
    started: list[Server] = []

    def start(workers: int = 2, **overrides) -> Server:
        config = write_config(settings, tmp_path, **overrides)
        server = start_server(config, tmp_path / "server.log", workers)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory) -> Server:
    return server_factory()
