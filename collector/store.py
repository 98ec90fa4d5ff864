"""Committing classified requests: the events and the outcome counters, durably, before the 202.

A request's commit takes its rate-limit tokens, inserts its new events (a resend of an
`(implementer, event_id)` already stored is a duplicate) and bumps the outcome counters
(accepted, duplicate, quarantined, rejected, and beside them `flagged`: counted events that
data quality reports, such as an ESCO version lacking the concept).

Group commit: the requests of one worker process that wait while a commit is in progress are
written together in the next transaction, one fsync for all of them (`GroupWriter`). Each
request's outcome is exactly what it would be alone, in the order the requests arrived: a
later request of the group carrying an event_id of an earlier one gets "duplicate", a request
the rate limit refuses takes no tokens and stores nothing while the others go on, and each is
answered only once the transaction holding its events has committed. When the transaction
cannot commit, every request of it gets StoreUnavailable (a 503: nothing acknowledged).
Which events are accepted, quarantined or rejected was decided before, by collector.classify.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from operator import itemgetter

import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

from collector import metrics
from collector.classify import DUPLICATE, REJECTED, Classified
from collector.ratelimit import Refusal, take_tokens_each
from kpi.store.counters import bump_outcome_counts
from kpi.store.db import events, store_error
from kpi.vocabulary import FLAGGED

# A group stops growing at this many requests or events: a longer transaction would hold the
# write lock (and its first request's answer) longer than the fsync it saves is worth.
MAX_GROUP_REQUESTS = 16
MAX_GROUP_EVENTS = 8_000


class StoreUnavailable(Exception):
    """The store could not commit: the request is answered 503 and nothing is acknowledged."""


@dataclass
class Stored:
    """What the store made of the valid rows."""

    new_event_ids: set[str]
    refusal: Refusal | None = None


def store(engine: Engine, implementer_id: int, result: Classified, today: date,
          rate_per_minute: int, timeout: float = 10.0) -> Stored:
    """Commit the request (possibly with other requests of this process, see GroupWriter);
    return once its events are durable, or raise StoreUnavailable if that cannot be done."""
    request = _Request(implementer_id, result, today, rate_per_minute)
    if engine.dialect.name != "postgresql":
        # before the write turn: the other processes' commits need not wait for this
        request.values = _values(implementer_id, today, result.rows)
    return _writer(engine).write(engine, request, timeout)


@dataclass(eq=False)
class _Request:
    """A request waiting for its commit, and then its outcome."""

    implementer_id: int
    result: Classified
    today: date
    rate_per_minute: int
    values: list[tuple] | None = None  # SQLite: the rows' values, in the order of the rows
    taken: bool = False  # in a group being committed: its outcome is on the way
    done: bool = False
    stored: Stored | None = None
    error: StoreUnavailable | None = None


class GroupWriter:
    """The writer of one store in one process: commits the requests waiting for it in groups.

    No thread of its own: the first request that finds no commit in progress commits every
    request waiting at that moment (its own included, up to MAX_GROUP_*); those arriving in
    the meantime wait, and the next of them to wake up commits them all together. A request
    that has not been taken into a group within its timeout gives up (StoreUnavailable); one
    that has been taken waits for its group's outcome, which the store's own timeouts bound.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[_Request] = []
        self._busy = False

    def write(self, engine: Engine, request: _Request, timeout: float) -> Stored:
        """Commit `request` with whatever else is waiting; its outcome, or StoreUnavailable."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting.append(request)
        while True:
            with self._cond:
                while self._busy and not request.done:
                    if request.taken:
                        self._cond.wait()
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self._waiting.remove(request)
                        raise StoreUnavailable("the store is busy")
                    self._cond.wait(remaining)
                if request.done:
                    if request.error is not None:
                        raise request.error
                    assert request.stored is not None
                    return request.stored
                group = self._take()
                self._busy = True
            try:
                _commit(engine, group, timeout)
            finally:
                with self._cond:
                    for member in group:
                        if not member.done:  # an unexpected exception left it unanswered
                            member.error = member.error or StoreUnavailable("the commit failed")
                            member.done = True
                    self._busy = False
                    self._cond.notify_all()

    def _take(self) -> list[_Request]:
        """The waiting requests of the next group, in the order they arrived."""
        group: list[_Request] = []
        events_in_group = 0
        while self._waiting and len(group) < MAX_GROUP_REQUESTS:
            size = len(self._waiting[0].result.rows)
            if group and events_in_group + size > MAX_GROUP_EVENTS:
                break
            request = self._waiting.pop(0)
            request.taken = True
            group.append(request)
            events_in_group += size
        return group


_writers: weakref.WeakKeyDictionary[Engine, tuple[int, GroupWriter]] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def _writer(engine: Engine) -> GroupWriter:
    with _writers_lock:
        found = _writers.get(engine)
        # A forked child must not share its parent's lock state: one writer per process.
        if found is None or found[0] != os.getpid():
            found = _writers[engine] = (os.getpid(), GroupWriter())
        return found[1]


def _commit(engine: Engine, group: list[_Request], timeout: float) -> None:
    """Commit the group in one transaction and set every request's outcome."""
    try:
        outcomes = _commit_group(engine, group, timeout)
    except (DataError, IntegrityError) as exc:
        if len(group) == 1:
            _fail(group, StoreUnavailable(store_error(exc)))
            return
        # The store refused a row: commit each request alone, so that only the request
        # holding it fails.
        for request in group:
            _commit(engine, [request], timeout)
        return
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        _fail(group, StoreUnavailable(store_error(exc)))
        return
    except StoreUnavailable as exc:
        _fail(group, exc)
        return
    metrics.COMMIT_REQUESTS.observe(len(group))
    for request, stored in zip(group, outcomes, strict=True):
        request.stored = stored
        request.done = True


