"""The Review page: the items of kpi.review with their evidence and filters, bulk decisions
through the real Dash callback as the logged-in reviewer (audited), refusals (a viewer, a
crafted or cross-site request, a rejection without a reason) that write nothing, an item's
details, and the downloads."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pytest
from dash_ag_grid import AgGrid
from sqlalchemy import Engine

from dashboard import components
from dashboard import review as review_module
from dashboard.app import create_dashboard
from dashboard.callbacks import render_page
from dashboard.downloads import download
from dashboard.review import (
    TABLE,
    TABLE_COLUMNS,
    details,
    item_statuses,
    months_text,
    review_rows,
    with_review,
)
from dashboard.state import FilterState, parse_query, to_query
from kpi.exports.csvfile import table_csv
from kpi.review.decisions import trail
from kpi.review.items import item_id, item_months
from kpi.store.registry import add_user
from tests.dashboard_world import callback, data_of, find, texts
from tests.kpi_fixtures import S1, S2, Store, standard_store
from tests.test_review import L_ID, P_ID, T_ID, seed

REVIEWER, VIEWER = ("eva", "password-eva"), ("vic", "password-vic")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[Store]:
    """tests/test_review.py's seeded store (SQLite): a label, a proposal, a translation and a
    second label; a reviewer `eva` and a viewer `vic`."""
    store = standard_store(tmp_path_factory.mktemp("review"))
    seed(store)
    add_user(store.engine, *REVIEWER, role="reviewer")
    add_user(store.engine, *VIEWER)
    try:
        yield store
    finally:
        store.engine.dispose()


@pytest.fixture(scope="module")
def app(store):
    return create_dashboard(store.settings)


def decided(engine: Engine) -> list[dict[str, Any]]:
    return [r for r in trail(engine) if r["decided_by"] != "system"]


def client_for(app, user: tuple[str, str]):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": user[0], "password": user[1],
                                           "csrf_token": token})
    assert response.status_code == 302
    return client


def page(client, search: str = "") -> dict[str, Any]:
    """The Review page's content as the browser gets it (JSON of the component tree)."""
    response = callback(client, "content.children", {"url.pathname": "/dashboard/review",
                                                     "url.search": search})
    assert response.status_code == 200
    return response.get_json()["response"]["content"]["children"]


def props(tree: Any, component_id: str) -> dict[str, Any] | None:
    """The props of the component with this id in a JSON component tree."""
    if isinstance(tree, list):
        for child in tree:
            found = props(child, component_id)
            if found is not None:
                return found
    elif isinstance(tree, dict) and "props" in tree:
        if tree["props"].get("id") == component_id:
            return tree["props"]
        return props(tree["props"].get("children"), component_id)
    return None


def decide(client, decision: str, rows: list[dict], token: Any, reason: str | None = None,
           note: str = "", headers: dict[str, str] | None = None):
    return callback(client, "review-message.children", {f"review-{decision}.n_clicks": 1},
                    {"review-grid.selectedRows": rows, "review-reason.value": reason,
                     "review-note.value": note, "review-csrf.data": token,
                     "url.search": ""}, headers=headers)


