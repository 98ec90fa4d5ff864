"""Group commit (collector.store.GroupWriter): requests of one worker that wait while a commit
is in progress are written together in the next transaction, and each gets exactly the outcome
it would get alone, in arrival order.

The tests hold the store's write lock (a transaction of their own) so that requests pile up
behind a first one, then let go: the waiting requests are committed as one group. In-process
tests drive `collector.store.store` from threads on the real stores; the others go through a
real server (one worker, so that every request meets the same writer), including kill -9.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
import requests
from sqlalchemy import func, select, text

from collector import metrics
from collector.app import CatalogueCache
from collector.classify import classify
from collector.store import Stored, StoreUnavailable, store
from kpi.store.db import events, outcome_counts
from kpi.store.registry import add_implementer
from tests.helpers import event, post
from tests.support import NeverAnswered, retry_until_answered

RATE = 10**6  # events per minute: never in the way unless a test says so


@contextlib.contextmanager
def writes_held(settings, engine) -> Iterator[None]:
    """Hold every ingest commit of the store back until the block ends."""
    if engine.dialect.name == "sqlite":
        blocker = sqlite3.connect(settings.data_dir / "ingest.sqlite3", isolation_level=None)
        blocker.execute("begin immediate")
        try:
            yield
        finally:
            blocker.rollback()
            blocker.close()
    else:
        with engine.connect() as conn:
            # every commit starts by taking its implementer's rate-limit tokens
            conn.execute(text("lock table rate_buckets in exclusive mode"))
            try:
                yield
            finally:
                conn.rollback()


def commits_so_far() -> tuple[float, float]:
    """(transactions, requests) written by this process's collector so far."""
    samples = {s.name: s.value for s in metrics.COMMIT_REQUESTS.collect()[0].samples}
    return samples["esco_kpi_ingest_commit_requests_count"], \
        samples["esco_kpi_ingest_commit_requests_sum"]


def stored_rows(engine, implementer_id: int) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(conn.execute(
            select(events.c.event_id, events.c.status, events.c.count)
            .where(events.c.implementer_id == implementer_id)).all())


def counters(engine, implementer_id: int) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        return {(o, r): int(n) for o, r, n in conn.execute(
            select(outcome_counts.c.outcome, outcome_counts.c.reason, outcome_counts.c.events)
            .where(outcome_counts.c.implementer_id == implementer_id)).all()}


class Requests:
    """Requests of one implementer sent to `store` from threads, in a known order."""

    def __init__(self, engine, implementer_id: int):
        self.engine = engine
        self.implementer_id = implementer_id
        self.catalogue = CatalogueCache(engine).current()
        self.threads: list[threading.Thread] = []
        self.outcomes: dict[str, Stored | BaseException] = {}

    def classified(self, items: list):
        today = datetime.now(UTC).date()
        return classify(items, today, 400, self.catalogue), today

    def alone(self, items: list, rate: int = RATE, implementer_id: int | None = None,
              timeout: float = 10.0, refused: bool = False) -> Stored:
        result, today = self.classified(items)
        if refused:  # a row the store's own constraints refuse (a required column left out)
            result.rows[0]["language"] = None
        return store(self.engine, implementer_id or self.implementer_id, result, today, rate,
                     timeout)

    def start(self, name: str, items: list, rate: int = RATE, implementer_id: int | None = None,
              timeout: float = 10.0, refused: bool = False) -> None:
        def run() -> None:
            try:
                self.outcomes[name] = self.alone(items, rate, implementer_id, timeout, refused)
            except BaseException as exc:  # noqa: BLE001 - the test looks at it
                self.outcomes[name] = exc

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)
        time.sleep(0.15)  # the next one arrives after this one is waiting

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)


