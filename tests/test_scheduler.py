"""The aggregation runs on its schedule inside `esco-kpi serve`, and shows in /metrics."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests

from esco_kpi.server import METRICS_PREFIX
from kpi.warehouse.indicators import Period, query
from tests.helpers import SKILL, days_ago, event, post
from tests.support import children, pid_alive, port_is_free


def metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_serve_aggregates_on_schedule(server_factory, settings, api_key):
    server = server_factory(schedule__aggregate_minutes=0.05)  # every 3 seconds
    assert post(server.url, api_key, [event("s-1", count=4, occurred_at=days_ago(1)),
                                      event("s-2", count=5, occurred_at=days_ago(1))]
                ).status_code == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = requests.get(f"{server.url}/metrics", timeout=5).text
        # Backlog 0 after a run: a run read the events (later runs read none, so the
        # last run's own count may already be 0 again).
        if metric(text, "esco_kpi_aggregation_backlog_events") == 0 and metric(
                text, "esco_kpi_last_aggregation_timestamp_seconds"):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no aggregation within 60 s:\n{server.log.read_text()[-3000:]}")
    assert metric(text, "esco_kpi_last_aggregation_timestamp_seconds") > time.time() - 60
    assert metric(text, "esco_kpi_last_aggregation_duration_seconds") >= 0
    rows = query(settings, "most_used_concepts", Period.custom(days_ago(7), days_ago(0))).rows
    assert [(r["concept_uri"], r["usage"]) for r in rows] == [(SKILL, 9)]
    log = server.log.read_text()
    assert '"message": "aggregation finished"' in log and '"events_read": 2' in log
    scheduler_pid = int((settings.data_dir / "scheduler.pid").read_text())
    assert pid_alive(scheduler_pid)
    # SIGTERM to the main process only (server.stop() would also kill what is left of the
    # group, the scheduler included, and prove nothing); the fixture's teardown does that.
    server.process.terminate()
    server.process.wait(timeout=30)
    deadline = time.monotonic() + 30  # the scheduler stops with the server
    while pid_alive(scheduler_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(scheduler_pid)


def wait_for_scheduler(settings) -> int:
    pid_file = settings.data_dir / "scheduler.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return int(pid_file.read_text())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_serve_stops_at_once_and_completely(server_factory, settings, api_key, sig):
    """As a service manager, `timeout` or `kill` stop it: the signal to the main process
    alone. gunicorn's own SIGTERM waits for requests to finish and its SIGHUP reloads."""
    server = server_factory(schedule__aggregate_minutes=60)
    assert post(server.url, api_key, [event("stop-1")]).status_code == 202
    scheduler_pid = wait_for_scheduler(settings)
    workers = children(server.process.pid)
    assert scheduler_pid in workers and len(workers) >= 3  # two workers and the scheduler
    port = int(server.url.rsplit(":", 1)[1])

    def metrics_folders() -> list[Path]:
        """The serve's own folder for its workers' metrics files (in memory: /dev/shm, where
        there is one)."""
        return [p for p in (*Path("/dev/shm").glob(f"{METRICS_PREFIX}*"),
                            *(settings.data_dir / "metrics").glob(f"{METRICS_PREFIX}*"))
                if p.name.startswith(f"{METRICS_PREFIX}{server.process.pid}-")]

    assert len(metrics_folders()) == 1
    started = time.monotonic()
    server.process.send_signal(sig)
    returncode = server.process.wait(timeout=15)
    # A clean exit, well inside gunicorn's 10 s graceful timeout: an error in the stop path
    # makes gunicorn log it, wait that timeout out and exit non-zero.
    assert returncode == 0, server.log.read_text()[-2000:]
    assert time.monotonic() - started < 8
    assert "Unhandled exception" not in server.log.read_text()
    while any(pid_alive(pid, at) for pid, at in workers.items()) \
            and time.monotonic() - started < 15:
        time.sleep(0.1)
    assert not [pid for pid, at in workers.items() if pid_alive(pid, at)]
    assert port_is_free(port)
    assert metrics_folders() == []  # nor its workers' metrics files


def test_scheduler_does_not_outlive_a_killed_server(server_factory, settings):
    server = server_factory(schedule__aggregate_minutes=60)
    scheduler_pid = wait_for_scheduler(settings)
    os.kill(server.process.pid, signal.SIGKILL)  # the main process only, not its group
    server.process.wait()
    deadline = time.monotonic() + 30
    while pid_alive(scheduler_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(scheduler_pid)
