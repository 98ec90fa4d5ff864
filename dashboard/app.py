"""The dashboard's Flask server: login, logout, the session guard, and the Dash app.

Every route under /dashboard/ — the pages and all of Dash's own routes (layout, dependencies,
callbacks, component bundles, assets) — needs a live session: pages redirect to /login,
everything else answers 401 with JSON.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dash
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import (
    Flask,
    Response,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
    session,
)
from flask.sessions import SecureCookieSessionInterface
from flask_caching import Cache

from dashboard import auth
from dashboard.components import empty_state
from dashboard.data import PAGE_ROW_BUDGET, Data, SharedPageCache, Warmer, to_csv
from dashboard.pages import BY_PATH, PAGES
from dashboard.state import (
    FILTER_NAMES,
    PRESETS,
    FilterState,
    clean_filter,
    csv_filename,
    parse_query,
    to_query,
)
from kpi.catalogue.load import LANGUAGES
from kpi.settings import Settings
from kpi.store.db import make_engine
from kpi.store.registry import SECTORS, check_user, list_implementers
from kpi.warehouse.indicators import CONCEPT_TYPES, CONTEXTS

log = logging.getLogger("esco_kpi.dashboard")
PREFIX = "/dashboard/"
ATTRIBUTION = ("This service uses the ESCO classification of the European Commission "
               "(ESCO v1.2.0, © European Union, https://esco.ec.europa.eu)")
# Dash keeps inline scripts out of the page except its renderer start-up, which is allowed by
# hash below; Plotly and AG Grid inject <style> elements, hence 'unsafe-inline' for styles
# only. No 'unsafe-eval': the browser tests check that nothing the pages do needs it.
CSP = ("default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CONTROLS = ("period", "start", "end", *FILTER_NAMES, "labels")

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · ESCO KPI dashboard</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0;color:#1b1b1b}
main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:1rem 0 .3rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;
font-size:1rem;border:1px solid #888;border-radius:4px}
button{margin-top:1.5rem;width:100%;padding:.6rem;font-size:1rem;background:#0072B2;
color:#fff;border:0;border-radius:4px;cursor:pointer}
.message{background:#fdecea;border-left:4px solid #D55E00;padding:.6rem;margin-top:1rem}
footer{text-align:center;font-size:.8rem;color:#555;margin:2rem 1rem}
</style></head>
<body><main>
<h1>ESCO KPI dashboard</h1>
{% if message %}<p class="message" role="alert" id="login-message">{{ message }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<input type="hidden" name="next" value="{{ next }}">
<label for="username">User name</label>
<input type="text" id="username" name="username" value="{{ username }}"
 autocomplete="username" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password"
 required>
<button type="submit" id="login-button">Log in</button>
</form></main>
<footer>{{ attribution }}</footer>
</body></html>
"""


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure only when the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:  # noqa: ARG002 - Flask's signature
        return request.is_secure


def create_dashboard(settings: Settings, warm_up: bool = False) -> Flask:
    """The dashboard's Flask server (with the Dash app mounted at /dashboard/).

    warm_up: start a Warmer thread that renders the default views after every aggregation
    (`serve` does, per worker; tests call the pages themselves).
    """
    server = Flask(__name__)
    server.secret_key = auth.load_secret_key(settings.data_dir)
    server.session_interface = _SessionInterface()
    server.config.update(
        SESSION_COOKIE_NAME="esco_kpi_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=auth.SESSION_SECONDS),
        MAX_CONTENT_LENGTH=1_000_000,
    )
    engine = make_engine(settings)
    auth.init_tables(engine)
    server.extensions["esco_store"] = engine
    cache = Cache(server, config={"CACHE_TYPE": "dashboard.data.ResultCache"})
    pages = SharedPageCache(settings.data_dir / "cache" / "pages", row_budget=PAGE_ROW_BUDGET)
    data = Data(settings, cache, pages)
    server.extensions["esco_dashboard_data"] = data
    if warm_up:
        warmer = Warmer(data, lambda path, state: render_body(data, BY_PATH[path], state),
                        [p.PATH for p in PAGES], lock=settings.data_dir / "cache" / "warm.lock")
        warmer.start()
        server.extensions["esco_dashboard_warmer"] = warmer

    _add_auth_routes(server, engine)
    app = _create_dash(server, data, engine)
    # Dash registers its script bundles on the first request, after setting its "done" flag:
    # under threaded workers a concurrent request for a bundle can then get a 500. Doing the
    # set-up now, before any request, closes that race.
    with server.test_request_context(PREFIX):
        app._setup_server()
    hashes: list[str] = app.csp_hashes()

    @server.after_request
    def headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", CSP.format(hashes=" ".join(hashes)))
        if request.path == "/login" or request.path.startswith(PREFIX):
            # pages and data are per user: never keep them in shared caches
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return server