def scenario() -> list[tuple[str, list, int]]:
    """Requests whose outcomes depend on their order: overlapping ids, a refusal, rejects."""
    return [
        ("lead", [event(f"lead-{i}") for i in range(5)], RATE),
        ("first", [event(f"s-{i}") for i in range(20)], RATE),
        ("overlap", [event(f"s-{i}") for i in range(10, 30)], RATE),
        # capacity 10 < 25 wanted: refused, takes no tokens, claims no id
        ("refused", [event(f"r-{i}") for i in range(25)], 10),
        ("after-refused", [event(f"r-{i}") for i in range(5)] + [event("s-0")], RATE),
        ("mixed", [event("s-29"), event("q-1", concept_uri="http://data.europa.eu/esco/skill/"
                                                      "00000000-0000-0000-0000-000000000000"),
                   {"event_id": "bad-1", "type": "concept_used"}, event("m-1"), event("m-1")],
         RATE),
        ("same-again", [event(f"s-{i}") for i in range(20)], RATE),
    ]


def test_group_gives_each_request_its_outcome_alone(settings, engine):
    grouped, _ = add_implementer(engine, "Portal grouped", "DE", "job_portal")
    alone, _ = add_implementer(engine, "Portal alone", "DE", "job_portal")
    # One by one: the outcomes the group must reproduce.
    one_by_one = Requests(engine, alone.id)
    expected = {name: one_by_one.alone(items, rate) for name, items, rate in scenario()}

    sent = Requests(engine, grouped.id)
    before = commits_so_far()
    with writes_held(settings, engine):
        for name, items, rate in scenario():
            sent.start(name, items, rate)
        time.sleep(0.3)
    sent.join()
    transactions, written = (a - b for a, b in zip(commits_so_far(), before, strict=True))
    assert (transactions, written) == (2, len(scenario())), \
        "the requests behind the first were not written together"

    assert sent.outcomes == expected
    assert expected["overlap"].new_event_ids == {f"s-{i}" for i in range(20, 30)}
    assert expected["refused"].refusal and not expected["refused"].new_event_ids
    assert expected["after-refused"].new_event_ids == {f"r-{i}" for i in range(5)}
    assert expected["same-again"].new_event_ids == set()
    assert stored_rows(engine, grouped.id) == stored_rows(engine, alone.id)
    assert counters(engine, grouped.id) == counters(engine, alone.id)
    assert counters(engine, grouped.id)[("duplicate", "")] == 10 + 1 + 1 + 1 + 20


def test_a_request_the_store_refuses_fails_alone(settings, engine):
    portal, _ = add_implementer(engine, "Portal Beta", "DE", "job_portal")
    sent = Requests(engine, portal.id)
    with writes_held(settings, engine):
        sent.start("lead", [event("lead-1")])
        sent.start("a", [event("a-1"), event("shared")])
        # a row without its language: the store refuses it (not null)
        sent.start("bad", [event("b-1")], refused=True)
        sent.start("c", [event("c-1"), event("shared")])
        time.sleep(0.3)
    sent.join()
    assert isinstance(sent.outcomes["bad"], StoreUnavailable)
    assert sent.outcomes["a"] == Stored({"a-1", "shared"})
    assert sent.outcomes["c"] == Stored({"c-1"})
    assert [r[0] for r in stored_rows(engine, portal.id)] == ["a-1", "c-1", "lead-1", "shared"]
    assert counters(engine, portal.id) == {("accepted", ""): 4, ("duplicate", ""): 1}


