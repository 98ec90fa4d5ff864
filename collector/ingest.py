"""From parsed request items to stored events: classify each one, then commit in one step.

One transaction takes the rate-limit tokens, inserts the new events (`ON CONFLICT DO NOTHING`
on `(implementer, event_id)`, so a resend is a duplicate) and bumps the outcome counters.
Only after it commits is a 202 sent.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from collector.body import BodyError
from collector.fastpath import FastLoader
from collector.ratelimit import Refusal, take_tokens
from collector.schemas import EventSchema, flatten_reasons
from kpi.catalogue.load import CatalogueIndex, version_key
from kpi.store.db import events, outcome_counts

ACCEPTED, DUPLICATE, QUARANTINED, REJECTED = "accepted", "duplicate", "quarantined", "rejected"


class StoreUnavailable(Exception):
    """The store could not commit: the request is answered 503 and nothing is acknowledged."""


@dataclass
class Classified:
    """Each item of a request, judged before anything is stored."""

    rows: list[dict] = field(default_factory=list)  # valid events, status set
    rows_index: list[int] = field(default_factory=list)  # their index in the request
    errors: dict[int, dict] = field(default_factory=dict)  # index -> error entry
    rejected_reasons: Counter = field(default_factory=Counter)  # stored reason -> events
    duplicates_in_request: list[int] = field(default_factory=list)
    received: int = 0


_REASON_CODES = (
    ("personal_data", "personal_data"),
    ("Missing data for required field", "missing"),
    ("Unknown field", "unknown field"),
    ("Must be one of", "not an allowed value"),
    ("Length must be", "wrong length"),
    ("Not a valid", "wrong type"),
)


def _stored_reason(reasons: dict[str, list[str]], known_fields: set[str]) -> str:
    """One short reason per rejected event for the data-quality counters, free of client text."""
    name = sorted(reasons)[0]
    if name not in known_fields and not name.startswith("_"):
        return "unknown field"  # the name itself is client text: never store it
    if name == "_line":
        return "_line: invalid JSON"
    message = reasons[name][0]
    code = next((c for prefix, c in _REASON_CODES if message.startswith(prefix)), None)
    return f"{name}: {code or message.rstrip('.')}"[:200]


@lru_cache(maxsize=4)
def event_schema(today: date, max_age_days: int) -> EventSchema:
    """The marshmallow schema of a day; built once, since building one deep-copies its fields."""
    return EventSchema(today=today, max_age_days=max_age_days)


def classify(items: list[Any], today: date, max_age_days: int,
             catalogue: CatalogueIndex) -> Classified:
    """Validate every item and decide accepted / quarantined / rejected / duplicate-in-request."""
    result = Classified(received=len(items))
    fast = FastLoader(today, max_age_days)
    schema = event_schema(today, max_age_days)
    known_fields = set(schema.fields)
    seen: set[str] = set()
    for index, item in enumerate(items):
        event_id = item.get("event_id") if isinstance(item, dict) else None
        event_id = event_id if isinstance(event_id, str) and len(event_id) <= 64 else None
        if isinstance(item, BodyError):
            reasons = {"_line": [item.message]}
        elif not isinstance(item, dict):
            reasons = {"_schema": ["Each event must be a JSON object."]}
        elif (row := fast.load(item)) is not None:
            reasons = None
        else:
            try:
                row = schema.load(item)
            except ValidationError as exc:
                reasons = flatten_reasons(exc.messages)
            else:
                reasons = None
        if reasons is not None:
            result.errors[index] = {"index": index, "event_id": event_id,
                                    "outcome": REJECTED, "reasons": reasons}
            result.rejected_reasons[_stored_reason(reasons, known_fields)] += 1
            continue
        if row["event_id"] in seen:
            result.duplicates_in_request.append(index)
            continue
        seen.add(row["event_id"])
        _quarantine_check(row, catalogue)
        if row["status"] == QUARANTINED:
            result.errors[index] = {"index": index, "event_id": row["event_id"],
                                    "outcome": QUARANTINED,
                                    "reasons": _quarantine_message(row, catalogue)}
        result.rows.append(row)
        result.rows_index.append(index)
    return result


def _quarantine_check(row: dict, catalogue: CatalogueIndex) -> None:
    version = row.get("esco_version")
    current = catalogue.current_version
    row["esco_version"] = version or current or "unknown"
    row["status"], row["quarantine_reason"] = ACCEPTED, None
    if version and (current is None or version_key(version) > version_key(current)):
        row["status"], row["quarantine_reason"] = QUARANTINED, "newer_esco_version"
    elif row.get("concept_uri") and not catalogue.knows(row["concept_uri"]):
        row["status"], row["quarantine_reason"] = QUARANTINED, "unknown_concept"


def _quarantine_message(row: dict, catalogue: CatalogueIndex) -> dict[str, list[str]]:
    loaded = catalogue.current_version or "none"
    if row["quarantine_reason"] == "newer_esco_version":
        return {"esco_version": [f"Newer than the loaded catalogue ({loaded}); stored and "
                                 f"counted once that release is loaded."]}
    return {"concept_uri": [f"Not in the loaded catalogue (newest {loaded}); stored and "
                            f"counted once a release that has it is loaded."]}


@dataclass
class Stored:
    """What the store made of the valid rows."""

    new_event_ids: set[str]
    refusal: Refusal | None = None


def _insert(dialect: str):
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)


def store(engine: Engine, implementer_id: int, result: Classified, today: date,
          rate_per_minute: int, timeout: float = 10.0) -> Stored:
    """Commit the request in one transaction; raise StoreUnavailable if it cannot be done."""
    dialect = engine.dialect.name
    rows = [{**row, "implementer_id": implementer_id, "received_on": today}
            for row in result.rows]
    for row in rows:
        row.setdefault("concept_uri", None)
        for name in ("label", "concept_type", "comment"):
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
            _bump_counters(conn, dialect, implementer_id, today, counts)
        return Stored(new_ids)
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(_plain(exc)) from exc


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


_EVENT_COLUMNS = ("implementer_id", "event_id", "type", "day", "concept_uri", "esco_version",
                  "language", "context", "count", "label", "concept_type", "comment", "status",
                  "quarantine_reason", "received_on")
_SQLITE_INSERT = (f"insert into events ({', '.join(_EVENT_COLUMNS)}) values "
                  f"({', '.join('?' * len(_EVENT_COLUMNS))}) on conflict do nothing")
_SQLITE_EXISTING = "select event_id from events where implementer_id = ? and event_id in ({})"


# PostgreSQL: one statement with one array per column. A multi-row VALUES list would have
# 15,000 placeholders for a full request, which the driver spends longer parsing than the
# server spends inserting.
_PG_TYPES = ("integer", "text", "text", "date", "text", "text", "text", "text", "integer", "text",
             "text", "text", "text", "text", "date")
_PG_ARRAYS = ", ".join(f"%({c})s::{t}[]" for c, t in zip(_EVENT_COLUMNS, _PG_TYPES, strict=True))
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
            tuple(row[c].isoformat() if c in ("day", "received_on") else row[c]
                  for c in _EVENT_COLUMNS) for row in fresh])
    return {row["event_id"] for row in fresh}


def _outcome_rows(result: Classified, rows: list[dict], new_ids: set[str]) -> Counter:
    counts: Counter = Counter()
    for row in rows:
        if row["event_id"] in new_ids:
            counts[(row["status"], row["quarantine_reason"] or "")] += 1
        else:
            counts[(DUPLICATE, "")] += 1
    counts[(DUPLICATE, "")] += len(result.duplicates_in_request)
    for reason, n in result.rejected_reasons.items():
        counts[(REJECTED, reason)] += n
    return +counts


def _bump_counters(conn, dialect: str, implementer_id: int, today: date,
                   counts: Counter) -> None:
    if not counts:
        return
    stmt = _insert(dialect)(outcome_counts)
    stmt = stmt.on_conflict_do_update(
        index_elements=["implementer_id", "received_on", "outcome", "reason"],
        set_={"events": outcome_counts.c.events + stmt.excluded.events},
    )
    conn.execute(stmt, [
        {"implementer_id": implementer_id, "received_on": today, "outcome": outcome,
         "reason": reason, "events": n}
        for (outcome, reason), n in sorted(counts.items())
    ])


def _plain(exc: BaseException) -> str:
    """The store's complaint in one line, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0][:200] if str(orig) else type(orig).__name__


def summary(result: Classified, stored: Stored | None, dry_run_duplicates: set[str] | None = None
            ) -> dict:
    """The contract's outcome summary for a request."""
    new_ids = stored.new_event_ids if stored else set()
    accepted = quarantined = duplicates = 0
    errors = []
    for index, row in zip(result.rows_index, result.rows, strict=True):
        is_new = (row["event_id"] not in dry_run_duplicates) if dry_run_duplicates is not None \
            else (row["event_id"] in new_ids)
        if not is_new:
            duplicates += 1
            continue
        if row["status"] == QUARANTINED:
            quarantined += 1
            errors.append(result.errors[index])
        else:
            accepted += 1
    duplicates += len(result.duplicates_in_request)
    errors.extend(e for e in result.errors.values() if e["outcome"] == REJECTED)
    errors.sort(key=lambda e: e["index"])
    return {"received": result.received, "accepted": accepted, "duplicates": duplicates,
            "quarantined": quarantined, "rejected": sum(result.rejected_reasons.values()),
            "errors": errors}


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

