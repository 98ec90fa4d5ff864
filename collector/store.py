"""Committing a classified request: the events and the outcome counters, in one transaction.

One transaction takes the rate-limit tokens, inserts the new events (`ON CONFLICT DO NOTHING`
on `(implementer, event_id)`, so a resend is a duplicate) and bumps the outcome counters
(accepted, duplicate, quarantined, rejected, and beside them `flagged`: counted events that
data quality reports, such as an ESCO version lacking the concept).
Only after it commits is a 202 sent; when it cannot commit, StoreUnavailable (a 503). Which
events are accepted, quarantined or rejected was decided before, by collector.classify.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from collector.classify import DUPLICATE, REJECTED, Classified
from collector.ratelimit import Refusal, take_tokens
from kpi.store.counters import bump_outcome_counts
from kpi.store.db import events, store_error
from kpi.vocabulary import FLAGGED


class StoreUnavailable(Exception):
    """The store could not commit: the request is answered 503 and nothing is acknowledged."""


@dataclass
class Stored:
    """What the store made of the valid rows."""

    new_event_ids: set[str]
    refusal: Refusal | None = None


def store(engine: Engine, implementer_id: int, result: Classified, today: date,
          rate_per_minute: int, timeout: float = 10.0) -> Stored:
    """Commit the request in one transaction; raise StoreUnavailable if it cannot be done."""
    dialect = engine.dialect.name
    rows = [{**row, "implementer_id": implementer_id, "received_on": today}
            for row in result.rows]
    for row in rows:
        for name in _OPTIONAL_COLUMNS:
            row.setdefault(name, None)
    try:
        with _write_turn(engine, timeout), engine.connect().execution_options(write=True) as conn, \
                conn.begin():
            refusal = take_tokens(conn, implementer_id, result.received, rate_per_minute)
            if refusal:
                conn.rollback()
                return Stored(set(), refusal)
            new_ids = _insert_events(conn, dialect, rows) if rows else set()
            counts = _outcome_rows(result, rows, new_ids)
            _bump_counters(conn, implementer_id, today, counts)
        return Stored(new_ids)
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(store_error(exc)) from exc


class SqliteWriteTurns:
    """Writers of one SQLite file take turns instead of polling its lock.

    SQLite lets one writer in at a time; the others retry on a busy timer whose sleeps grow to
    100 ms, which made the slowest requests of a loaded collector wait a second or more. Here
    the threads of a process queue on a lock, and the processes on an advisory file lock that
    is polled every half millisecond: waiting is short and nearly first-come, first-served.
    """

    def __init__(self, database: str, timeout: float):
        self.path = f"{database}.writelock"
        self.timeout = timeout
        self._threads = threading.Lock()
        self._fd: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        if not self._threads.acquire(timeout=self.timeout):
            raise StoreUnavailable("the store is busy")
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreUnavailable("the store is busy") from None
                    time.sleep(0.0005)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_turns: dict[str, SqliteWriteTurns] = {}
_turns_lock = threading.Lock()


@contextmanager
def _write_turn(engine: Engine, timeout: float) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield  # PostgreSQL queues writers itself
        return
    with _turns_lock:
        turns = _turns.get(database)
        if turns is None:
            turns = _turns[database] = SqliteWriteTurns(database, timeout)
    with turns.turn():
        yield


# The columns of kpi.store.db.events that a request fills: all but the id, which the store
# hands out.
_COLUMNS = tuple(c for c in events.columns if not c.primary_key)
_EVENT_COLUMNS = tuple(c.name for c in _COLUMNS)
_OPTIONAL_COLUMNS = tuple(c.name for c in _COLUMNS if c.nullable)
_DATE_COLUMNS = frozenset(c.name for c in _COLUMNS if c.type.python_type is date)
_SQLITE_INSERT = (f"insert into events ({', '.join(_EVENT_COLUMNS)}) values "
                  f"({', '.join('?' * len(_EVENT_COLUMNS))}) on conflict do nothing")
_SQLITE_EXISTING = "select event_id from events where implementer_id = ? and event_id in ({})"


# PostgreSQL: one statement with one array per column. A multi-row VALUES list would have
# 15,000 placeholders for a full request, which the driver spends longer parsing than the
# server spends inserting. The arrays take the columns' types without a length (VARCHAR(64)
# -> VARCHAR): an explicit cast to a length would cut a longer value short instead of failing.
def _pg_array_type(column) -> str:
    return re.sub(r"\(.*\)", "", column.type.compile(dialect=postgresql.dialect())) + "[]"


_PG_ARRAYS = ", ".join(f"%({c.name})s::{_pg_array_type(c)}" for c in _COLUMNS)
_PG_INSERT = (f"insert into events ({', '.join(_EVENT_COLUMNS)}) select * from unnest({_PG_ARRAYS})"
              " on conflict (implementer_id, event_id) do nothing returning event_id")


def _insert_events(conn, dialect: str, rows: list[dict]) -> set[str]:
    """Insert the rows that are new; return their event ids."""
    if dialect == "postgresql":
        columns = {c: [row[c] for row in rows] for c in _EVENT_COLUMNS}
        return {r[0] for r in conn.exec_driver_sql(_PG_INSERT, columns)}
    # SQLite: the transaction began IMMEDIATE, so no other writer runs between this look-up
    # and the insert, and the driver's executemany skips SQLAlchemy's per-row processing
    # (the largest cost of a 1,000-event request).
    implementer_id = rows[0]["implementer_id"]
    ids = [row["event_id"] for row in rows]
    existing: set[str] = set()
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit is 999 on old builds
        chunk = ids[start:start + 900]
        existing.update(r[0] for r in conn.exec_driver_sql(
            _SQLITE_EXISTING.format(", ".join("?" * len(chunk))), (implementer_id, *chunk)))
    fresh = [row for row in rows if row["event_id"] not in existing]
    if fresh:
        conn.exec_driver_sql(_SQLITE_INSERT, [
            tuple(row[c].isoformat() if c in _DATE_COLUMNS else row[c] for c in _EVENT_COLUMNS)
            for row in fresh])
    return {row["event_id"] for row in fresh}


def _outcome_rows(result: Classified, rows: list[dict], new_ids: set[str]) -> Counter:
    """(outcome, reason) -> events. A flagged event is counted under its own outcome too:
    flags are an extra row beside it, and only for new events, so a resend adds nothing."""
    counts: Counter = Counter()
    flags = result.flags
    for row in rows:
        event_id = row["event_id"]
        if event_id in new_ids:
            counts[(row["status"], row["quarantine_reason"] or "")] += 1
            if event_id in flags:
                counts[(FLAGGED, flags[event_id])] += 1
        else:
            counts[(DUPLICATE, "")] += 1
    counts[(DUPLICATE, "")] += len(result.duplicates_in_request)
    for reason, n in result.rejected_reasons.items():
        counts[(REJECTED, reason)] += n
    return +counts


def _bump_counters(conn, implementer_id: int, today: date, counts: Counter) -> None:
    bump_outcome_counts(conn, Counter({(implementer_id, today, outcome, reason): n
                                       for (outcome, reason), n in counts.items()}))


def existing_event_ids(engine: Engine, implementer_id: int, event_ids: list[str]) -> set[str]:
    """Which of these event ids are already stored (for a dry run, which stores nothing)."""
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            found.update(conn.execute(
                events.select().with_only_columns(events.c.event_id).where(
                    events.c.implementer_id == implementer_id, events.c.event_id.in_(chunk))
            ).scalars())
    return found