def _fail(group: list[_Request], error: StoreUnavailable) -> None:
    for request in group:
        request.error = error
        request.done = True


class _Mispredicted(Exception):
    """The rate limit decided otherwise once its bucket was locked than when it was read."""


def _commit_group(engine: Engine, group: list[_Request], timeout: float) -> list[Stored]:
    """One transaction for the group: tokens, new events, counters. The outcomes per request,
    valid only once this returns (committed)."""
    if engine.dialect.name != "postgresql":
        return _commit_group_once(engine, group, timeout, optimistic=False)
    try:
        return _commit_group_once(engine, group, timeout, optimistic=True)
    except _Mispredicted:  # rare: only near the limit, and only with concurrent requests
        return _commit_group_once(engine, group, timeout, optimistic=False)


def _commit_group_once(engine: Engine, group: list[_Request], timeout: float,
                       optimistic: bool) -> list[Stored]:
    """The group's transaction. Not optimistic: each implementer's bucket is taken first
    (PostgreSQL: locked until the commit), then the admitted requests' events are inserted.
    Optimistic (PostgreSQL): the buckets are read without a lock to know which requests to
    insert, and locked only after the insert, so that requests of one implementer in other
    processes insert at the same time instead of queueing on the bucket for the whole insert;
    if the locked buckets decide otherwise, _Mispredicted (the transaction is rolled back)."""
    dialect = engine.dialect.name
    by_implementer: dict[int, list[int]] = {}
    for position, request in enumerate(group):
        by_implementer.setdefault(request.implementer_id, []).append(position)
    # Sorted: PostgreSQL locks each implementer's bucket row, and two processes taking several
    # in different orders could deadlock.
    implementers = sorted(by_implementer)
    outcomes: list[Stored] = [Stored(set()) for _ in group]

    def take(conn: Connection, implementer_id: int, now: float, dry_run: bool
             ) -> list[Refusal | None]:
        positions = by_implementer[implementer_id]
        return take_tokens_each(conn, implementer_id, [
            (group[p].result.received, group[p].rate_per_minute) for p in positions], now,
            dry_run=dry_run)

    with _write_turn(engine, timeout), engine.connect().execution_options(write=True) as conn, \
            conn.begin():
        now = time.time()  # in the write turn: the buckets' times only move forward
        decided = {i: take(conn, i, now, optimistic) for i in implementers}
        fresh: list[tuple[int, list[dict]]] = []  # per admitted request: (position, new rows)
        for implementer_id in implementers:
            admitted = [p for p, refusal in zip(by_implementer[implementer_id],
                                                decided[implementer_id], strict=True)
                        if not refusal]
            fresh.extend(_claim(conn, dialect, implementer_id,
                                [(p, group[p].result.rows) for p in admitted]))
        if dialect == "postgresql":
            # another process may have stored some of them since: the insert says which
            inserted = _insert_pg(conn, [(group[p].implementer_id, group[p].today, p, rows)
                                         for p, rows in fresh])
        else:
            inserted = {p: {row["event_id"] for row in rows} for p, rows in fresh}
            values: list[tuple] = []
            for position, rows in fresh:
                mine = group[position].values or []
                if len(rows) < len(mine):  # some are duplicates: their values stay out
                    new_ids = inserted[position]
                    mine = [v for v in mine if v[1] in new_ids]
                values.extend(mine)
            _insert_sqlite(conn, values)
        if optimistic:
            for implementer_id in implementers:
                answers = take(conn, implementer_id, now, False)
                if [bool(a) for a in answers] != [bool(a) for a in decided[implementer_id]]:
                    raise _Mispredicted
                decided[implementer_id] = answers
        for implementer_id in implementers:
            for position, refusal in zip(by_implementer[implementer_id], decided[implementer_id],
                                         strict=True):
                outcomes[position].refusal = refusal
        counts: Counter = Counter()
        for position, _rows in fresh:
            request = group[position]
            new_ids = inserted.get(position, set())
            outcomes[position].new_event_ids = new_ids
            for (outcome, reason), n in _outcome_rows(request.result, new_ids).items():
                counts[(request.implementer_id, request.today, outcome, reason)] += n
        bump_outcome_counts(conn, counts)
    return outcomes


