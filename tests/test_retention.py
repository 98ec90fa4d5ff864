"""Raw events past storage.retention_days go once aggregated; the rollups keep counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kpi.operations.retention import prune_events
from kpi.settings import ConfigError, Settings
from kpi.store.db import events
from kpi.warehouse.indicators import Period, query
from tests.kpi_fixtures import O1, standard_store


def ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def test_prune_keeps_rollups_and_unaggregated_events(tmp_path):
    store = standard_store(tmp_path)
    store.settings = store.settings.replace(storage__retention_days=30,
                                            ingest__max_age_days=20)
    store.events({"concept_uri": O1, "count": 5, "day": ago(40)},
                 {"concept_uri": O1, "count": 2, "day": ago(3)})
    store.aggregate()
    late = store.events({"concept_uri": O1, "count": 7, "day": ago(45)})  # not aggregated yet
    assert prune_events(store.settings, store.engine) == 1
    with store.engine.connect() as conn:
        left = conn.execute(select(events.c.id).order_by(events.c.id)).scalars().all()
    assert left[-1] == late[0] and len(left) == 2
    store.aggregate()
    assert prune_events(store.settings, store.engine) == 1
    usage = query(store.settings, "most_used_concepts", Period.custom(ago(60), ago(0))).rows
    assert usage[0]["usage"] == 14  # 5 + 2 + 7: the deleted events still count
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1


def test_retention_must_outlast_max_age():
    with pytest.raises(ConfigError, match="storage.retention_days: must be more than"):
        Settings({"storage.retention_days": 400, "ingest.max_age_days": 400})
