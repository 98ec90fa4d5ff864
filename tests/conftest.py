"""Shared fixtures: real stores (SQLite and PostgreSQL), a real server process, real keys.

Every test that asks for `settings` runs once against SQLite and once against PostgreSQL.
PostgreSQL is the server on 127.0.0.1:5432 (or $ESCO_KPI_TEST_PG); without one the PostgreSQL
runs skip locally, and fail in CI, where one must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from esco_kpi.server import free_port, spawn_serve, wait_until_up
from kpi.catalogue.load import load_bundled
from kpi.settings import Settings
from kpi.store.db import init_store, make_engine
from kpi.store.registry import add_implementer

PG_ADMIN_URL = os.environ.get("ESCO_KPI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# One template per test session: two sessions on one server never touch each other's.
PG_TEMPLATE = f"esco_kpi_template_{os.getpid()}"
ROOT = Path(__file__).resolve().parent.parent


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"


def _admin(sql: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite ingest store with the bundled catalogue, built once and copied per test."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    settings = Settings({"storage.data_dir": str(folder)})
    engine = make_engine(settings)
    init_store(engine)
    load_bundled(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("pragma wal_checkpoint(truncate)")
    engine.dispose()
    return folder / "ingest.sqlite3"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must run in CI: {problem}")
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {problem}")
    _admin(f"drop database if exists {PG_TEMPLATE}")
    _admin(f"create database {PG_TEMPLATE}")
    settings = Settings({"storage.database_url": _pg_url(PG_TEMPLATE)})
    engine = make_engine(settings)
    init_store(engine)
    load_bundled(engine)
    engine.dispose()
    yield PG_TEMPLATE
    _admin(f"drop database if exists {PG_TEMPLATE} with (force)")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def settings(backend, tmp_path, request) -> Iterator[Settings]:
    """Settings for a fresh, catalogue-loaded store of the parametrised backend."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    values = {"storage.data_dir": str(data_dir)}
    database = None
    if backend == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "ingest.sqlite3")
    else:
        template = request.getfixturevalue("pg_template")
        database = f"esco_kpi_t_{uuid.uuid4().hex[:12]}"
        _admin(f"create database {database} template {template}")
        values["storage.database_url"] = _pg_url(database)
    yield Settings(values, base_dir=tmp_path)
    if database:
        _admin(f"drop database if exists {database} with (force)")


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

    def stop(self, sig: int | None = None) -> None:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(config: Path, log: Path, workers: int = 2) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = spawn_serve(config, port, log, ("--workers", str(workers)), env=env,
                          cwd=config.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
    except RuntimeError:
        process.kill()
        raise
    return Server(url, process, config, log)


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