def test_a_request_that_waits_too_long_is_not_stored_and_the_others_are(settings, engine):
    portal, _ = add_implementer(engine, "Portal Gamma", "DE", "job_portal")
    sent = Requests(engine, portal.id)
    with writes_held(settings, engine):
        sent.start("lead", [event("lead-1")])  # committed once the lock goes
        sent.start("gives-up", [event("late-1")], timeout=0.3)
        time.sleep(1.0)
    sent.join()
    assert isinstance(sent.outcomes["gives-up"], StoreUnavailable)
    assert sent.outcomes["lead"] == Stored({"lead-1"})
    assert [r[0] for r in stored_rows(engine, portal.id)] == ["lead-1"]
    assert counters(engine, portal.id) == {("accepted", ""): 1}
    # the resend of the refused request is new, not a duplicate
    assert sent.alone([event("late-1")]) == Stored({"late-1"})


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_rate_limit_decides_on_the_locked_bucket(settings, engine):
    """PostgreSQL inserts before it locks the bucket (other processes insert meanwhile); when
    the locked bucket says otherwise than its first reading, the locked one decides."""
    portal, _ = add_implementer(engine, "Portal Delta", "DE", "job_portal")
    sent = Requests(engine, portal.id)
    assert sent.alone([event("first")]) == Stored({"first"})  # the bucket exists, nearly full
    with engine.connect() as conn:
        conn.execute(text("select 1 from rate_buckets where implementer_id = :i for update"),
                     {"i": portal.id})
        sent.start("late", [event(f"late-{i}") for i in range(5)])
        time.sleep(0.5)  # it has read the bucket (full), inserted, and waits for the lock
        conn.execute(text("update rate_buckets set tokens = 0, updated_at = :t "
                          "where implementer_id = :i"), {"t": time.time() + 3600, "i": portal.id})
        conn.commit()
    sent.join()
    late = sent.outcomes["late"]
    assert isinstance(late, Stored) and late.refusal is not None and not late.new_event_ids
    assert [r[0] for r in stored_rows(engine, portal.id)] == ["first"]
    assert counters(engine, portal.id) == {("accepted", ""): 1}


# ------------------------------------------------------------------------------------------
# Through a real server: one worker, eight threads, so that requests meet in its writer.


def post_all(url: str, key: str, bodies: list[bytes]) -> list[requests.Response]:
    """POST every body at once, each from its own thread; the answers in the same order."""
    answers: list = [None] * len(bodies)

    def send(n: int) -> None:
        answers[n] = requests.post(f"{url}/v1/events", data=bodies[n], timeout=60, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {key}"})

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return answers


def served_commits(url: str) -> tuple[float, float]:
    """(transactions, requests) of the server's ingest commits, from /metrics."""
    found = {}
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        for name in ("count", "sum"):
            if line.startswith(f"esco_kpi_ingest_commit_requests_{name} "):
                found[name] = float(line.split()[1])
    return found.get("count", 0.0), found.get("sum", 0.0)


def me(url: str, key: str) -> dict:
    return requests.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {key}"},
                        timeout=10).json()


@pytest.mark.slow
def test_concurrent_resends_get_one_accepted_the_rest_duplicates(server_factory, settings,
                                                                engine, api_key):
    server = server_factory(workers=1, server__threads=8)
    assert post(server.url, api_key, [event("warm-up")]).status_code == 202
    same = orjson.dumps({"events": [event(f"same-{i}") for i in range(100)]})
    overlapping = [orjson.dumps({"events": [event(f"shared-{i}") for i in range(50)]
                                 + [event(f"own-{n}-{i}") for i in range(50)]})
                   for n in range(6)]
    with writes_held(settings, engine):
        answers: list = []
        sender = threading.Thread(target=lambda: answers.extend(
            post_all(server.url, api_key, [same] * 6 + overlapping)))
        sender.start()
        time.sleep(2.0)  # all twelve requests are in; at most eight in the writer
    sender.join(timeout=120)
    transactions, written = served_commits(server.url)
    assert written - transactions >= 2, "no commit wrote several requests"

    assert [a.status_code for a in answers] == [202] * 12, [a.text for a in answers]
    outcomes = [(a.json()["accepted"], a.json()["duplicates"]) for a in answers]
    assert sorted(outcomes[:6]) == [(0, 100)] * 5 + [(100, 0)]
    assert sorted(outcomes[6:]) == [(50, 50)] * 5 + [(100, 0)]
    with engine.connect() as conn:
        ids = conn.execute(select(events.c.event_id, func.count()).group_by(
            events.c.event_id)).all()
    assert all(n == 1 for _, n in ids) and len(ids) == 1 + 100 + 50 + 6 * 50
    totals = me(server.url, api_key)
    assert (totals["accepted"], totals["duplicates"]) == (len(ids), 5 * 100 + 5 * 50)