def _claim(conn: Connection, dialect: str, implementer_id: int,
           requests: list[tuple[int, list[dict]]]) -> list[tuple[int, list[dict]]]:
    """Per request of one implementer, in order: the rows whose event_id neither the store nor
    an earlier request of the group holds."""
    if not requests:
        return []
    taken: set[str] = set()
    if dialect != "postgresql":
        # SQLite: the transaction began IMMEDIATE, so no other writer runs between this
        # look-up and the insert. (PostgreSQL: ON CONFLICT in the insert says it.)
        taken = _existing_sqlite(conn, implementer_id,
                                 [row["event_id"] for _, rows in requests for row in rows])
    claimed = []
    for position, rows in requests:
        mine = [row for row in rows if row["event_id"] not in taken]
        taken.update(row["event_id"] for row in mine)
        claimed.append((position, mine))
    return claimed


# The columns of kpi.store.db.events that a request fills, in the order of `_values`: all but
# the id, which the store hands out.
_INSERT_COLUMNS = ("implementer_id", "event_id", "type", "day", "concept_uri", "esco_version",
                   "language", "context", "count", "label", "concept_type", "comment", "status",
                   "quarantine_reason", "received_on")
if {c.name for c in events.columns if not c.primary_key} != set(_INSERT_COLUMNS):
    # A column added to the table must be filled here too (or deliberately left out).
    raise RuntimeError("collector.store: _INSERT_COLUMNS does not match the events table")


def _values(implementer_id: int, today: date, rows: list[dict]) -> list[tuple]:
    """SQLite: the rows' values in the order of _INSERT_COLUMNS, dates as ISO text."""
    days: dict[date, str] = {}  # a batch holds a few distinct days

    def day_value(day: date) -> str:
        found = days.get(day)
        if found is None:
            found = days[day] = day.isoformat()
        return found

    received = today.isoformat()
    return [(implementer_id, row["event_id"], row["type"], day_value(row["day"]),
             row.get("concept_uri"), row["esco_version"], row["language"], row["context"],
             row["count"], row.get("label"), row.get("concept_type"), row.get("comment"),
             row["status"], row["quarantine_reason"], received)
            for row in rows]


def _insert_sqlite(conn: Connection, values: list[tuple]) -> None:
    """Insert the rows (known to be new: see _claim)."""
    # Multi-row VALUES statements of 2^k rows (at most ~10 distinct statements, all kept
    # prepared by the driver) instead of executemany: the driver releases the GIL around
    # every row of an executemany, and under load each release lets a busy thread of the
    # process take it for up to the switch interval (5 ms), which made the commit of a
    # 1,000-event request tens of milliseconds long. It is also faster alone.
    most = _sqlite_rows_per_statement(conn)
    start = 0
    while start < len(values):
        n = min(most, 1 << ((len(values) - start).bit_length() - 1))
        conn.exec_driver_sql(_sqlite_insert(n), tuple(itertools.chain.from_iterable(
            values[start:start + n])))
        start += n


# PostgreSQL: one statement per request with the rows as one JSON parameter, which the server
# turns into records (json_to_recordset). Row by row in the driver (a multi-row VALUES list of
# 15,000 placeholders, or 15 arrays of 1,000 values) costs more in Python than the server
# spends inserting; the JSON is written by orjson in C from the classified rows as they are.
# The records take the columns' types without a length (VARCHAR(64) -> VARCHAR): storing one
# in the column then fails on a longer value, where a cast to the length would cut it short.
def _pg_type(column) -> str:
    return re.sub(r"\(.*\)", "", column.type.compile(dialect=postgresql.dialect()))