# ---------------------------------------------------------------------------------------------
# Login, logout and the guard


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def _safe_next(target: str | None) -> str:
    """Only ever redirect into the dashboard (no open redirect)."""
    if target and target.startswith(PREFIX) and "//" not in target and "\\" not in target:
        return target
    return PREFIX


def _login_form(message: str | None = None, status: int = 200, username: str = "",
                target: str = PREFIX) -> Response:
    html_text = render_template_string(
        LOGIN_PAGE, message=message, csrf_token=_csrf_token(), username=username,
        next=_safe_next(target), attribution=ATTRIBUTION)
    return Response(html_text, status=status, content_type="text/html; charset=utf-8")


def _same_origin() -> bool:
    """A state-changing request whose Origin (if sent) is this site."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    # host and port only: behind a TLS-terminating proxy the scheme seen here is http
    return urlsplit(origin).netloc == request.host


def _add_auth_routes(server: Flask, engine) -> None:
    def current_user() -> str | None:
        if "user" not in g:
            g.user = auth.session_user(engine, session.get("sid"))
        return g.user

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
            return redirect("/login?" + _urlencode({"next": target}))
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
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
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


def _urlencode(values: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


# ---------------------------------------------------------------------------------------------
# The Dash app


def _options(values: tuple[str, ...] | list[str], label=None) -> list[dict[str, str]]:
    return [{"label": label(v) if label else v, "value": v} for v in values]


def _countries(engine) -> list[str]:
    try:
        return sorted({i["country"] for i in list_implementers(engine)})
    except Exception:  # noqa: BLE001 - the filter still works by URL if the store is down
        log.warning("could not list countries for the filter", exc_info=True)
        return []


def filter_bar(countries: list[str]) -> html.Div:
    """The period and the global filters (their values are set from the URL on load)."""
    def dropdown(name: str, label: str, options: list[dict], clearable: bool = True,
                 placeholder: str = "all") -> html.Div:
        return html.Div(className="filter", children=[
            html.Label(label, htmlFor=f"f-{name}"),
            dcc.Dropdown(id=f"f-{name}", options=options, clearable=clearable,
                         placeholder=placeholder, searchable=True),
        ])

    return html.Div(id="filters", className="filters", children=[
        html.Div(className="filter period", children=[
            html.Span("Period", className="filter-label"),
            dcc.RadioItems(id="f-period", options=_options(tuple(PRESETS), PRESETS.get),
                           value="last30", inline=True, className="presets"),
        ]),
        html.Div(id="custom-dates", className="filter custom-dates", children=[
            html.Label("From", htmlFor="f-start"),
            dcc.Input(id="f-start", type="date", debounce=True),
            html.Label("to", htmlFor="f-end"),
            dcc.Input(id="f-end", type="date", debounce=True),
        ]),
        dropdown("concept_type", "Concept type", _options(CONCEPT_TYPES)),
        dropdown("language", "Language", _options(LANGUAGES)),
        dropdown("country", "Country", _options(countries)),
        dropdown("sector", "Sector", _options(SECTORS, lambda s: s.replace("_", " "))),
        dropdown("context", "Context", _options(CONTEXTS, lambda s: s.replace("_", " "))),
        dropdown("labels", "Label language", _options(LANGUAGES), clearable=False,
                 placeholder="en"),
    ])


def sync_controls(triggered: Any, search: str | None, values: tuple[Any, ...]
                  ) -> tuple[Any, ...]:
    """Keep the URL and the filter controls in step: (search, *control values, dates style).

    On load and on back/forward the URL wins; when a control changes, the URL follows (the
    concept chosen on the concept page stays).
    """
    if triggered is None or triggered == "url":
        state = parse_query(search)
    else:
        given = dict(zip(CONTROLS, values, strict=True))
        current = parse_query(search)
        preset = given["period"] if given["period"] in PRESETS else "last30"
        start, end = _as_date(given["start"]), _as_date(given["end"])
        if preset == "custom" and not (start and end):
            # switching to custom starts from the period shown so far
            shown = current.period()
            start, end = start or shown.start, end or shown.end
        state = FilterState(
            preset=preset, start=start if preset == "custom" else None,
            end=end if preset == "custom" else None,
            label_language=given["labels"] if given["labels"] in LANGUAGES else "en",
            concept=current.concept,
            **{n: clean_filter(n, given[n]) for n in FILTER_NAMES})
    new_search = to_query(state)
    period = state.period()
    controls = (state.preset, period.start.isoformat(), period.end.isoformat(),
                *[getattr(state, n) for n in FILTER_NAMES], state.label_language)
    style = {} if state.preset == "custom" else {"display": "none"}
    # the URL is only written when a control changed it: on load it stays as the user gave it
    from_url = triggered is None or triggered == "url"
    url_out = no_update if from_url or new_search == (search or "") else new_search
    return (url_out, *controls, style)


def _as_date(value: Any):
    from datetime import date

    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def page_for(pathname: str | None):
    """The page module a path under /dashboard/ stands for (None: no such page)."""
    if not (pathname or "").startswith(PREFIX):
        return None
    return BY_PATH.get(pathname[len(PREFIX):].strip("/"))


def render_page(data: Data, pathname: str | None, search: str | None) -> tuple[Any, Any, Any]:
    """The content, the period line and the menu for a URL."""
    state = parse_query(search)
    page = page_for(pathname)
    menu = [dcc.Link(p.TITLE, href=f"{PREFIX}{p.PATH}{to_query(state.with_(concept=None))}",
                     className="menu-link active" if p is page else "menu-link",
                     id=f"menu-{p.PATH or 'overview'}") for p in PAGES]
    period = state.period()
    prev = period.previous()
    info = (f"{period.start:%d %b %Y} – {period.end:%d %b %Y} ({period.days} days), "
            f"compared with {prev.start:%d %b %Y} – {prev.end:%d %b %Y}")
    if page is None:
        return [empty_state("No such page.")], info, menu
    try:
        body = render_body(data, page, state)
    except Exception:  # noqa: BLE001 - show the failure on the page, keep the app usable
        log.exception("dashboard page %s failed", page.PATH)
        body = [html.Div("This page could not be loaded; the error is in the server log.",
                         className="error", role="alert")]
    return [html.H1(page.TITLE if page.PATH != "concept" else "Concept", id="page-title"),
            *body], info, menu


def render_body(data: Data, page: Any, state: FilterState) -> list[Any]:
    """A page's body for a state, from the memo when the same view was rendered before."""
    return data.page(page.PATH, state, lambda: page.render(data, state))


