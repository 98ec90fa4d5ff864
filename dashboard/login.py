"""Logging in and out, the session cookie, and the guard in front of the dashboard.

Every route under /dashboard/ — the pages and all of Dash's own routes (layout, dependencies,
callbacks, component bundles, assets) — needs a live session: pages redirect to /login,
everything else answers 401 with JSON. The sessions and the lockout live in the store
(dashboard.auth).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import (
    Flask,
    Response,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine

from dashboard import ATTRIBUTION, PREFIX, auth
from kpi.store.registry import check_user, prime_password_checks

log = logging.getLogger("esco_kpi.dashboard")


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure only when the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:  # noqa: ARG002 - Flask's signature
        return request.is_secure


def configure_sessions(server: Flask, data_dir: Path) -> None:
    """The session cookie: signed with the host's shared key, HttpOnly, SameSite=Lax."""
    server.secret_key = auth.load_secret_key(data_dir)
    server.session_interface = _SessionInterface()
    server.config.update(
        SESSION_COOKIE_NAME="esco_kpi_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=auth.SESSION_SECONDS),
    )


def csrf_token() -> str:
    """The session's CSRF token (made on first use): the login form sends it, and so do the
    Review page's decisions (dashboard.review)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok(sent: object) -> bool:
    """Whether `sent` is the session's CSRF token."""
    expected = session.get("csrf")
    return bool(isinstance(sent, str) and expected
                and hmac.compare_digest(sent.encode(), expected.encode()))


def session_username(engine: Engine) -> str | None:
    """The user of the request's live session; None outside a request or without one."""
    if not has_request_context():
        return None
    if "user" not in g:
        g.user = auth.session_user(engine, session.get("sid"))
    return g.user


def _safe_next(target: str | None) -> str:
    """Only ever redirect into the dashboard (no open redirect)."""
    if target and target.startswith(PREFIX) and "//" not in target and "\\" not in target:
        return target
    return PREFIX


def _login_form(message: str | None = None, status: int = 200, username: str = "",
                target: str = PREFIX) -> Response:
    html_text = render_template(
        "login.html", message=message, csrf_token=csrf_token(), username=username,
        next=_safe_next(target), attribution=ATTRIBUTION)
    return Response(html_text, status=status, content_type="text/html; charset=utf-8")


def _same_origin() -> bool:
    """A state-changing request whose Origin (if sent) is this site, and that the browser
    (if it says so in Sec-Fetch-Site) did not send from another site."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    # host and port only: behind a TLS-terminating proxy the scheme seen here is http
    return urlsplit(origin).netloc == request.host


def add_login_routes(server: Flask, engine: Engine) -> None:
    """The guard (before every request), /, /login (form and post) and /logout."""
    prime_password_checks()

    def current_user() -> str | None:
        return session_username(engine)

    @server.before_request
    def guard() -> Response | None:
        path = request.path
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _same_origin():
            return Response("cross-site request refused", status=403, mimetype="text/plain")
        if path == "/dashboard":
            return redirect(PREFIX)
        if not path.startswith(PREFIX) or current_user():
            return None
        rest = path[len(PREFIX):]
        is_page = (request.method in ("GET", "HEAD") and not rest.startswith("_")
                   and not rest.startswith("assets/"))
        if is_page:
            target = path + (f"?{request.query_string.decode()}" if request.query_string
                             else "")
            return redirect("/login?" + urlencode({"next": target}))
        response = jsonify(error="not logged in", login="/login")
        response.status_code = 401
        return response

    @server.get("/")
    def root() -> Response:
        return redirect(PREFIX)

    @server.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    @server.get("/login")
    def login_page() -> Response:
        if current_user():
            return redirect(_safe_next(request.args.get("next")))
        return _login_form(target=request.args.get("next", PREFIX))

    @server.post("/login")
    def login() -> Response:
        username = request.form.get("username", "").strip()[:100]
        password = request.form.get("password", "")
        target = request.form.get("next", PREFIX)
        if not csrf_ok(request.form.get("csrf_token", "")):
            return _login_form("The form expired. Please log in again.", 400, username, target)
        lock = auth.check_lock(engine, username)
        if lock is not None:
            # refused before the password is looked at: a locked name gives away nothing
            response = _login_form(
                f"Too many failed log-ins. Try again in {lock.seconds} seconds.", 429,
                username, target)
            response.headers["Retry-After"] = str(lock.seconds)
            return response
        if not username or not password or not check_user(engine, username, password):
            auth.record_failure(engine, username)
            log.warning("dashboard log-in failed")
            return _login_form("Wrong user name or password.", 401, username, target)
        auth.record_success(engine, username)
        end_previous = session.get("sid")
        auth.end_session(engine, end_previous)
        session.clear()  # a fresh session (and CSRF token) after log-in: no fixation
        session["sid"] = auth.start_session(engine, username)
        session.permanent = True
        log.info("dashboard log-in")
        return redirect(_safe_next(target))

    @server.post("/logout")
    def logout() -> Response:
        auth.end_session(engine, session.get("sid"))
        session.clear()
        return redirect("/login")