def message(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["response"]["review-message"]["children"]


def test_items_filters_and_the_url(app, store):
    data = data_of(app)
    rows = review_rows(data, FilterState())
    assert [r["item_id"] for r in rows][:2] == [P_ID, L_ID]  # implementers first
    label = next(r for r in rows if r["item_id"] == L_ID)
    assert (label["implementers"], label["countries"], label["events"], label["first_seen"],
            label["last_seen"], label["status"]) == (2, 2, 2, "2026-07-02", "2026-08-10",
                                                     "open")
    state = parse_query("?kind=label&status=open&language=de")
    assert (state.kind, state.status, state.language) == ("label", "open", "de")
    assert parse_query(to_query(state)) == state
    assert [r["item_id"] for r in review_rows(data, state)] == [L_ID]
    assert parse_query("?kind=nonsense&status=gone") == FilterState()
    assert {r["item_id"] for r in review_rows(data, FilterState(concept_type="skill"))} == {
        T_ID, *[r["item_id"] for r in rows if r["kind"] == "label"
                and r["concept_type"] == "skill"]}


def test_a_reviewer_decides_in_bulk_through_the_callback(app, store):
    client = client_for(app, REVIEWER)
    content = page(client)
    token = props(content, "review-csrf")["data"]
    grid = props(content, "review-grid")
    assert props(content, "review-accept") is not None
    rows = [r for r in grid["rowData"] if r["item_id"] in (L_ID, T_ID)]
    response = decide(client, "accept", rows, token, note="common in DE")
    assert message(response) == "2 items accepted."
    refreshed = response.get_json()["response"]["review-grid"]
    assert {r["item_id"]: r["status"] for r in refreshed["rowData"]}[L_ID] == "accepted"
    assert refreshed["selectedRows"] == []
    audit = decided(store.engine)
    assert {(r["item_id"], r["decision"], r["decided_by"], r["note"]) for r in audit} == {
        (L_ID, "accept", "eva", "common in DE"), (T_ID, "accept", "eva", "common in DE")}

    # a rejection needs a reason: refused with a message, nothing written
    proposal = [r for r in grid["rowData"] if r["item_id"] == P_ID]
    assert message(decide(client, "reject", proposal, token)).startswith(
        "Nothing was decided: a rejection needs a reason")
    assert len(decided(store.engine)) == 2
    assert message(decide(client, "reject", proposal, token, reason="too_specific")) == \
        "1 item rejected (too specific)."
    # no selection, a refused transition, a missing token: nothing written
    assert message(decide(client, "defer", [], token)) == "Select at least one item first."
    assert "already accepted" in message(decide(client, "accept", rows, token))
    assert message(decide(client, "reopen", proposal, None)).startswith("The page expired")
    audit = decided(store.engine)
    assert len(audit) == 3 and audit[-1]["reason"] == "too_specific"
    # the page again: its rows are kept per state, and every decision renews them
    again = {r["item_id"]: r["status"] for r in props(page(client), "review-grid")["rowData"]}
    assert (again[L_ID], again[T_ID], again[P_ID]) == ("accepted", "accepted", "rejected")
    assert props(page(client), "review-grid")["rowData"] == props(page(client),
                                                                  "review-grid")["rowData"]

    # the details of a decided item: its evidence, the concept's labels, the history
    row = next(r for r in refreshed["rowData"] if r["item_id"] == L_ID)
    shown = details(data_of(app), FilterState(), row, 1)
    words = texts(shown)
    assert "common in DE" in words and "accept" in words and "eva" in words
    assert "The concept's labels in de" in words
    assert find(shown, lambda c: getattr(c, "id", None) == "review-concept-link")


def test_a_viewer_sees_and_downloads_but_never_decides(app, store):
    client = client_for(app, VIEWER)
    content = page(client)
    assert props(content, "review-accept") is None and props(content, "review-csrf") is None
    rows = props(content, "review-grid")["rowData"]
    assert rows
    before = len(decided(store.engine))
    # a crafted POST, even with the session's own CSRF token: refused, nothing written
    with client.session_transaction() as session:
        session["csrf"] = "a-token"
    response = decide(client, "accept", rows, "a-token")
    assert message(response) == "Only reviewers can decide: nothing was decided."
    assert "review-grid" not in response.get_json()["response"]
    assert len(decided(store.engine)) == before

    # the CSV of the table and the hand-over zip
    data = data_of(app)
    payload = download(data, "/dashboard/review", "?kind=label", TABLE)
    table = list(csv.DictReader(io.StringIO(payload.text)))
    assert {r["kind"] for r in table} == {"label"} and L_ID in {r["item_id"] for r in table}
    assert payload.filename.endswith("_kind-label.csv")
    response = callback(client, "review-handover.data", {"review-handover-button.n_clicks": 1})
    zipped = response.get_json()["response"]["review-handover"]["data"]
    import base64

    with zipfile.ZipFile(io.BytesIO(base64.b64decode(zipped["content"]))) as archive:
        assert set(archive.namelist()) == {"changes.csv", "changes.ttl", "manifest.json"}
        assert L_ID in archive.read("changes.csv").decode()


def test_a_cross_site_decision_is_refused(app, store):
    client = client_for(app, REVIEWER)
    token = props(page(client), "review-csrf")["data"]
    rows = [{"item_id": P_ID}]
    before = len(decided(store.engine))
    for headers in ({"Origin": "https://elsewhere.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}):
        assert decide(client, "reopen", rows, token, headers=headers).status_code == 403
    assert len(decided(store.engine)) == before


def test_the_page_without_a_session_user(app):
    """Rendered outside a request (as the tests and a viewer see it): no decision controls."""
    content, _, menu = render_page(data_of(app), "/dashboard/review", "?status=open")
    assert "Review" in texts(menu)
    assert not find(content, lambda c: getattr(c, "id", None) == "review-accept")
    assert find(content, lambda c: getattr(c, "id", None) == "review-grid")


@pytest.mark.browser
def test_a_bulk_decision_in_a_browser(store, tmp_path):
    """A reviewer selects every label item with the header checkbox, types a note while the
    selection's details are still on their way from a slow server, and defers them: the page
    stays usable meanwhile (the note keeps every key and the focus), and the decision carries
    the note."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from tests.test_accessibility import serve
    from tests.test_dashboard_browser import (
        by_id,
        chromium,
        click,
        loaded,
        review_shown,
        wait_for,
    )

    note = "wait for the next release"
    before = len(decided(store.engine))
    with serve(store.settings) as site, chromium(tmp_path / "downloads") as browser:
        browser.get(f"{site}/dashboard/review?kind=label")
        by_id(browser, "username").send_keys(REVIEWER[0])
        by_id(browser, "password").send_keys(REVIEWER[1])
        by_id(browser, "login-button").click()
        loaded(browser, "Review")
        wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                                        "#review-grid .ag-row")) == 2, "2 rows")
        # from here every answer takes a second, as from a busy server: the selection's
        # details (a callback writing inside the page) are pending while the note is typed
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 1000, "downloadThroughput": -1,
            "uploadThroughput": -1})
        click(browser, lambda d: d.find_element(
            By.CSS_SELECTOR, "#review-grid .ag-header-select-all input"), "select all")
        click(browser, lambda d: by_id(d, "review-note"), "the note")
        typing = ActionChains(browser)
        for key in note:
            typing.send_keys(key).pause(0.03)  # a person's pace, not one burst of keys
        typing.perform()
        typed = browser.execute_script(
            "return [document.getElementById('review-note').value,"
            " document.activeElement.id]")
        assert typed == [note, "review-note"], review_shown(browser)
        wait_for(browser, lambda d: "2 items selected" in by_id(d, "review-details").text,
                 "the selection's details", review_shown)
        click(browser, lambda d: by_id(d, "review-defer"), "Defer")
        wait_for(browser, lambda d: by_id(d, "review-message").text == "2 items deferred.",
                 "the status message", review_shown)
        wait_for(browser, lambda d: all(
            "deferred" in e.text for e in d.find_elements(
                By.CSS_SELECTOR, "#review-grid .ag-row [col-id=status_text]")), "refreshed",
                 review_shown)
    audit = decided(store.engine)[before:]
    assert {r["decision"] for r in audit} == {"defer"} and len(audit) == 2
    assert {r["note"] for r in audit} == {note}


@pytest.mark.parametrize("largest", [0, 3, 2**12, 2**40])
def test_each_item_s_months_are_written_as_its_own_counts(largest):
    """months_text writes each distinct column of counts once (as one number when the counts
    fit, else by numpy's unique columns): every item still gets the text of its own counts."""
    months = [date(2026, m, 1) for m in range(4, 10)]
    rnd = np.random.default_rng(largest)
    counts = rnd.integers(0, largest + 1, (len(months), 500))
    counts[:, 1] = counts[:, 0]  # a repeated column, and one of the largest alone
    counts[:, 2] = largest
    expected = ["; ".join(f"{m:%b %Y} {n}" for m, n in zip(months, column, strict=True))
                for column in counts.T.tolist()]
    assert months_text(months, counts).to_pylist() == expected


def test_the_queue_sparkline_a_link_to_one_item_and_its_details(app, store):

    from dashboard.review import spark_months, sparkline

    data = data_of(app)
    months = spark_months()
    label = next(r for r in review_rows(data, FilterState()) if r["item_id"] == L_ID)
    # one implementer in July 2026, another in August (tests/test_review.py's seed)
    sent = {date(2026, 7, 1): 1, date(2026, 8, 1): 1}
    counts = [sent.get(m, 0) for m in months]
    assert label["spark"] == sparkline(counts) and len(label["spark"]) == len(months)
    assert label["implementers_by_month"] == "; ".join(
        f"{m:%b %Y} {n}" for m, n in zip(months, counts, strict=True))
    assert sparkline([0, 1, 4]) == " ▃█" and sparkline([0, 0]) == "  "
    # every item's months as kpi.review.items.item_months finds them by its id: the whole
    # queue, a queue of one kind (another evidence table), and the whole again (its months
    # kept from the first time)
    table = data.review_item_months_table(months[0])
    for search in ("", "?kind=label", "?kind=translation&language=de", ""):
        rows = review_rows(data, parse_query(search))
        sent_by_id = item_months(table, [r["item_id"] for r in rows])
        assert rows and [r["implementers_by_month"] for r in rows] == [
            "; ".join(f"{m:%b %Y} {sent_by_id.get(r['item_id'], {}).get(m, 0)}"
                      for m in months) for r in rows], search

    # a link to one item: checked, kept in the URL, the queue narrowed to it
    state = parse_query(f"?item={L_ID}&kind=label")
    assert state.item == L_ID and parse_query(to_query(state)) == state
    assert parse_query("?item=L-not-an-id").item is None
    assert [r["item_id"] for r in review_rows(data, state)] == [L_ID]

    # opened by the link, the page shows the item's details at once: every spelling sent and
    # its implementers month by month
    tree = page(client_for(app, VIEWER), f"?item={L_ID}")
    spellings = json.dumps(props(tree, "review-spellings"), ensure_ascii=False)
    assert "Software-Entwickler" in spellings and "software entwickler" in spellings
    assert "programmierer" not in spellings  # the catalogue's own label: another group
    months_table = json.dumps(props(tree, "review-months"), ensure_ascii=False)
    assert "Jul 2026" in months_table or date.today() > date(2027, 6, 30)
    assert props(tree, "review-all-items")["href"] == "/dashboard/review"


def test_a_worker_takes_the_queue_and_its_months_from_the_worker_that_made_them(
        store, monkeypatch, tmp_path):
    """Workers of one host: one that holds the evidence another shared takes that worker's
    queue order, decided items and months of every item instead of making them; one that
    computed evidence of its own (its rows possibly in another order) takes none of them."""
    from dashboard.data import SharedResults
    from dashboard.review import queue_month_counts
    from kpi.review import decisions

    first, second, own = (data_of(create_dashboard(store.settings)) for _ in range(3))
    made = first.review_items(None, None, None)
    months = queue_month_counts(first, made)
    first.results.flush()
    made_here: list[str] = []
    real_queue, real_months = decisions.queue, review_module.month_counts
    monkeypatch.setattr(decisions, "queue",
                        lambda *a, **k: made_here.append("queue") or real_queue(*a, **k))
    monkeypatch.setattr(review_module, "month_counts",
                        lambda *a, **k: made_here.append("months") or real_months(*a, **k))

    taken = second.review_items(None, None, None)
    assert second.evidence_token(taken.evidence) == first.evidence_token(made.evidence)
    assert taken.order.equals(made.order) and taken.decided == made.decided
    assert (queue_month_counts(second, taken) == months).all()
    assert made_here == []
    assert [i.item_id for i in taken.head(5).items()] == made.ids()[:5]

    # evidence of its own (nothing shared yet where it looked), then the host's results
    shared = own.results
    own.results = SharedResults(tmp_path / "elsewhere")
    own.review_evidence_table()
    own.results = shared
    mine = own.review_items(None, None, None)
    assert own.evidence_token(mine.evidence) != first.evidence_token(made.evidence)
    assert mine.ids() == made.ids()  # the same queue, made here
    assert (queue_month_counts(own, mine) == months).all()
    assert made_here == ["queue", "months"]


def test_the_queue_csv_is_kept_until_a_decision_or_a_run(app, store, monkeypatch):
    """The Review page's CSV is built once per state, then renewed by a reviewer's decision and
    by a run that publishes (its evidence covers all time, whatever the period)."""
    import dashboard.pages.review as review_page
    from kpi.review.decisions import decide as take

    built = []
    real = review_page.queue_table
    monkeypatch.setattr(review_page, "queue_table",
                        lambda *a, **k: built.append(1) or real(*a, **k))
    data = data_of(app)
    search = "?kind=translation"

    def statuses() -> dict[str, str]:
        payload = download(data, "/dashboard/review", search, TABLE)
        return {r["item_id"]: r["status"]
                for r in csv.DictReader(io.StringIO(payload.text))}

    first = statuses()
    assert statuses() == first and set(first) == {T_ID}
    assert len(built) == 1  # the second download was kept
    status = "deferred" if first[T_ID] != "deferred" else "open"
    take(store.settings, store.engine, [T_ID], "defer" if status == "deferred" else "reopen",
         REVIEWER[0])
    assert statuses()[T_ID] == status
    store.events({"type": "translation_feedback", "concept_uri": S1, "language": "fr",
                  "label": "programmation Python", "implementer_id": 2, "day": "2025-01-02"})
    store.aggregate()  # a day outside the default period: the evidence changes all the same
    assert len(statuses()) == 2


@pytest.mark.parametrize("others", [0, 600])  # looked up by id, or among every decided item
def test_item_statuses_for_short_and_long_lists(app, store, others):
    from kpi.review.decisions import decide as take
    from kpi.review.decisions import latest_rows

    data = data_of(app)
    if item_statuses(data, [L_ID])[L_ID] == "open":  # the module's store: maybe decided already
        take(store.settings, store.engine, [L_ID], "accept", REVIEWER[0])
    with store.engine.connect() as conn:
        latest = latest_rows(conn, [L_ID, P_ID, T_ID])
    unknown = [f"L-{n:016x}" for n in range(others)]
    statuses = item_statuses(data, [*unknown, L_ID, P_ID, T_ID])
    assert len(statuses) == others + 3
    for item in (L_ID, P_ID, T_ID):
        assert statuses[item].split(" in ")[0] == (
            latest[item]["status"] if item in latest else "open")
    assert L_ID in latest and all(statuses[u] == "open" for u in unknown)


def test_the_suggestion_pages_show_statuses_and_link_to_the_queue(app, store):
    """Labels, Proposals and Translations show each row's review status, kept current after a
    decision although the pages are memoised, and link to the items; the Overview shows the
    loop's own figures."""
    from kpi.review.decisions import decide as take
    from kpi.review.decisions import latest_rows
    from kpi.review.summary import review_summary

    data = data_of(app)
    search = "?period=custom&start=2026-07-01&end=2026-09-30"

    def status(item: str) -> str:
        with store.engine.connect() as conn:
            row = latest_rows(conn, [item]).get(item)
        return row["status"] if row else "open"

    def grid_rows(path: str, table: str) -> list[dict]:
        content = render_page(data, f"/dashboard/{path}", search)[0]
        return find(content, lambda c: isinstance(c, AgGrid)
                    and c.id["table"] == table)[0].rowData

    def link_to(path: str, item: str) -> bool:
        content = render_page(data, f"/dashboard/{path}", search)[0]
        hrefs = [c.href for c in find(content, lambda c: type(c).__name__ == "Link")]
        return any(h.startswith("/dashboard/review?") and f"item={item}" in h for h in hrefs)

    for path, table, item in (("labels", "candidate_alt_labels", L_ID),
                              ("proposals", "new_concept_proposals", P_ID),
                              ("translations", "translation_feedback", T_ID)):
        rows = grid_rows(path, table)
        assert rows and all(r["review"] for r in rows), path
        assert status(item) in {r["review"].split(" in ")[0] for r in rows}, path
        assert link_to(path, item), path
    # the CSV keeps the indicator's own columns
    payload = download(data, "/dashboard/labels", search, "candidate_alt_labels")
    assert "review" not in payload.text.splitlines()[0].split(",")

    # a decision shows at once on the memoised page
    before = {r["review"] for r in grid_rows("translations", "translation_feedback")}
    if status(T_ID) != "accepted":
        take(store.settings, store.engine, [T_ID], "accept", REVIEWER[0])
    after = {r["review"] for r in grid_rows("translations", "translation_feedback")}
    assert "accepted" in after and (after != before or "accepted" in before)

    # the Overview: open, accepted, released and the median days to a decision
    overall = review_summary(store.settings, store.engine, overall=True)[0]
    words = " ".join(texts(render_page(data, "/dashboard/", search)[0]))
    assert "Review loop" in words and "Median days to a decision" in words
    content = render_page(data, "/dashboard/", search)[0]
    cards = {c.id: texts(c) for c in find(content, lambda c: str(getattr(c, "id", ""))
                                          .startswith("kpi-review_"))}
    assert cards["kpi-review_open"][1] == str(overall["open"])
    assert cards["kpi-review_accepted"][1] == str(overall["accepted"])


def test_the_loop_figures_use_the_evidence_a_worker_holds(app, store, monkeypatch):
    """The Overview's review loop figures: from the items' keys and the decided items'
    evidence, or from the whole evidence when this worker holds it (the Review page's); the
    same figures either way."""
    from kpi.review import summary
    from kpi.review.decisions import decide as take
    from kpi.review.decisions import latest_rows

    data = data_of(app)
    read: list[str] = []
    keys = summary.item_keys_table
    monkeypatch.setattr(summary, "item_keys_table",
                        lambda settings: read.append("keys") or keys(settings))
    with store.engine.connect() as conn:
        if latest_rows(conn, [P_ID]).get(P_ID, {"status": "open"})["status"] != "open":
            take(store.settings, store.engine, [P_ID], "reopen", REVIEWER[0])
    take(store.settings, store.engine, [P_ID], "defer", REVIEWER[0])  # a new state
    if data._held_evidence() is None:
        light = data.review_summary(overall=True)
        assert read == ["keys"]
    else:
        light = summary.review_summary(store.settings, store.engine, overall=True)
    data.review_evidence_table()  # what the Review page computes
    take(store.settings, store.engine, [P_ID], "reopen", REVIEWER[0])
    take(store.settings, store.engine, [P_ID], "defer", REVIEWER[0])  # the same figures again
    read.clear()
    held = data.review_summary(overall=True)
    assert read == [] and held == light


def test_only_the_rows_a_grid_shows_get_their_review_status(app, store, monkeypatch):
    """Labels and Translations hold tens of thousands of suggestions at scale: only the rows
    the grid shows get their item id and status, and the review links (on Translations, the
    suggestions most implementers sent, whatever the grid's order) still name theirs."""
    data = data_of(app)
    # a period of its own: no page memoised by the other tests
    search = "?period=custom&start=2026-07-02&end=2026-09-30"
    state = parse_query(search)
    rows = data.indicator("candidate_alt_labels", state.period(), state).rows
    assert len(rows) > 1
    marked = with_review(data, "label", rows, limit=1)
    assert "review" in marked[0] and "item_id" in marked[0]
    assert marked[1:] == rows[1:] and all("review" not in r for r in marked[1:])
    # a grid of no rows at all: the links must find their rows' items themselves
    monkeypatch.setattr(review_module, "GRID_ROW_LIMIT", 0)
    monkeypatch.setattr(components, "GRID_ROW_LIMIT", 0)
    feedback = data.indicator("translation_feedback", state.period(), state).rows
    assert feedback
    content = render_page(data, "/dashboard/translations", search)[0]
    grid = find(content, lambda c: isinstance(c, AgGrid))[0]
    assert grid.rowData == []
    hrefs = [c.href for c in find(content, lambda c: type(c).__name__ == "Link")
             if c.href.startswith("/dashboard/review?") and "item=" in c.href]
    assert len(hrefs) == min(15, len(feedback))
    assert any(f"item={T_ID}" in h for h in hrefs)


def test_the_queue_csv_made_as_columns_is_the_one_its_rows_give(app, store, monkeypatch):
    """The whole queue's CSV is made from the evidence's columns (queue_table), not a row per
    item: the same text as the rows the grid is made of, for decided and open items, flagged
    trends and every filter of the page."""
    from kpi.review.decisions import decide as take

    data = data_of(app)
    # whatever the tests before decided: one item accepted, one deferred, the others open
    for item, decision, status in ((L_ID, "accept", "accepted"), (P_ID, "defer", "deferred")):
        if item_statuses(data, [item])[item] != status:
            take(store.settings, store.engine, [item], decision, REVIEWER[0])
    # a trend flagged on one open label (the period's own data has none)
    monkeypatch.setattr(review_module, "trending",
                        lambda *_: {item_id("label", S2, "en", "budget plans"): "emerging"})
    searches = ("", "?kind=label", "?status=accepted", "?status=open", "?language=de",
                "?concept_type=skill", f"?item={L_ID}", "?kind=translation&language=fr")
    for search in searches:
        state = parse_query(search)
        expected = table_csv(TABLE_COLUMNS, review_rows(data, state))
        payload = download(data, "/dashboard/review", search, TABLE)
        assert payload.text == expected, search
    rows = list(csv.DictReader(io.StringIO(download(data, "/dashboard/review", "", TABLE).text)))
    assert {r["item_id"]: r["status"] for r in rows}[L_ID] == "accepted"
    assert {r["item_id"]: r["status"] for r in rows}[P_ID] == "deferred"
    assert [r["trend"] for r in rows if r["label"] == "'=budget plans"] == ["emerging"]

