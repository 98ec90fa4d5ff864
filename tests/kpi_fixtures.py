"""Seeding helpers for the aggregator and indicator tests: a real ingest store with a tiny
catalogue, events inserted straight into the `events` table, and the warehouse beside it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import Engine, create_engine, func, insert, select, text

from kpi.settings import Settings
from kpi.store.db import (
    catalogue_versions,
    concept_labels,
    concepts,
    events,
    implementers,
    init_store,
    make_engine,
    outcome_counts,
)
from kpi.warehouse.aggregate import RunSummary, run_aggregation
from kpi.warehouse.published import ROLLUPS, SPAN_ROLLUPS
from kpi.warehouse.reader import open_reader

OCC = "http://data.europa.eu/esco/occupation/"
SKILL = "http://data.europa.eu/esco/skill/"
O1, O2 = OCC + "o1", OCC + "o2"
S1, S2, S3, S4 = SKILL + "s1", SKILL + "s2", SKILL + "s3", SKILL + "s4"
ISCO = "http://data.europa.eu/esco/isco/C2512"

# Version 1.0.0 holds O1, O2, S1, S2, S3; version 1.10.0 (the newest: numeric order, not text)
# drops O2 and adds S4 and an ISCO group.
CATALOGUE_V1 = {
    "concepts": [(O1, "occupation"), (O2, "occupation"), (S1, "skill"), (S2, "skill"),
                 (S3, "skill")],
    "labels": [
        (O1, "en", "preferred", "software developer"),
        (O2, "en", "preferred", "data clerk"),
        (S1, "en", "preferred", "Python (computer programming)"),
        (S2, "en", "preferred", "manage budgets"),
        (S3, "en", "preferred", "cook pasta"),
    ],
}
CATALOGUE_V2 = {
    "concepts": [(O1, "occupation"), (S1, "skill"), (S2, "skill"), (S3, "skill"),
                 (S4, "skill"), (ISCO, "isco")],
    "labels": [
        (O1, "en", "preferred", "software developer"),
        (O1, "de", "preferred", "Softwareentwickler"),
        (O1, "de", "alt", "Programmierer"),
        (O1, "de", "hidden", "Coder"),
        (S1, "en", "preferred", "Python (computer programming)"),
        (S1, "de", "preferred", "Python (Computerprogrammierung)"),
        (S1, "fr", "preferred", "Python (programmation informatique)"),
        (S2, "en", "preferred", "manage budgets"),
        (S3, "en", "preferred", "cook pasta"),
        (S4, "en", "preferred", "use spreadsheets"),
        (ISCO, "en", "preferred", "Software developers"),
    ],
}


@dataclass
class Store:
    """An ingest store (SQLite in tmp_path unless a URL is given) and its warehouse."""

    settings: Settings
    engine: Engine
    _next_event: int = field(default=0)

    def implementer(self, id: int, country: str = "DE", sector: str = "job_portal") -> int:
        with self.engine.begin() as conn:
            conn.execute(insert(implementers).values(
                id=id, name=f"Implementer {id}", country=country, sector=sector,
                created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        return id

    def catalogue(self, version: str, catalogue: dict[str, list], status: str = "released"
                  ) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(catalogue_versions).values(
                version=version, loaded_at=datetime.now(UTC), source="test",
                concepts=len(catalogue["concepts"]), labels=len(catalogue["labels"])))
            conn.execute(insert(concepts), [
                {"version": version, "uri": u, "concept_type": t, "status": status}
                for u, t in catalogue["concepts"]])
            conn.execute(insert(concept_labels), [
                {"version": version, "uri": u, "language": lang, "kind": k, "label": text}
                for u, lang, k, text in catalogue["labels"]])

    def events(self, *rows: dict[str, Any]) -> list[int]:
        """Insert events; each dict overrides the defaults below. Returns their ids."""
        values = []
        for row in rows:
            self._next_event += 1
            day = _day(row.get("day", "2026-07-15"))
            base = {
                "implementer_id": 1, "event_id": f"e{self._next_event}",
                "type": "concept_used", "day": day, "concept_uri": O1,
                "esco_version": "1.0.0", "language": "en", "context": "other", "count": 1,
                "label": None, "concept_type": None, "comment": None, "status": "accepted",
                "quarantine_reason": None, "received_on": day,
            }
            base.update({k: (_day(v) if k in ("day", "received_on") else v)
                         for k, v in row.items()})
            values.append(base)
        with self.engine.begin() as conn:
            before = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
            conn.execute(insert(events), values)
            ids = conn.execute(select(events.c.id).where(events.c.id > before)
                               .order_by(events.c.id)).scalars().all()
        return list(ids)

    def outcome(self, implementer_id: int, received_on: str, outcome: str, reason: str,
                n: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(outcome_counts).values(
                implementer_id=implementer_id, received_on=_day(received_on), outcome=outcome,
                reason=reason, events=n))

    def aggregate(self) -> RunSummary:
        return run_aggregation(self.settings, self.engine)

    def reader(self) -> duckdb.DuckDBPyConnection:
        return open_reader(self.settings)


def _day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def make_store(folder: Path, database_url: str | None = None) -> Store:
    """A fresh ingest store (with its tables) and an empty warehouse under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {"storage.data_dir": str(folder / "var")}
    if database_url:
        values["storage.database_url"] = database_url
    settings = Settings(values, base_dir=folder)
    engine = make_engine(settings)
    init_store(engine)
    return Store(settings, engine)


