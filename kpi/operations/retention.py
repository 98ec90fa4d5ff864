"""Retention: raw events older than `storage.retention_days` are deleted once aggregated.

The warehouse's daily rollups keep counting them. Only events at or below the published
watermark are deleted, so nothing is lost before the aggregator has read it; and since the
retention period is longer than `ingest.max_age_days`, a deleted event can never come back
as new: the collector refuses it as too old.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select

from kpi.settings import Settings
from kpi.store.db import events
from kpi.warehouse.published import read_manifest

BATCH = 10_000


def prune_events(settings: Settings, engine: Engine) -> int:
    """Delete aggregated events older than the retention period; returns how many."""
    cutoff = datetime.now(UTC).date() - timedelta(days=settings["storage.retention_days"])
    watermark = int(read_manifest(settings).get("watermark", 0))
    deleted = 0
    while True:
        # Small batches: each delete is a short write transaction beside the collector's.
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            ids = conn.execute(select(events.c.id).where(
                events.c.day < cutoff, events.c.id <= watermark).limit(BATCH)).scalars().all()
            if not ids:
                return deleted
            conn.execute(delete(events).where(events.c.id.in_(ids)))
        deleted += len(ids)