@pytest.mark.slow
def test_refused_requests_beside_a_group_leave_the_others_alone(server_factory, settings,
                                                                 engine, api_key):
    server = server_factory(workers=1, server__threads=8,
                            ingest__rate_limit_events_per_minute=1000)
    assert post(server.url, api_key, [event("warm-up")]).status_code == 202  # 999 tokens left
    bodies = [
        orjson.dumps({"events": [event(f"big-a-{i}") for i in range(600)]}),
        orjson.dumps({"events": [event(f"big-b-{i}") for i in range(600)]}),
        orjson.dumps({"events": [event(f"small-{i}") for i in range(300)]}),
        orjson.dumps({"events": [event(f"too-many-{i}") for i in range(1001)]}),  # 413
        b'{"events": [',  # 400
    ]
    with writes_held(settings, engine):
        answers: list = []
        sender = threading.Thread(target=lambda: answers.extend(
            post_all(server.url, api_key, bodies)))
        sender.start()
        time.sleep(2.0)
    sender.join(timeout=120)
    codes = [a.status_code for a in answers]
    assert codes[3:] == [413, 400], codes
    # 999 tokens: whatever the order, one of the two big requests is refused, the rest stored
    assert sorted(codes[:2]) == [202, 429] and codes[2] == 202, codes
    stored_big = "big-a" if codes[0] == 202 else "big-b"
    with engine.connect() as conn:
        ids = set(conn.execute(select(events.c.event_id)).scalars())
    assert ids == ({"warm-up"} | {f"{stored_big}-{i}" for i in range(600)}
                   | {f"small-{i}" for i in range(300)})
    assert [a.json()["accepted"] for n, a in enumerate(answers[:3]) if codes[n] == 202] \
        == [600, 300]
    totals = me(server.url, api_key)
    assert (totals["accepted"], totals["duplicates"], totals["rejected"]) == (901, 0, 0)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_9_under_group_commit_loses_nothing_acknowledged(server_factory, engine, api_key):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = server_factory(workers=1, server__threads=8)
    url = [server.url]
    stop = threading.Event()
    lock = threading.Lock()
    done: list[tuple[list[str], int, int, bool]] = []  # ids, accepted, duplicates, ambiguous
    errors: list[str] = []

    def client(number: int) -> None:
        deadline = time.monotonic() + 120
        sequence = 0
        while not stop.is_set():
            ids = [f"k{number}-{sequence}-{i}" for i in range(50)]
            sequence += 1
            try:
                response, ambiguous, _ = retry_until_answered(
                    lambda: url[0], api_key, orjson.dumps({"events": [event(i) for i in ids]}),
                    deadline=deadline, timeout=20)
            except NeverAnswered:
                errors.append(f"client {number}: a batch was never answered")
                return
            body = response.json()
            with lock:
                done.append((ids, body["accepted"], body["duplicates"], ambiguous))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    grouped = 0.0
    for kill in range(3):
        time.sleep(rng.uniform(1.5, 2.5))
        transactions, written = served_commits(server.url)
        grouped += written - transactions
        with lock:
            acknowledged = {i for ids, *_ in done for i in ids}
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        with engine.connect() as conn:
            stored = set(conn.execute(select(events.c.event_id)).scalars())
        lost = acknowledged - stored
        assert not lost, f"seed {seed}, kill {kill}: {len(lost)} acknowledged events lost"
        server = server_factory(workers=1, server__threads=8)
        url[0] = server.url
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert grouped > 0, "no commit wrote several requests: the load did not group"
    with engine.connect() as conn:
        counts = dict(conn.execute(select(events.c.event_id, func.count()).group_by(
            events.c.event_id)).all())
    assert all(n == 1 for n in counts.values()), "an event is stored twice"
    sent = {i for ids, *_ in done for i in ids}
    assert sent <= set(counts), f"seed {seed}: an answered event is not stored"
    for ids, accepted, duplicates, ambiguous in done:
        # a request is in one transaction, whatever its group: all of it or none before
        allowed = ((50, 0), (0, 50)) if ambiguous else ((50, 0),)
        assert (accepted, duplicates) in allowed, (ids[0], accepted, duplicates)
