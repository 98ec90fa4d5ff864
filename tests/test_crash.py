"""kill -9 mid-load (docs/RELIABILITY.md; README "Durability").

Four client threads send batches of 200 events with unique ids and retry 429, 503 and network
failures with the same ids, as a portal would. The whole server process group is SIGKILLed at a
random moment, three times, and restarted on the same store. Afterwards every acknowledged
event is stored exactly once, every id sent is stored, and no batch is half-stored.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass

import orjson
import pytest
import requests
from sqlalchemy import func, select

from kpi.store.db import events
from tests.helpers import event
from tests.support import NeverAnswered, retry_until_answered

CLIENTS = 4
BATCH = 200
KILLS = 3
DEADLINE_SECONDS = 90


@dataclass
class Batch:
    ids: list[str]
    status: int = 0
    accepted: int = 0
    duplicates: int = 0
    other: int = 0  # quarantined + rejected: must stay 0
    ambiguous: bool = False  # a network failure happened: an earlier attempt may have committed
    attempts: int = 0  # attempts answered (429, 503 or the final answer)


class Load:
    """The clients: send batches until told to stop, each batch retried until it is answered."""

    def __init__(self, url: str, key: str):
        self.url = url
        self.key = key
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done: list[Batch] = []
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                        for n in range(CLIENTS)]

    def acknowledged(self) -> set[str]:
        with self.lock:
            return {i for batch in self.done for i in batch.ids}

    def _client(self, number: int) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        sequence = 0
        while not self.stop.is_set():
            batch = Batch([f"c{number}-b{sequence}-e{i}" for i in range(BATCH)])
            sequence += 1
            payload = orjson.dumps({"events": [event(i) for i in batch.ids]})

            def answered(_started: float, _ended: float, _response, batch=batch) -> None:
                batch.attempts += 1

            try:  # the url changes when the server is restarted
                response, batch.ambiguous, _ = retry_until_answered(
                    lambda: self.url, self.key, payload, deadline=deadline, timeout=20,
                    on_answer=answered)
            except NeverAnswered:
                self.errors.append(f"client {number}: batch never answered")
                return
            body = response.json()
            batch.status = response.status_code
            batch.accepted, batch.duplicates = body["accepted"], body["duplicates"]
            batch.other = body["quarantined"] + body["rejected"]
            with self.lock:
                self.done.append(batch)


def stored_ids(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(
            select(events.c.event_id, func.count()).group_by(events.c.event_id)).all())


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_kill_9_mid_load_loses_and_doubles_nothing(server_factory, engine, api_key):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = server_factory(workers=2)
    load = Load(server.url, api_key)
    for thread in load.threads:
        thread.start()
    for kill in range(KILLS):
        time.sleep(rng.uniform(1.0, 2.0))
        acknowledged = load.acknowledged()
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        # Durability: whatever was answered 202 before the kill is on the store.
        after_kill = stored_ids(engine)
        lost = acknowledged - set(after_kill)
        assert not lost, f"seed {seed}, kill {kill}: {len(lost)} acknowledged events lost"
        server = server_factory(workers=2)
        load.url = server.url
    time.sleep(1.0)
    load.stop.set()
    for thread in load.threads:
        thread.join(timeout=DEADLINE_SECONDS)
    assert not load.errors, load.errors

    sent = [i for batch in load.done for i in batch.ids]
    assert len(sent) == len(set(sent))
    assert len(load.done) >= CLIENTS * 4, "the load was too small to be killed mid-way"
    stored = stored_ids(engine)
    assert not {i: n for i, n in stored.items() if n != 1}, "an event is stored twice"
    assert set(stored) == set(sent), f"seed {seed}: stored ids differ from the ids sent"
    for batch in load.done:
        assert batch.status == 202 and batch.other == 0, batch
        # One transaction per request: all of a batch was stored before, or none of it.
        if batch.ambiguous:
            assert (batch.accepted, batch.duplicates) in ((BATCH, 0), (0, BATCH)), batch
        else:  # only 503/429 before: nothing of those attempts may have been stored
            assert (batch.accepted, batch.duplicates) == (BATCH, 0), batch
    assert any(batch.ambiguous for batch in load.done), "no request was in flight at a kill"
    # The outcome counters are committed with the events: the acknowledged count is the same.
    me = requests.get(f"{server.url}/v1/me", headers={"Authorization": f"Bearer {api_key}"},
                      timeout=10).json()
    assert me["accepted"] == len(stored)
    assert me["rejected"] == me["quarantined"] == 0
    assert me["duplicates"] >= sum(batch.duplicates for batch in load.done)
