"""Ingest, aggregate, read and export all at once: no lock errors, and the numbers add up."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from kpi.exports.quarterly import ExportError, export_quarter
from kpi.warehouse.aggregate import AggregationBusy, run_aggregation
from kpi.warehouse.indicators import Period, query
from tests.helpers import days_ago, event, post

pytestmark = pytest.mark.slow


def test_everything_at_once(server_factory, settings, api_key, tmp_path):
    server = server_factory(schedule__aggregate_minutes=0.05)  # the scheduler runs too
    stop = threading.Event()
    errors: list[BaseException] = []
    sent_usage = [0] * 3
    counters = {"aggregations": 0, "queries": 0, "exports": 0}
    period = Period.custom(days_ago(30), days_ago(0))
    today = datetime.now(UTC).date()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"

    def guarded(work):
        def run() -> None:
            try:
                while not stop.is_set():
                    work()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
        return run

    def client(n: int):
        batch_no = 0

        def send() -> None:
            nonlocal batch_no
            batch = [event(f"c{n}-{batch_no}-{i}", count=1 + i % 3, occurred_at=days_ago(i % 9))
                     for i in range(100)]
            response = post(server.url, api_key, batch)
            if response.status_code == 202:
                sent_usage[n] += sum(e["count"] for e in batch)
                assert response.json()["accepted"] == 100
            else:
                assert response.status_code in (429, 503), response.text
            batch_no += 1
            time.sleep(0.05)  # a steady flow, not a flood: the point is overlap
        return send

    def aggregate() -> None:
        try:
            run_aggregation(settings)
            counters["aggregations"] += 1
        except AggregationBusy:
            time.sleep(0.05)

    def read() -> None:
        query(settings, "most_used_concepts", period)
        query(settings, "language_usage", period)
        counters["queries"] += 1

    def export() -> None:
        try:
            export_quarter(settings, quarter, tmp_path / "exports")
            counters["exports"] += 1
        except ExportError:  # nothing aggregated yet
            time.sleep(0.1)

    threads = [threading.Thread(target=guarded(client(n))) for n in range(3)]
    threads += [threading.Thread(target=guarded(work)) for work in (aggregate, read, export)]
    for thread in threads:
        thread.start()
    time.sleep(8)
    deadline = time.monotonic() + 120  # a loaded machine may need longer for the first rounds
    while not all(counters.values()) and not errors and time.monotonic() < deadline:
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert counters["aggregations"] and counters["queries"] and counters["exports"], counters

    while True:
        try:
            run_aggregation(settings)
            break
        except AggregationBusy:
            time.sleep(0.1)
    counted = sum(r["usage"] for r in query(settings, "most_used_concepts", period).rows)
    assert counted == sum(sent_usage) > 0
