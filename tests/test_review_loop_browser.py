"""The review loop end to end, in a real browser against the real server.

ESCO 1.0.8 is loaded (tests/data/releases, the real release cut small). Three portals send,
through the API, a label that ESCO 1.2.0 later added to its occupation, a proposal of an
occupation that 1.2.0 added, and a label that no release has. A reviewer works through the
queue on the Review page in Chromium: accepts the two, rejects the third with a reason, and
downloads the hand-over for the editors. Then 1.2.0 is loaded with `esco-kpi catalogue load`,
which reports what it took up; the Review page shows both as released, and each portal's
`GET /v1/me/suggestions` says the same.
"""

from __future__ import annotations

import csv
import io
import sys
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from rdflib import Graph

from esco_kpi.cli import main
from kpi.catalogue.labels import normalise_label
from kpi.review.items import item_id
from kpi.settings import Settings
from kpi.store.db import init_store, make_engine
from kpi.store.registry import add_implementer, add_user
from tests.conftest import start_server, write_config
from tests.releases import NEWER, OLDER, release_path

LABELLED = "http://data.europa.eu/esco/occupation/00674f21-2f8f-4a41-9896-133f7cbe2a6e"
LABEL = "Elementary School Teaching Assistant"  # an alternative label 1.2.0 added
PROPOSED = "medical writer"  # an occupation that 1.2.0 added
ADDED_OCCUPATION = "http://data.europa.eu/esco/occupation/01d74409-5303-4b5c-8925-0cc21c4da8ee"
REJECTED = "classroom helper bee"  # in no release
REVIEWER = ("eva", "password-eva-123")

L_ITEM = item_id("label", LABELLED, "en", normalise_label(LABEL))
P_ITEM = item_id("proposal", "occupation", "en", normalise_label(PROPOSED))
R_ITEM = item_id("label", LABELLED, "en", normalise_label(REJECTED))


