"""An ESCO analyst's day with two real releases, end to end.

Through the command line and the real HTTP server: the English, French and Dutch downloads of
ESCO 1.0.8 loaded one after another into one release, the English and German downloads of 1.2.0
after it; `catalogue diff` says what changed; portals send usage naming old code-style URIs, a
concept whose type changed, a concept 1.2.0 dropped, and labels that ESCO already had in some
release (in French and Dutch, only in 1.0.8), one form of a gendered label, and two that are
really new. After `aggregate`, every indicator and page counts each concept once, under its
current type and URI, and no label ESCO already had is reported as new.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import date, timedelta
from pathlib import Path

import requests
from dash_ag_grid import AgGrid

from dashboard.app import create_dashboard
from dashboard.callbacks import render_page
from esco_kpi.cli import main
from kpi.catalogue.labels import normalise_label
from kpi.settings import Settings
from kpi.warehouse.indicators import INDICATORS, Period, query
from tests.conftest import start_server, write_config
from tests.dashboard_world import data_of, find, texts
from tests.releases import NEWER, OLDER, release_path

KEPT = "http://data.europa.eu/esco/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34"
DROPPED = "http://data.europa.eu/esco/occupation/1b99cad3-27c6-4e19-83b6-7b5f8338ed2b"
OLD_URI = "http://data.europa.eu/esco/skill/S3.4.2"  # a 1.0.8 skill group; 1.2.0 replaced it
SUCCESSOR = "http://data.europa.eu/esco/skill/00d5d1d2-c521-4c58-9df5-2939c0ce9adb"
RETYPED = "http://data.europa.eu/esco/skill/426ceaba-6867-481c-bb6b-aee3933da7d2"  # ICT safety

# (language, label, new?): labels a portal's users gave the occupation "technical director"
LABELS = [
    ("fr", "régisseur", False),  # a French alternative label of 1.0.8 (no French in 1.2.0)
    ("fr", "Directrice technique", False),  # one form of 1.0.8's "directeur/directrice ..."
    ("nl", "Toneelmeester", False),  # a Dutch alternative label of 1.0.8
    # one form of the German gendered preferred label of 1.2.0
    ("de", "Technische Leiterin für Bühne, Film und Fernsehen", False),
    ("en", "technical director", False),  # the preferred label itself
    ("en", "stage technology manager", True),
    ("fr", "chef de plateau technique", True),
]


class Cli:
    """esco_kpi.cli.main in this process, on one config file."""

    def __init__(self, config: Path, capsys, monkeypatch) -> None:
        self.config, self.capsys, self.monkeypatch = config, capsys, monkeypatch

    def ok(self, *args: str) -> str:
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        code = main(["--config", str(self.config), *args])
        out, err = self.capsys.readouterr()
        assert code == 0, err
        return out


def test_two_releases_in_three_languages_count_each_concept_once(tmp_path, capsys,
                                                                 monkeypatch):
    settings = Settings({"storage.data_dir": str(tmp_path / "var")}, base_dir=tmp_path)
    config = write_config(settings, tmp_path)
    cli = Cli(config, capsys, monkeypatch)

    # the stores without the bundled catalogue; 1.0.8 one language download at a time
    assert "ESCO" not in cli.ok("init", "--no-catalogue").split("Stores ready")[0]
    for language in ("en", "fr", "nl"):
        download = release_path(OLDER, language, into=tmp_path / f"1.0.8-{language}")
        cli.ok("catalogue", "load", str(download), "--version", OLDER)
    cli.ok("catalogue", "load", str(release_path(NEWER, "en", into=tmp_path / "1.2.0-en")),
           str(release_path(NEWER, "de", into=tmp_path / "1.2.0-de")), "--version", NEWER)
    listed = {r["version"]: r for r in json.loads(cli.ok("catalogue", "list", "--json"))}
    assert listed[OLDER]["languages"] == ["en", "fr", "nl"]
    assert listed[NEWER]["languages"] == ["de", "en"] and listed[NEWER]["current"]

    # what changed, as ESCO's release notes would say it
    diff = json.loads(cli.ok("catalogue", "diff", OLDER, NEWER, "--json"))
    text = json.dumps(diff)
    assert OLD_URI in text and SUCCESSOR in text and DROPPED in text and RETYPED in text

    # portals send, through the real server
    server = start_server(config, tmp_path / "server.log")
    try:
        keys = [json.loads(cli.ok("implementer", "add", f"Portal {n}", "--country", country,
                                  "--sector", "job_portal", "--json"))["api_key"]
                for n, country in enumerate(("DE", "FR", "NL"), start=1)]
        day = (date.today() - timedelta(days=3)).isoformat()

        def event(n: int, **fields) -> dict:
            return {"event_id": f"e-{n}", "occurred_at": day, "language": "en", **fields}

        for portal, key in enumerate(keys):
            sent = [
                event(1, type="concept_used", concept_uri=OLD_URI, esco_version=OLDER, count=2),
                event(2, type="concept_used", concept_uri=SUCCESSOR, esco_version=NEWER),
                event(3, type="concept_used", concept_uri=RETYPED, esco_version=OLDER),
                event(4, type="concept_used", concept_uri=DROPPED),
                event(5, type="concept_used", concept_uri=KEPT, esco_version=NEWER),
            ] + [event(10 + i, type="label_added", concept_uri=KEPT, language=language,
                       label=label) for i, (language, label, _) in enumerate(LABELS)]
            answer = requests.post(f"{server.url}/v1/events", json={"events": sent},
                                   headers={"Authorization": f"Bearer {key}"}, timeout=30)
            assert answer.status_code == 202, answer.text
            assert answer.json()["accepted"] == len(sent), (portal, answer.json())
    finally:
        server.stop()
    cli.ok("aggregate")

    period = Period.custom(date.today() - timedelta(days=30), date.today())
    used = query(settings, "most_used_concepts", period).rows
    by_uri = {r["concept_uri"]: r for r in used}
    assert len(by_uri) == len(used)  # each concept once
    assert OLD_URI not in by_uri and by_uri[SUCCESSOR]["usage"] == 3 * (2 + 1)
    assert by_uri[RETYPED]["concept_type"] == "skill"
    assert by_uri[DROPPED]["status"] == "absent" and by_uri[DROPPED]["last_release"] == OLDER
    skills = {r["concept_uri"] for r in query(settings, "most_used_concepts", period,
                                              concept_type="skill").rows}
    groups = {r["concept_uri"] for r in query(settings, "most_used_concepts", period,
                                              concept_type="skill_group").rows}
    assert RETYPED in skills and RETYPED not in groups and SUCCESSOR in groups

    # every indicator: no replaced URI, no concept twice in one row set of one kind
    for name in INDICATORS:
        result = query(settings, name, period)
        if "concept_uri" not in result.columns:
            continue
        assert not any(r["concept_uri"] == OLD_URI for r in result.rows), name
        if name in ("most_used_concepts", "least_used_concepts"):
            uris = [r["concept_uri"] for r in result.rows]
            assert len(uris) == len(set(uris)), name

    candidates = query(settings, "candidate_alt_labels", period).rows
    assert {(r["language"], normalise_label(r["label"])) for r in candidates} == {
        (language, normalise_label(label)) for language, label, new in LABELS if new}
    assert all(r["implementers"] == 3 for r in candidates)
    quality = query(settings, "data_quality", period).rows
    assert not [r for r in quality if r["outcome"] == "flagged"]  # each named a holding release

    # the pages say the same
    data = data_of(create_dashboard(settings))
    query_string = f"?period=custom&start={period.start}&end={period.end}"
    concepts_page = " ".join(texts(render_page(data, "/dashboard/concepts", query_string)[0]))
    assert OLD_URI not in concepts_page
    labels_page = render_page(data, "/dashboard/labels", query_string)[0]
    grid = find(labels_page, lambda c: isinstance(c, AgGrid)
                and c.id["table"] == "candidate_alt_labels")[0]
    assert sorted(normalise_label(r["label"]) for r in grid.rowData) == sorted(
        normalise_label(label) for _, label, new in LABELS if new)
    concept_page = " ".join(texts(render_page(
        data, "/dashboard/concept", f"{query_string}&concept={SUCCESSOR}")[0]))
    assert OLD_URI in concept_page  # "also counts events sent as ..."