def download(data: Data, pathname: str | None, search: str | None, table: str
             ) -> dict[str, Any] | None:
    """The dcc.Download payload of one table of a page, as shown for this URL."""
    page = page_for(pathname)
    if page is None:
        return None
    state = parse_query(search)

    def build() -> dict[str, Any] | None:
        found = page.tables(data, state).get(table)
        if found is None:
            return None
        return dcc.send_string(to_csv(found.columns, found.rows), csv_filename(table, state),
                               type="text/csv")

    return data.download(page.PATH, table, state, build)


def concept_href(search: str | None, uri: str | None) -> str | None:
    """The concept page of a URI, keeping the period and filters."""
    if not uri or not isinstance(uri, str) or not uri.startswith("http://data.europa.eu/esco/"):
        return None
    state = parse_query(search).with_(concept=uri)
    if state.concept is None:  # not a well-formed concept URI
        return None
    return f"{PREFIX}concept{to_query(state)}"


def click_href(pathname: str | None, search: str | None, target: Any) -> str | None:
    """Where a click on a chart leads: a concept URI opens the concept; "country=DE" (or
    another filter) sets that filter on the same page (click-to-filter)."""
    if not isinstance(target, str):
        return None
    if target.startswith("http"):
        return concept_href(search, target)
    name, _, value = target.partition("=")
    if name not in FILTER_NAMES or clean_filter(name, value) is None or page_for(pathname) is None:
        return None
    state = parse_query(search).with_(**{name: clean_filter(name, value)})
    return f"{pathname}{to_query(state)}"