def cli(config: Path, capsys, monkeypatch, *args: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.browser
def test_a_reviewer_works_the_queue_and_a_release_takes_it_up(tmp_path, capsys, monkeypatch):
    from selenium.webdriver.common.by import By

    from tests.test_dashboard_browser import (
        by_id,
        chromium,
        click,
        loaded,
        review_shown,
        wait_for,
    )

    settings = Settings({"storage.data_dir": str(tmp_path / "var")}, base_dir=tmp_path)
    engine = make_engine(settings)
    init_store(engine)
    config = write_config(settings, tmp_path)
    cli(config, capsys, monkeypatch, "catalogue", "load", str(release_path(OLDER)),
        "--version", OLDER)
    add_user(engine, *REVIEWER, role="reviewer")
    keys = [add_implementer(engine, f"Portal {n}", country, "job_portal")[1]
            for n, country in ((1, "DE"), (2, "FR"), (3, "NL"))]
    day = (date.today() - timedelta(days=2)).isoformat()
    server = start_server(config, tmp_path / "server.log")
    try:
        for n, key in enumerate(keys):
            sent = [
                {"event_id": "l", "type": "label_added", "concept_uri": LABELLED,
                 "label": LABEL if n else LABEL.lower(), "language": "en", "occurred_at": day},
                {"event_id": "p", "type": "concept_proposed", "concept_type": "occupation",
                 "label": PROPOSED, "language": "en", "occurred_at": day},
                {"event_id": "r", "type": "label_added", "concept_uri": LABELLED,
                 "label": REJECTED, "language": "en", "occurred_at": day},
            ]
            answer = requests.post(f"{server.url}/v1/events", json={"events": sent},
                                   headers={"Authorization": f"Bearer {key}"}, timeout=30)
            assert answer.status_code == 202 and answer.json()["accepted"] == 3, answer.text
        cli(config, capsys, monkeypatch, "aggregate")

        with chromium(tmp_path / "downloads") as browser:
            browser.get(f"{server.url}/dashboard/review")
            by_id(browser, "username").send_keys(REVIEWER[0])
            by_id(browser, "password").send_keys(REVIEWER[1])
            by_id(browser, "login-button").click()
            loaded(browser, "Review")

            def decide(item: str, button: str, reason: str | None = None) -> None:
                browser.get(f"{server.url}/dashboard/review?item={item}")
                loaded(browser, "Review")
                wait_for(browser, lambda d: len(d.find_elements(
                    By.CSS_SELECTOR, "#review-grid .ag-row")) == 1, "the item")
                click(browser, lambda d: d.find_element(
                    By.CSS_SELECTOR, "#review-grid .ag-header-select-all input"), "select")
                # the details panel follows the selection the decision will be sent with
                wait_for(browser, lambda d: item in by_id(d, "review-details").text,
                         f"the details of {item}", review_shown)
                if reason:
                    click(browser, lambda d: d.find_element(
                        By.CSS_SELECTOR, f"#review-reason input[value='{reason}']"), reason)
                click(browser, lambda d: by_id(d, f"review-{button}"), button)
                wait_for(browser, lambda d: "1 item" in by_id(d, "review-message").text,
                         f"{button} done", review_shown)

            decide(L_ITEM, "accept")
            decide(P_ITEM, "accept")
            decide(R_ITEM, "reject", "too_specific")

            # the hand-over for ESCO's editors, downloaded from the page
            browser.get(f"{server.url}/dashboard/review")
            loaded(browser, "Review")
            click(browser, lambda d: by_id(d, "review-handover-button"), "hand-over")
            deadline = time.monotonic() + 30
            while not list(browser.downloads.glob("handover_accepted_*.zip")):
                assert time.monotonic() < deadline, "no hand-over downloaded"
                time.sleep(0.2)
            archive = next(browser.downloads.glob("handover_accepted_*.zip"))
            with zipfile.ZipFile(archive) as files:
                changes = list(csv.DictReader(io.StringIO(files.read("changes.csv").decode())))
                turtle = files.read("changes.ttl").decode()
            assert {(r["item_id"], r["action"]) for r in changes} == {
                (L_ITEM, "add_alt_label"), (P_ITEM, "add_concept")}
            assert len(Graph().parse(data=turtle, format="turtle")) > 0
            assert "Portal" not in turtle and not any("Portal" in str(r) for r in changes)

            # the next release: the load says what it took up
            loaded_out = cli(config, capsys, monkeypatch, "catalogue", "load",
                             str(release_path(NEWER)), "--version", NEWER)
            assert f"2 accepted suggestions are in {NEWER}" in loaded_out
            browser.get(f"{server.url}/dashboard/review?status=released")
            loaded(browser, "Review")
            wait_for(browser, lambda d: len(d.find_elements(
                By.CSS_SELECTOR, "#review-grid .ag-row")) == 2, "the released items")
            statuses = [e.text for e in browser.find_elements(
                By.CSS_SELECTOR, "#review-grid .ag-row [col-id=status_text]")]
            assert statuses == [f"released in {NEWER}"] * 2

        # each portal learns the same through the API
        for key in keys:
            mine = requests.get(f"{server.url}/v1/me/suggestions", timeout=10,
                                headers={"Authorization": f"Bearer {key}"}).json()
            items = {s["item_id"]: s for s in mine["suggestions"]}
            assert (items[L_ITEM]["status"], items[L_ITEM]["in_release"]) == (
                "released", NEWER)
            assert (items[P_ITEM]["status"], items[P_ITEM]["in_release"]) == (
                "released", NEWER)
            assert (items[R_ITEM]["status"], items[R_ITEM]["reason"]) == (
                "rejected", "too_specific")
        with engine.connect() as conn:
            released_as = conn.exec_driver_sql(
                "select released_as from review_decisions where item_id = ? "
                "and decision = 'release'", (P_ITEM,)).scalar_one()
        assert released_as == ADDED_OCCUPATION
    finally:
        server.stop()
        engine.dispose()
