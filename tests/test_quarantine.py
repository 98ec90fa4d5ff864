"""Quarantined events start to count, once, after a release that knows them is loaded."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import func, select

from collector.app import create_app
from kpi.catalogue.load import load_catalogue
from kpi.catalogue.quarantine import replay
from kpi.store.db import events
from kpi.warehouse.aggregate import run_aggregation
from kpi.warehouse.indicators import Period, query
from tests.conftest import write_config
from tests.helpers import SKILL, days_ago, event

NEW_SKILL = "http://data.europa.eu/esco/skill/new-in-1-3-0"


def write_release(folder) -> None:
    folder.mkdir()
    (folder / "skills_en.csv").write_text(
        "conceptType,conceptUri,preferredLabel,altLabels\n"
        f"KnowledgeSkillCompetence,{NEW_SKILL},use generative AI,\n"
        f"KnowledgeSkillCompetence,{SKILL},manage musical staff,\n", encoding="utf-8")


def usage_of(settings, uri: str) -> int:
    period = Period.custom(days_ago(30), days_ago(0))
    rows = query(settings, "most_used_concepts", period).rows
    return sum(r["usage"] for r in rows if r["concept_uri"] == uri)


def test_replay_counts_quarantined_events_once(settings, engine, api_key, tmp_path):
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {api_key}"}
    sent = client.post("/v1/events", headers=headers, json={"events": [
        event("q-1", concept_uri=NEW_SKILL, count=7, occurred_at=days_ago(2)),
        event("q-2", esco_version="1.3.0", count=2, occurred_at=days_ago(2)),
        event("ok-1", count=1, occurred_at=days_ago(2)),
    ]})
    assert sent.json["quarantined"] == 2
    run_aggregation(settings)
    assert usage_of(settings, NEW_SKILL) == 0
    assert usage_of(settings, SKILL) == 1

    nothing = replay(engine)  # the catalogue has not changed: nothing to release
    assert (nothing.checked, nothing.released) == (2, 0)

    write_release(tmp_path / "esco-1.3.0")
    load_catalogue(engine, tmp_path / "esco-1.3.0", "1.3.0")
    released = replay(engine)
    assert (released.checked, released.released, released.still_quarantined) == (2, 2, 0)
    assert replay(engine).checked == 0
    run_aggregation(settings)
    run_aggregation(settings)
    assert usage_of(settings, NEW_SKILL) == 7
    assert usage_of(settings, SKILL) == 3
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 3
    # a resend is still a duplicate: the de-duplication key survived the release
    again = client.post("/v1/events", headers=headers, json={"events": [
        event("q-1", concept_uri=NEW_SKILL, count=7, occurred_at=days_ago(2))]})
    assert again.json["duplicates"] == 1


def test_replay_command(settings, engine, api_key, tmp_path):
    config = write_config(settings, tmp_path)
    client = create_app(settings).test_client()
    client.post("/v1/events", headers={"Authorization": f"Bearer {api_key}"},
                json={"events": [event("q-1", concept_uri=NEW_SKILL)]})
    result = subprocess.run([sys.executable, "-m", "esco_kpi.cli", "--config", str(config),
                             "quarantine", "replay"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Checked 1 quarantined events: 0 now count" in result.stdout