def _create_dash(server: Flask, data: Data, engine) -> Dash:
    app = Dash(
        __name__, server=server, url_base_pathname=PREFIX, title="ESCO KPI dashboard",
        assets_folder=str(Path(__file__).parent / "assets"),
        suppress_callback_exceptions=True, update_title=None, serve_locally=True,
    )

    def layout() -> html.Div:
        return html.Div(className="page", children=[
            dcc.Location(id="url", refresh=False),
            dcc.Location(id="nav", refresh="callback-nav"),
            dcc.Download(id="download"),
            html.Header(className="top", children=[
                html.Div("ESCO KPI dashboard", className="brand"),
                html.Nav(id="menu", className="menu"),
                html.Form(action="/logout", method="POST", className="logout", children=[
                    html.Button("Log out", type="submit", id="logout-button")]),
            ]),
            filter_bar(_countries(engine)),
            html.Div(id="period-info", className="period-info"),
            dcc.Loading(html.Main(id="content", className="content"), type="default",
                        delay_show=150),
            html.Footer(ATTRIBUTION, className="footer", id="attribution"),
        ])

    app.layout = layout

    @app.callback(
        Output("url", "search"),
        *[Output(f"f-{c}", "value") for c in CONTROLS],
        Output("custom-dates", "style"),
        Input("url", "search"),
        *[Input(f"f-{c}", "value") for c in CONTROLS],
    )
    def sync(search: str | None, *values: Any) -> tuple[Any, ...]:
        return sync_controls(ctx.triggered_id, search, values)

    @app.callback(
        Output("content", "children"),
        Output("period-info", "children"),
        Output("menu", "children"),
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def content(pathname: str | None, search: str | None) -> tuple[Any, Any, Any]:
        return render_page(data, pathname, search)

    @app.callback(
        Output("download", "data"),
        Input({"type": "download", "table": ALL, "key": ALL}, "n_clicks"),
        State("url", "pathname"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def on_download(clicks: list[int | None], pathname: str | None, search: str | None
                    ) -> dict[str, Any]:
        if not ctx.triggered_id or not any(clicks):
            raise PreventUpdate
        triggered = ctx.triggered[0].get("value") if ctx.triggered else None
        if not triggered:
            raise PreventUpdate
        payload = download(data, pathname, search, ctx.triggered_id["table"])
        if payload is None:
            raise PreventUpdate
        return payload

    @app.callback(
        Output("nav", "href"),
        Input({"type": "grid", "table": ALL}, "selectedRows"),
        Input({"type": "chart", "name": ALL}, "clickData"),
        State("url", "pathname"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def on_click(_rows: list, _clicks: list, pathname: str | None, search: str | None) -> str:
        value = ctx.triggered[0].get("value") if ctx.triggered else None
        target = None
        if isinstance(value, list) and value and isinstance(value[0], dict):
            target = value[0].get("concept_uri")  # a grid row (selectedRows)
        elif isinstance(value, dict) and value.get("points"):
            target = value["points"][0].get("customdata")  # a bar's clickData
        href = click_href(pathname, search, target)
        if href is None:
            raise PreventUpdate
        return href

    return app


__all__ = ["create_dashboard", "dash"]
