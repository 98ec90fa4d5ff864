"""The dashboard's callbacks: the URL and the filter controls in step, the page for a URL, CSV
downloads (started in the browser, see dashboard.downloads), and clicks that open a concept or
set a filter.

The work is done by plain functions (sync_controls, render_page, click_href), which
the tests call directly; register_callbacks wires them to the components of dashboard.layout.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import PREFIX
from dashboard.components import empty_state, release_header
from dashboard.data import Data, RenderedBody
from dashboard.layout import CONTROLS
from dashboard.pages import BY_PATH, PAGES
from dashboard.review import register_review_callbacks
from dashboard.state import (
    FILTER_NAMES,
    PRESETS,
    FilterState,
    clean_filter,
    parse_query,
    to_query,
)
from kpi.vocabulary import ESCO_URI_PREFIX, LANGUAGES

log = logging.getLogger("esco_kpi.dashboard")


def sync_controls(triggered: Any, search: str | None, values: tuple[Any, ...]
                  ) -> tuple[Any, ...]:
    """Keep the URL and the filter controls in step: (search, *control values, dates style).

    On load and on back/forward the URL wins; when a control changes, the URL follows (what
    the page itself chose stays: the concept page's concept, the Review page's kind, status
    and linked item).
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
            concept=current.concept, kind=current.kind, status=current.status,
            item=current.item,
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


def _as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def page_for(pathname: str | None):
    """The page module a path under /dashboard/ stands for (None: no such page)."""
    if not (pathname or "").startswith(PREFIX):
        return None
    return BY_PATH.get(pathname[len(PREFIX):].strip("/"))


def render_page(data: Data, pathname: str | None, search: str | None, for_dash: bool = False
                ) -> tuple[Any, Any, Any]:
    """The content, the period line and the menu for a URL. With `for_dash` (what the
    content callback sends) a memoised body comes as its kept JSON (RenderedBody.for_dash);
    without, always as components."""
    state = parse_query(search)
    page = page_for(pathname)
    # the menu keeps the period and the global filters, not one page's own choices
    shared = state.with_(concept=None, kind=None, status=None, item=None)
    menu = [dcc.Link(p.TITLE, href=f"{PREFIX}{p.PATH}{to_query(shared)}",
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
    if isinstance(body, RenderedBody):
        if for_dash:
            body = body.for_dash()
        elif body.parts and not body:  # another worker's copy holds the JSON alone
            body = page.render(data, state)
    return [html.H1(page.TITLE if page.PATH != "concept" else "Concept", id="page-title"),
            *body], info, menu


def render_body(data: Data, page: Any, state: FilterState) -> list[Any]:
    """A page's body for a state, from the memo when the same view was rendered before (a
    LIVE page, which shows the ingest store's decisions and the user's role, is never
    memoised)."""
    if getattr(page, "LIVE", False):
        return page.render(data, state)
    return data.page(page.PATH, state, lambda: page.render(data, state))


def warm_view(data: Data, page: Any, state: FilterState) -> None:
    """What the Warmer does for a default view: a memoised page rendered (render_body), a LIVE
    page's own memoised part computed (its `warm`: the page is rendered per request, with
    the user's role and session in it)."""
    if getattr(page, "LIVE", False):
        page.warm(data, state)
    else:
        render_body(data, page, state)


def concept_href(search: str | None, uri: str | None) -> str | None:
    """The concept page of a URI, keeping the period and filters."""
    if not uri or not isinstance(uri, str) or not uri.startswith(ESCO_URI_PREFIX):
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


def register_callbacks(app: Dash, data: Data) -> None:
    """Wire the functions above to the components of dashboard.layout (and the Review
    page's own controls: dashboard.review)."""
    register_review_callbacks(app, data)

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
        return render_page(data, pathname, search, for_dash=True)

    @app.callback(Output("release-note", "children"), Input("url", "pathname"),
                  prevent_initial_call=True)
    def release_note(_pathname: str | None) -> Any:
        return release_header(data.releases().rows)

    # a "Download CSV" button fetches its table's file in the browser (dashboard.downloads)
    app.clientside_callback(
        ClientsideFunction("downloads", "start"),
        Output("download-status", "children"),
        Input({"type": "download", "table": ALL, "key": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )

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
