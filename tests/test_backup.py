"""Backup while serving, restore into empty stores, and carry on aggregating."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from kpi.operations.backup import BackupError, backup, restore
from kpi.settings import Settings
from kpi.store.db import events, make_engine
from kpi.warehouse.aggregate import AggregationBusy, run_aggregation
from kpi.warehouse.indicators import Period, query
from tests.helpers import days_ago, event, post
from tests.support import fresh_store


def aggregate(settings: Settings) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            run_aggregation(settings)
            return
        except AggregationBusy:  # the server's scheduler is on it
            assert time.monotonic() < deadline
            time.sleep(0.2)


@pytest.fixture
def target(backend, tmp_path, request) -> Iterator[Settings]:
    """Empty stores of the same kind, to restore into."""
    with fresh_store(request, backend, tmp_path / "restored", empty=True,
                     prefix="esco_kpi_r") as settings:
        yield settings


def count_events(settings: Settings) -> int:
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar_one()
    finally:
        engine.dispose()


def test_backup_while_serving_then_restore(server_factory, settings, api_key, target, tmp_path):
    server = server_factory(schedule__aggregate_minutes=60)
    for b in range(3):
        batch = [event(f"b{b}-{i}", count=2, occurred_at=days_ago(i % 20)) for i in range(100)]
        assert post(server.url, api_key, batch).status_code == 202
    aggregate(settings)
    acknowledged_before = count_events(settings)

    stop = threading.Event()

    def keep_sending() -> None:
        n = 0
        while not stop.is_set():
            post(server.url, api_key, [event(f"live-{n}-{i}") for i in range(50)])
            n += 1

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        time.sleep(0.3)
        summary = backup(settings, tmp_path / "backups")
    finally:
        stop.set()
        sender.join()
    assert summary.folder.name.startswith("esco-kpi-backup-")

    restore(target, summary.folder)
    restored = count_events(target)
    assert acknowledged_before <= restored <= summary.events
    run_aggregation(target)  # carries on from the backed-up watermark, without complaint
    usage = sum(r["usage"] for r in query(target, "most_used_concepts",
                                          Period.custom(days_ago(60), days_ago(0))).rows)
    engine = make_engine(target)
    with engine.connect() as conn:
        expected = conn.execute(select(func.sum(events.c.count)).where(
            events.c.status == "accepted", events.c.type == "concept_used")).scalar_one()
    engine.dispose()
    assert usage == expected

    with pytest.raises(BackupError, match="already holds events"):
        restore(target, summary.folder)
    restore(target, summary.folder, force=True)
    assert count_events(target) == restored


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_damaged_or_foreign_backups_are_refused(settings, target, tmp_path):
    summary = backup(settings, tmp_path / "backups")
    with pytest.raises(BackupError, match="not an esco-kpi backup"):
        restore(target, tmp_path)
    (summary.folder / "ingest.sqlite3").write_bytes(b"garbage")
    with pytest.raises(BackupError, match="damaged: ingest.sqlite3"):
        restore(target, summary.folder)