PG_ADMIN_URL = os.environ.get("ESCO_KPI_TEST_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database URL (dropped afterwards); skips without a server."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server: {str(exc).splitlines()[0]}")
    name = f"esco_kpi_agg_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f"create database {name}"))  # a generated identifier, not a value
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"drop database if exists {name} with (force)"))
        admin.dispose()


@contextmanager
def store_on(backend: str, make: Callable[[str | None], Store]) -> Iterator[Store]:
    """The store that `make(database_url)` builds on SQLite (None) or on a fresh PostgreSQL
    database ("postgresql": dropped afterwards; skips without a server), disposed at the end."""
    databases = pg_database() if backend == "postgresql" else None
    url = next(databases) if databases else None  # skips without a PostgreSQL server
    store = make(url)
    try:
        yield store
    finally:
        store.engine.dispose()
        if databases:
            databases.close()  # drops the database


def standard_store(folder: Path, database_url: str | None = None) -> Store:
    """Three implementers and both catalogue versions."""
    store = make_store(folder, database_url)
    store.implementer(1, "DE", "job_portal")
    store.implementer(2, "FR", "pes")
    store.implementer(3, "DE", "pes")
    store.catalogue("1.0.0", CATALOGUE_V1)
    store.catalogue("1.10.0", CATALOGUE_V2)
    return store


def published_state(settings: Settings) -> dict[str, list[tuple]]:
    """Every published table's rows, sorted: to compare two warehouses.

    Concept keys are replaced by their URIs: two warehouses built in different orders may
    number the same concept differently, and must still hold the same figures. A rollup's rows
    are summed per key (day included): a day's rows may be split over several files (its
    recomputed rows and the rows added to it since), and readers always sum them.
    """
    con = open_reader(settings)
    try:
        out = {}
        keyed = {"usage": "concept_key", "labels": "concept_key",
                 "feedback": "concept_key", "proposals": "broader_key"}
        rollups = (*ROLLUPS, *SPAN_ROLLUPS)  # every rollup, by day, month and quarter
        for table in (*rollups, "quality_daily", "concepts", "concept_labels",
                      "concept_names", "implementers"):
            # table and column names come from the constants above and of
            # kpi.warehouse.published
            if table in rollups:
                column = keyed.get(table.rsplit("_", 1)[0])
                key = (f"t.* exclude ({column}, usage, events), k.uri" if column
                       else "t.* exclude (usage, events)")
                join = (f"left join concept_keys as k on k.key = t.{column}" if column else "")
                rows = con.execute(
                    f"select {key}, sum(t.usage), sum(t.events) from {table} as t {join} "
                    "group by all").fetchall()
            else:
                rows = con.execute(f"select * from {table}").fetchall()
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        con.close()
