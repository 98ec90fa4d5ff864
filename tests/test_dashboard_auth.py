"""The dashboard's door: the guard, log-in with CSRF, log-out, brute-force lockout, the session
cookie and secret key, and the security headers."""

from __future__ import annotations

import json
import re
import stat

from dashboard import ATTRIBUTION, auth
from dashboard.app import create_dashboard
from tests.dashboard_world import PASSWORD, csrf, log_in

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

    # without serve's warm-up: its thread would go on rendering the shared store's pages in
    # the test process, after every later test's aggregation
    client = Client(build_wsgi_app(world.settings.replace(dashboard__warm_up=False)))
    health = client.get("/v1/health")
    assert health.status_code == 200 and json.loads(health.get_data()) == {"status": "ok"}
    assert client.get("/metrics").status_code == 200
    assert client.get("/login").status_code == 200


def test_the_unknown_user_hash_is_made_before_the_first_login(world):
    # made when the dashboard starts, not at the first unknown user (whose answer would then
    # take longer than a wrong password's), nor at import (every CLI process would pay scrypt)
    from kpi.store import registry

    registry._dummy_hash.cache_clear()
    create_dashboard(world.settings)
    assert registry._dummy_hash.cache_info().currsize == 1
