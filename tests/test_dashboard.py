"""The dashboard without a browser: login, CSRF, brute force, the guard, and the callbacks.

The callbacks' work is done by plain functions (dashboard.app.render_page, sync_controls,
download, concept_href; the pages' `tables`), called here directly against a real store and a
real aggregation.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dash import no_update
from sqlalchemy import Engine, delete

from dashboard import auth
from dashboard.app import (
    ATTRIBUTION,
    click_href,
    concept_href,
    create_dashboard,
    download,
    render_body,
    render_page,
    sync_controls,
)
from dashboard.components import NO_DATA
from dashboard.data import (
    QUALITY_INDICATORS,
    QUALITY_PAGE,
    WARM_PRESETS,
    ResultCache,
    Warmer,
    shown_rows,
    to_csv,
)
from dashboard.pages import BY_PATH, PAGES
from dashboard.state import PRESETS, FilterState, csv_filename, parse_query, to_query
from kpi.settings import Settings
from kpi.store.db import make_engine
from kpi.store.registry import add_implementer, add_user
from kpi.warehouse.aggregate import run_aggregation
from kpi.warehouse.indicators import INDICATORS, SUPPORT_QUERIES, Period, load_sql, query
from kpi.warehouse.published import period_fingerprint
from tests.conftest import _admin, _pg_url
from tests.helpers import OCCUPATION, SKILL, days_ago, event

PASSWORD = "correct horse battery"
HTML_LABEL = "<b>html</b><script>"


def seed_events(send: Callable[[str, list[dict]], Any], key_a: str, key_b: str) -> None:
    """A small, known mix of every event type, for two implementers (DE and FR)."""
    send(key_a, [
        event("a1", concept_uri=SKILL, language="de", count=5, context="job_vacancy"),
        event("a2", concept_uri=OCCUPATION, language="en", count=3, occurred_at=days_ago(2)),
        event("a3", type="label_added", concept_uri=SKILL, label=HTML_LABEL),
        event("a4", type="translation_feedback", concept_uri=SKILL, language="de",
              label="Gewindearten neu"),
        event("a5", language="xx"),  # rejected
        event("a6", concept_uri="http://data.europa.eu/esco/skill/not-in-catalogue"),
    ])
    send(key_b, [
        event("b1", concept_uri=SKILL, language="fr", count=2, occurred_at=days_ago(1)),
        event("b2", concept_uri=SKILL, language="fr", count=4, occurred_at=days_ago(45)),
        event("b3", type="concept_proposed", concept_type="skill", concept_uri=SKILL,
              label="quantum plumbing"),
    ])


@dataclass
class World:
    """A store with seeded, aggregated events and a dashboard user, shared by a module."""

    settings: Settings
    engine: Engine
    send: Callable[[str, list[dict]], None]
    key_a: str
    key_b: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory) -> Iterator[World]:
    """Built once per backend: the first aggregation of a fresh warehouse alone takes ~10 s
    (it copies the whole catalogue), far too slow to repeat for every test."""
    from collector.app import create_app

    folder = tmp_path_factory.mktemp("dashboard")
    data_dir = folder / "var"
    data_dir.mkdir()
    values = {"storage.data_dir": str(data_dir)}
    database = None
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "ingest.sqlite3")
    else:
        template = request.getfixturevalue("pg_template")
        database = f"esco_kpi_d_{uuid.uuid4().hex[:12]}"
        _admin(f"create database {database} template {template}")
        values["storage.database_url"] = _pg_url(database)
    settings = Settings(values, base_dir=folder)
    engine = make_engine(settings)
    key_a = add_implementer(engine, "Portal Alpha", "DE", "job_portal")[1]
    key_b = add_implementer(engine, "Agency Beta", "FR", "pes")[1]
    client = create_app(settings).test_client()

    def send(key: str, events: list[dict]) -> None:
        response = client.post("/v1/events", json={"events": events},
                               headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 202, response.get_json()

    seed_events(send, key_a, key_b)
    run_aggregation(settings)
    add_user(engine, "esco", PASSWORD)
    yield World(settings, engine, send, key_a, key_b)
    engine.dispose()
    if database:
        _admin(f"drop database if exists {database} with (force)")


@pytest.fixture
def app(world):
    """A dashboard on the shared store; log-in counters and sessions are wiped afterwards."""
    yield create_dashboard(world.settings)
    with world.engine.begin() as conn:
        conn.execute(delete(auth.login_failures))
        conn.execute(delete(auth.sessions))


def csrf(client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]


def log_in(client, username: str = "esco", password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf(client)})


def texts(component: Any) -> list[str]:
    """Every string in a Dash component tree (children, and AG Grid row values)."""
    out: list[str] = []
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        for c in component:
            out += texts(c)
        return out
    if hasattr(component, "to_plotly_json"):
        props = component.to_plotly_json()["props"]
        out += texts(props.get("children"))
        for row in props.get("rowData") or []:
            out += [v for v in row.values() if isinstance(v, str)]
    return out


def find(component: Any, predicate) -> list[Any]:
    found = []
    if isinstance(component, list | tuple):
        for c in component:
            found += find(c, predicate)
    elif hasattr(component, "to_plotly_json"):
        if predicate(component):
            found.append(component)
        found += find(getattr(component, "children", None), predicate)
    return found


# ---------------------------------------------------------------------------------------------
# The guard, login, logout


DASH_ROUTES = ("_dash-layout", "_dash-dependencies", "_dash-component-suites/dash/dcc/dash_core"
               "_components.js", "assets/style.css", "_favicon.ico", "_reload-hash")


def test_without_session_pages_redirect_and_dash_routes_refuse(app):
    client = app.test_client()
    for path in ("/dashboard/", "/dashboard/concepts?country=DE", "/dashboard/nowhere"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
    assert client.get("/dashboard").headers["Location"] == "/dashboard/"
    for route in DASH_ROUTES:
        response = client.get(f"/dashboard/{route}")
        assert response.status_code == 401, route
        assert response.get_json()["error"] == "not logged in"
    response = client.post("/dashboard/_dash-update-component", json={"output": "x"})
    assert response.status_code == 401
    assert response.get_json() == {"error": "not logged in", "login": "/login"}


def test_login_form_and_success(app):
    client = app.test_client()
    page = client.get("/login")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    for name in ("username", "password", "csrf_token"):
        assert f'name="{name}"' in text
    assert ATTRIBUTION in text
    response = log_in(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/dashboard/").status_code == 200
    layout = client.get("/dashboard/_dash-layout")
    assert layout.status_code == 200 and "ESCO v1.2.0" in layout.get_data(as_text=True)
    assert client.get("/dashboard/_dash-dependencies").status_code == 200
    # already logged in: the form sends you on
    assert client.get("/login").status_code == 302


def test_cookie_is_secure_over_https(app):
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    response = client.post("/login", base_url="https://localhost", data={
        "username": "esco", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_wrong_password_and_bad_csrf(app):
    client = app.test_client()
    response = log_in(client, password="not the password")
    assert response.status_code == 401
    assert "Wrong user name or password." in response.get_data(as_text=True)
    assert log_in(client, username="nobody").status_code == 401
    csrf(client)
    response = client.post("/login", data={"username": "esco", "password": PASSWORD,
                                           "csrf_token": "forged"})
    assert response.status_code == 400
    response = app.test_client().post("/login", data={"username": "esco",
                                                      "password": PASSWORD})
    assert response.status_code == 400  # no token at all
    assert client.get("/dashboard/").status_code == 302


def test_next_stays_inside_the_dashboard(app):
    client = app.test_client()
    token = csrf(client)
    for target, expected in (("/dashboard/uptake?country=DE", "/dashboard/uptake?country=DE"),
                             ("https://evil.example/", "/dashboard/"),
                             ("//evil.example/dashboard/", "/dashboard/")):
        client.post("/logout")
        token = csrf(client)
        response = client.post("/login", data={"username": "esco", "password": PASSWORD,
                                               "csrf_token": token, "next": target})
        assert response.headers["Location"] == expected


def test_logout_ends_the_session_everywhere(app, world):
    client = app.test_client()
    log_in(client)
    cookie = client.get_cookie("esco_kpi_session").value
    assert client.get("/logout").status_code == 405  # only POST ends a session
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/dashboard/").status_code == 302
    # a copy of the old cookie is worthless, on any worker: the session is gone server-side
    other = create_dashboard(world.settings).test_client()
    other.set_cookie("esco_kpi_session", cookie)
    assert other.get("/dashboard/_dash-layout").status_code == 401


def test_cross_site_posts_are_refused(app):
    client = app.test_client()
    log_in(client)
    assert client.post("/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/dashboard/").status_code == 200
    assert client.post("/logout", headers={"Origin": "http://localhost"}).status_code == 302


def test_brute_force_lockout_holds_across_workers(app, world):
    client = app.test_client()
    for _ in range(auth.FREE_FAILURES + 1):
        assert log_in(client, password="guess-guess").status_code == 401
    # locked now: even the right password is refused, by another worker too
    other = create_dashboard(world.settings).test_client()
    response = log_in(other)
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) >= 1
    lock = auth.check_lock(world.engine, "ESCO")  # names are compared case-insensitively
    assert lock is not None and lock.scope == "user"
    # the wait doubles with every further failure, up to the cap
    future = 10**10
    for n in range(20):
        auth.record_failure(world.engine, "esco", now=future + n)
    assert auth.check_lock(world.engine, "esco", now=future + 20 + auth.MAX_LOCK_SECONDS - 5)
    later = future + 20 + auth.MAX_LOCK_SECONDS + 1
    assert auth.check_lock(world.engine, "esco", now=later) is None
    auth.record_success(world.engine, "esco")
    assert auth.check_lock(world.engine, "esco", now=future) is None


def test_global_failure_limit(app, world):
    engine = world.engine
    auth.init_tables(engine)
    now = 2_000_000_000.0
    for n in range(auth.GLOBAL_FAILURES_PER_MINUTE + 1):
        auth.record_failure(engine, f"user{n}", now=now + n * 0.01)
    lock = auth.check_lock(engine, "someone-else", now=now + 2)
    assert lock is not None and lock.scope == "global"
    assert auth.check_lock(engine, "someone-else", now=now + 61) is None


def test_security_headers(app):
    client = app.test_client()
    for response in (client.get("/login"), client.get("/dashboard/")):
        csp = response.headers["Content-Security-Policy"]
        assert "unsafe-eval" not in csp and "script-src 'self' 'sha256-" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_secret_key_file_is_private_and_shared(world):
    settings = world.settings
    first = create_dashboard(settings)
    second = create_dashboard(settings)
    path = settings.data_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.secret_key == second.secret_key


def test_wsgi_app_dispatches_collector_and_dashboard(world):
    from werkzeug.test import Client

    from esco_kpi.server import build_wsgi_app

    client = Client(build_wsgi_app(world.settings))
    health = client.get("/v1/health")
    assert health.status_code == 200 and json.loads(health.get_data()) == {"status": "ok"}
    assert client.get("/metrics").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/dashboard/").status_code == 302
    assert client.get("/").headers["Location"] == "/dashboard/"


# ---------------------------------------------------------------------------------------------
# State in the URL


def test_url_state_round_trip():
    state = FilterState(preset="custom", start=Period.day("2026-07-01").start,
                        end=Period.day("2026-09-30").start, country="DE", language="de",
                        label_language="fr", concept=SKILL)
    search = to_query(state)
    assert parse_query(search) == state
    assert to_query(FilterState()) == ""
    # junk in a hand-edited link falls back to the defaults
    assert parse_query("?period=forever&country=germany&language=xx&labels=zz&concept=x") \
        == FilterState()
    assert csv_filename("most_used_concepts", state) == \
        "most_used_concepts_2026-07-01_2026-09-30_language-de_country-DE_concept-" \
        + SKILL.rsplit("/", 1)[-1] + ".csv"


def test_sync_controls_url_wins_on_load_and_controls_write_the_url():
    out = sync_controls(None, "?country=FR&period=last_quarter", (None,) * 9)
    assert out[0] is no_update
    assert out[1] == "last_quarter" and out[6] == "FR"
    assert out[-1] == {"display": "none"}
    values = ("last30", None, None, "skill", None, "DE", None, None, "de")
    out = sync_controls("f-country", "?concept=" + SKILL, values)
    assert parse_query(out[0]) == FilterState(concept_type="skill", country="DE",
                                              label_language="de", concept=SKILL)
    # switching to custom starts from the period shown so far
    out = sync_controls("f-period", "", ("custom", None, None, *(None,) * 5, "en"))
    state = parse_query(out[0])
    assert state.preset == "custom" and state.period() == FilterState().period()
    assert out[-1] == {}


# ---------------------------------------------------------------------------------------------
# Pages and callbacks against real data


def data_of(app):
    return app.extensions["esco_dashboard_data"]


def test_every_page_renders(app):
    data = data_of(app)
    for path in BY_PATH:
        search = "?concept=" + SKILL if path == "concept" else ""
        content, info, menu = render_page(data, f"/dashboard/{path}", search)
        words = texts(content)
        assert "This page could not be loaded" not in " ".join(words), path
        assert len(menu) == 7 and "compared with" in info
    content, _, _ = render_page(data, "/dashboard/nowhere", "")
    assert "No such page." in texts(content)


def test_overview_cards_follow_the_indicators_and_filters(app, world):
    data = data_of(app)
    rows = BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows
    figures = {r["kpi"]: (r["current"], r["previous"]) for r in rows}
    period = FilterState().period()
    usage = sum(r["usage"] for r in query(world.settings, "language_usage", period).rows)
    assert figures["Concept uses"] == (usage, 4) == (10, 4)
    assert figures["Active implementers"][0] == 2
    assert figures["Countries"][0] == 2
    assert figures["New candidate labels"][0] == 1
    assert figures["Concept proposals"][0] == 1
    assert figures["Translation feedback"][0] == 1
    german = BY_PATH[""].tables(data, FilterState(country="FR"))["kpi_summary"].rows
    assert german[0]["current"] == 2 and german[1]["current"] == 1
    content, _, _ = render_page(data, "/dashboard/", "?country=FR")
    assert "▼ -50.0 % vs previous period" in texts(content)  # FR: 2 uses, 4 the period before


def test_pages_before_the_first_aggregation(settings, engine):
    """A fresh install: every page answers, with empty states instead of errors."""
    data = create_dashboard(settings).extensions["esco_dashboard_data"]
    for path in BY_PATH:
        search = "?concept=" + SKILL if path == "concept" else ""
        words = texts(render_page(data, f"/dashboard/{path}", search)[0])
        assert "This page could not be loaded" not in " ".join(words), path
        assert path in ("", "concept") or NO_DATA in words, path


def test_empty_period_says_so(app):
    content, _, _ = render_page(data_of(app), "/dashboard/concepts",
                                "?period=custom&start=2020-01-01&end=2020-01-31")
    assert NO_DATA in texts(content)


def test_labels_are_text_in_the_grid(app):
    content, _, _ = render_page(data_of(app), "/dashboard/labels", "")
    assert HTML_LABEL in texts(content)
    grids = find(content, lambda c: type(c).__name__ == "AgGrid")
    assert grids
    for g in grids:
        for col in g.columnDefs:
            assert "cellRenderer" not in col  # the default renderer shows text, never HTML
    assert not find(content, lambda c: getattr(c, "dangerously_allow_html", False))


def test_concept_page_and_drill_down(app):
    data = data_of(app)
    href = concept_href("?country=DE", SKILL)
    assert href == "/dashboard/concept?" + to_query(FilterState(country="DE",
                                                                concept=SKILL))[1:]
    assert concept_href("", "javascript:alert(1)") is None
    t = BY_PATH["concept"].tables(data, FilterState(concept=SKILL))
    assert {r["country"]: r["usage"] for r in t["concept_by_country"].rows} == {"DE": 5,
                                                                              "FR": 2}
    assert {r["language"] for r in t["concept_by_language"].rows} == {"de", "fr"}
    assert sum(r["usage"] for r in t["concept_usage_trend"].rows) == 7
    assert [r["label"] for r in t["concept_candidate_labels"].rows] == [HTML_LABEL]
    assert [r["label"] for r in t["concept_proposals"].rows] == ["quantum plumbing"]
    assert [r["suggested_label"] for r in t["concept_feedback"].rows] == ["Gewindearten neu"]
    assert any(r["kind"] == "preferred" for r in t["concept_labels"].rows)


def test_click_to_filter():
    assert click_href("/dashboard/uptake", "?period=last_quarter", "country=FR") == \
        "/dashboard/uptake?period=last_quarter&country=FR"
    assert click_href("/dashboard/", "?country=FR", "language=de") == \
        "/dashboard/?language=de&country=FR"
    assert click_href("/dashboard/concepts", "", SKILL) == concept_href("", SKILL)
    for bad in ("country=france", "implementer_id=3", "language=xx", None, 42):
        assert click_href("/dashboard/uptake", "", bad) is None
    assert click_href("/elsewhere", "", "country=FR") is None


def test_download_is_exactly_what_is_filtered(app, world):
    data = data_of(app)
    payload = download(data, "/dashboard/concepts", "?country=DE", "most_used_concepts")
    state = FilterState(country="DE")
    assert payload["filename"] == csv_filename("most_used_concepts", state)
    assert payload["filename"].endswith("_country-DE.csv")
    expected = query(world.settings, "most_used_concepts", state.period(), country="DE")
    assert payload["content"] == to_csv(expected.columns, expected.rows)
    assert payload["content"].splitlines()[0].startswith("rank,concept_uri,")
    assert len(payload["content"].splitlines()) == 3  # header + SKILL + OCCUPATION
    assert download(data, "/dashboard/concepts", "", "no_such_table") is None


def test_result_cache_keeps_objects_within_a_row_budget():
    from kpi.warehouse.indicators import Result

    cache = ResultCache(default_timeout=60, row_budget=10)
    small, big = Result(("a",), [{"a": 1}] * 4), Result(("a",), [{"a": 2}] * 7)
    cache.set("small", small)
    assert cache.get("small") is small  # the object itself: no pickling on the way
    cache.set("big", big)  # 11 rows > 10: the least recently used goes
    assert cache.get("small") is None and cache.get("big") is big
    cache.set("gone", small, timeout=-1)
    assert cache.get("gone") is None
    assert cache.clear() and cache.get("big") is None


def test_rendered_pages_are_counted_by_the_grid_rows_they_show(app):
    data = data_of(app)
    state = FilterState(preset="this_quarter")
    body = render_body(data, BY_PATH["concepts"], state)
    grids = find(body, lambda c: isinstance(getattr(c, "rowData", None), list))
    assert grids and shown_rows(body) == 1 + sum(len(g.rowData) for g in grids)
    assert shown_rows([]) == 1


def test_a_page_rendered_by_one_worker_is_served_by_the_others(world):
    first, second = data_of(create_dashboard(world.settings)), data_of(
        create_dashboard(world.settings))
    state = FilterState(preset="this_quarter", country="DE")
    body = render_body(first, BY_PATH["concepts"], state)

    def render_again() -> Any:
        raise AssertionError("rendered again in the second worker")

    shared = second.page("concepts", state, render_again)
    assert to_plotly(shared) == to_plotly(body)
    # a CSV download likewise
    payload = download(first, "/dashboard/concepts", to_query(state), "most_used_concepts")
    assert payload and payload["filename"] == csv_filename("most_used_concepts", state)
    assert second.download("concepts", "most_used_concepts", state, render_again) == payload
    # a full disk (or any error writing the shared copy) only costs the sharing
    second.pages.disk._path = "/proc/no-such-folder"
    other = FilterState(preset="this_quarter", country="FR")
    assert render_body(second, BY_PATH["concepts"], other) is render_body(
        second, BY_PATH["concepts"], other)


def to_plotly(body: Any) -> Any:
    import plotly

    return json.loads(json.dumps(body, cls=plotly.utils.PlotlyJSONEncoder))


def test_workers_take_turns_to_warm_up_and_render_each_view_once(world, monkeypatch):
    # nothing rendered yet on this host: no shared pages, two fresh workers
    shutil.rmtree(world.settings.data_dir / "cache" / "pages", ignore_errors=True)
    apps = [data_of(create_dashboard(world.settings)) for _ in range(2)]
    calls: list[str] = []
    for page in PAGES:
        original = page.render

        def counting(data, state, page=page, original=original):
            calls.append(page.PATH)
            return original(data, state)

        monkeypatch.setattr(page, "render", counting)
    lock = world.settings.data_dir / "cache" / "warm.lock"
    warmers = [Warmer(data, lambda path, state, data=data: render_body(data, BY_PATH[path], state),
                      [p.PATH for p in PAGES], interval=0.05, lock=lock) for data in apps]
    for warmer in warmers:
        warmer.start()
    try:
        for _ in range(400):
            if all(w.rounds for w in warmers):
                break
            warmers[0].stopped.wait(0.05)
        assert all(w.rounds == 1 for w in warmers)
    finally:
        for warmer in warmers:
            warmer.stopped.set()
            warmer.join(timeout=30)
    assert sorted(calls) == sorted(p.PATH for p in PAGES for _ in WARM_PRESETS)


def test_small_shares_are_not_shown_as_zero():
    from dashboard.components import fmt_number

    assert fmt_number(2 / 18237, percent=True) == "0.01 %"
    assert fmt_number(0.0, percent=True) == "0.0 %"
    assert fmt_number(0.256, percent=True) == "25.6 %"
    assert fmt_number(None, percent=True) == "–"


def test_csv_cells_are_safe_for_spreadsheets():
    text = to_csv(("a", "b", "c"), [{"a": "=cmd()", "b": -3, "c": ["x", "@y"]}])
    assert text == "a,b,c\n'=cmd(),-3,x; @y\n"


def test_label_language(app):
    data = data_of(app)
    en = BY_PATH["concepts"].tables(data, FilterState())["most_used_concepts"].rows
    de = BY_PATH["concepts"].tables(data, FilterState(label_language="de"))[
        "most_used_concepts"].rows
    assert [r["concept_uri"] for r in en] == [r["concept_uri"] for r in de]
    assert [r["label"] for r in en] != [r["label"] for r in de]


def test_new_aggregation_refreshes_the_cache(app, world):
    data = data_of(app)
    before = BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows[0]["current"]
    world.send(world.key_a, [event("a9", concept_uri=SKILL, count=100)])
    assert BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows[0]["current"] == before
    run_aggregation(world.settings)
    after = BY_PATH[""].tables(data, FilterState())["kpi_summary"].rows[0]["current"]
    assert after == before + 100


def test_a_run_that_touches_only_today_keeps_other_periods_cached(app, world):
    data = data_of(app)
    last_quarter = FilterState(preset="last_quarter")
    old = Period.custom(days_ago(400), days_ago(200))
    month = FilterState().period()
    before = (period_fingerprint(world.settings, old.start, old.end),
              period_fingerprint(world.settings, month.start, month.end))
    body = render_body(data, BY_PATH["concepts"], last_quarter)
    assert render_body(data, BY_PATH["concepts"], last_quarter) is body  # memo
    world.send(world.key_a, [event("fp1", concept_uri=SKILL, count=3)])
    run_aggregation(world.settings)
    assert period_fingerprint(world.settings, old.start, old.end) == before[0]
    assert period_fingerprint(world.settings, month.start, month.end) != before[1]
    assert render_body(data, BY_PATH["concepts"], last_quarter) is body  # today is not in it
    fresh = render_body(data, BY_PATH["concepts"], FilterState())
    assert render_body(data, BY_PATH["concepts"], FilterState()) is fresh


def test_new_data_quality_counts_keep_every_other_page_cached(app, world):
    data = data_of(app)
    state = FilterState()
    pages = {path: render_body(data, BY_PATH[path], state) for path in ("", "concepts", "quality")}
    before = (data.fingerprint(state.period()), data.fingerprint(state.period(), quality=True))
    # a rejected event and a duplicate: counted, nothing stored
    world.send(world.key_a, [event("dq1", language="xx"),
                             event("a1", concept_uri=SKILL, language="de", count=5,
                                   context="job_vacancy")])
    run_aggregation(world.settings)
    assert data.fingerprint(state.period()) == before[0]
    assert data.fingerprint(state.period(), quality=True) != before[1]
    for path in ("", "concepts"):
        assert render_body(data, BY_PATH[path], state) is pages[path]
    assert render_body(data, BY_PATH["quality"], state) is not pages["quality"]


def test_only_the_quality_indicators_read_the_quality_counters():
    # Data.fingerprint leaves quality_daily out for everything else
    for name in (*INDICATORS, *SUPPORT_QUERIES):
        reads = re.search(r"\bquality_daily\b", load_sql(name)) is not None
        assert reads == (name in QUALITY_INDICATORS), name
    assert BY_PATH[QUALITY_PAGE].TITLE == "Data quality"


def test_warmer_renders_every_default_view_after_each_run(world):
    app = create_dashboard(world.settings)
    data = data_of(app)
    rendered: list[tuple[str, str]] = []

    def render(path: str, state: FilterState) -> Any:
        rendered.append((path, state.preset))
        return render_body(data, BY_PATH[path], state)

    warmer = Warmer(data, render, [p.PATH for p in PAGES], interval=0.05)
    warmer.start()
    try:
        for _ in range(200):
            if warmer.rounds:
                break
            warmer.stopped.wait(0.05)
        assert warmer.rounds == 1
        assert set(WARM_PRESETS) <= set(PRESETS)
        assert sorted(rendered) == sorted((p.PATH, preset) for p in PAGES
                                          for preset in WARM_PRESETS)
        # what a visitor asks next comes from the memo
        for p in PAGES:
            assert render_body(data, p, FilterState()) is render_body(data, p, FilterState())
        world.send(world.key_a, [event("warm1", concept_uri=SKILL)])
        run_aggregation(world.settings)
        for _ in range(200):
            if warmer.rounds == 2:
                break
            warmer.stopped.wait(0.05)
        assert warmer.rounds == 2  # a new snapshot: warmed again
    finally:
        warmer.stopped.set()
        warmer.join(timeout=30)
