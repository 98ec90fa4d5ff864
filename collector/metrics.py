"""Prometheus metrics of the collector.

Counters live in the process; under several workers, prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by `serve`) adds them up. Figures that belong to the whole
system (backlog, last aggregation) are read from the ingest store at scrape time.
"""

from __future__ import annotations

import os
from datetime import UTC

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from sqlalchemy import Engine, func, select

from kpi.store.db import aggregation_runs, events

REQUESTS = Counter("esco_kpi_http_requests", "HTTP requests answered",
                   ["endpoint", "status"])
EVENTS = Counter("esco_kpi_events", "Events received, by outcome", ["outcome"])
INGEST_SECONDS = Histogram(
    "esco_kpi_ingest_seconds", "Time to answer POST /v1/events",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# How many requests each ingest transaction wrote (collector.store's group commit): above 1,
# requests that waited for a commit in progress shared the next one, and its fsync.
COMMIT_REQUESTS = Histogram(
    "esco_kpi_ingest_commit_requests", "Requests written by one ingest transaction",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16),
)


def _store_metrics(engine: Engine) -> str:
    with engine.connect() as conn:
        last = conn.execute(
            select(aggregation_runs).order_by(aggregation_runs.c.id.desc()).limit(1)
        ).mappings().first()
        watermark = last["watermark"] if last else 0
        backlog = conn.execute(
            select(func.count()).select_from(events).where(
                events.c.id > watermark, events.c.status == "accepted")
        ).scalar_one()
    lines = [
        "# HELP esco_kpi_aggregation_backlog_events Accepted events not yet aggregated",
        "# TYPE esco_kpi_aggregation_backlog_events gauge",
        f"esco_kpi_aggregation_backlog_events {backlog}",
    ]
    if last:
        finished = last["finished_at"]
        if finished.tzinfo is None:  # SQLite hands back naive UTC
            finished = finished.replace(tzinfo=UTC)
        stamp = finished.timestamp()
        lines += [
            "# HELP esco_kpi_last_aggregation_timestamp_seconds When the last aggregation ended",
            "# TYPE esco_kpi_last_aggregation_timestamp_seconds gauge",
            f"esco_kpi_last_aggregation_timestamp_seconds {stamp:.3f}",
            "# HELP esco_kpi_last_aggregation_duration_seconds How long it took",
            "# TYPE esco_kpi_last_aggregation_duration_seconds gauge",
            f"esco_kpi_last_aggregation_duration_seconds {last['duration_seconds']:.3f}",
            "# HELP esco_kpi_last_aggregation_events Events it read",
            "# TYPE esco_kpi_last_aggregation_events gauge",
            f"esco_kpi_last_aggregation_events {last['events_read']}",
        ]
    return "\n".join(lines) + "\n"


def render(engine: Engine) -> tuple[bytes, str]:
    """The metrics page and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest()
    try:
        text += _store_metrics(engine).encode()
    except Exception:  # noqa: BLE001 - a scrape must not fail because the store is down
        text += b"# ingest store unavailable\nesco_kpi_store_up 0\n"
    return text, CONTENT_TYPE_LATEST