_PG_FIELDS = _INSERT_COLUMNS[1:-1]  # all but implementer_id and received_on
_PG_INSERT = (
    f"insert into events ({', '.join(_INSERT_COLUMNS)}) select %(implementer_id)s, "
    + ", ".join(f'r."{c}"' for c in _PG_FIELDS)
    + ", %(received_on)s from json_to_recordset(%(rows)s::json) as r("
    + ", ".join(f'"{c}" {_pg_type(events.c[c])}' for c in _PG_FIELDS)
    + ") on conflict (implementer_id, event_id) do nothing returning event_id")


def _insert_pg(conn: Connection, requests: list[tuple[int, date, int, list[dict]]]
               ) -> dict[int, set[str]]:
    """Insert the rows that are new, for each (implementer id, day of arrival, position,
    rows); return each position's new event ids.

    One statement per implementer and day, its rows sorted by event_id: two transactions
    inserting some of the same ids then meet them in the same order, so that one waits for
    the other instead of each waiting for the other (a deadlock)."""
    merged: dict[tuple[int, date], list[dict]] = {}
    owner: dict[tuple[int, str], int] = {}  # claimed rows are distinct within the group
    for implementer_id, today, position, rows in requests:
        merged.setdefault((implementer_id, today), []).extend(rows)
        for row in rows:
            owner[(implementer_id, row["event_id"])] = position
    new: dict[int, set[str]] = {}
    for (implementer_id, today), rows in sorted(merged.items()):
        if not rows:
            continue
        rows.sort(key=itemgetter("event_id"))
        result = conn.exec_driver_sql(_PG_INSERT, {
            "implementer_id": implementer_id, "received_on": today,
            "rows": orjson.dumps(rows).decode()})
        for (event_id,) in result.all():
            new.setdefault(owner[(implementer_id, event_id)], set()).add(event_id)
    return new


_ROW_PLACEHOLDERS = "(" + ", ".join("?" * len(_INSERT_COLUMNS)) + ")"
_SQLITE_INSERTS: dict[int, str] = {}


def _sqlite_insert(rows: int) -> str:
    sql = _SQLITE_INSERTS.get(rows)
    if sql is None:
        sql = _SQLITE_INSERTS[rows] = (
            f"insert into events ({', '.join(_INSERT_COLUMNS)}) values "
            + ", ".join([_ROW_PLACEHOLDERS] * rows) + " on conflict do nothing")
    return sql


def _sqlite_rows_per_statement(conn: Connection) -> int:
    """The largest power of two <= 512 that fits the connection's bound-parameter limit."""
    limit = 999  # SQLite's limit before 3.32
    driver = conn.connection.driver_connection
    if hasattr(driver, "getlimit"):
        limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    rows = max(1, min(512, limit // len(_INSERT_COLUMNS)))
    return 1 << (rows.bit_length() - 1)


# Look-ups of stored event ids, padded to a few fixed sizes so that the driver keeps each
# statement prepared.
_LOOKUP_SIZES = (16, 128, 512)
_LOOKUPS = {size: "select event_id from events where implementer_id = ? and event_id in ("
            + ", ".join("?" * size) + ")" for size in _LOOKUP_SIZES}


def _existing_sqlite(conn: Connection, implementer_id: int, ids: list[str]) -> set[str]:
    found: set[str] = set()
    biggest = _LOOKUP_SIZES[-1]
    for start in range(0, len(ids), biggest):
        chunk = ids[start:start + biggest]
        size = next(s for s in _LOOKUP_SIZES if s >= len(chunk))
        chunk += [chunk[-1]] * (size - len(chunk))
        found.update(r[0] for r in conn.exec_driver_sql(_LOOKUPS[size], (implementer_id, *chunk)))
    return found


def _outcome_rows(result: Classified, new_ids: set[str]) -> Counter:
    """(outcome, reason) -> events. A flagged event is counted under its own outcome too:
    flags are an extra row beside it, and only for new events, so a resend adds nothing."""
    counts: Counter = Counter()
    flags = result.flags
    for row in result.rows:
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
        """Hold the write turn of the file (StoreUnavailable after `timeout` seconds)."""
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
