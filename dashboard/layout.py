"""What every dashboard page is framed by: the header and menu, the filter bar, the footer."""

from __future__ import annotations

import logging
from collections.abc import Callable

from dash import dcc, html
from flask import current_app
from sqlalchemy import Engine

from dashboard import ATTRIBUTION, STATEMENT_PATH
from dashboard.components import release_header
from dashboard.state import FILTER_NAMES, PRESETS
from kpi.store.registry import list_implementers
from kpi.vocabulary import CONCEPT_TYPES, CONTEXTS, LANGUAGES, SECTORS

log = logging.getLogger("esco_kpi.dashboard")
# The controls of the filter bar (ids f-<name>), in the order the callbacks list them.
CONTROLS = ("period", "start", "end", *FILTER_NAMES, "labels")


def _options(values: tuple[str, ...] | list[str], label=None) -> list[dict[str, str]]:
    return [{"label": label(v) if label else v, "value": v} for v in values]


def _countries(engine: Engine) -> list[str]:
    try:
        return sorted({i["country"] for i in list_implementers(engine)})
    except Exception:  # noqa: BLE001 - the filter still works by URL if the store is down
        log.warning("could not list countries for the filter", exc_info=True)
        return []


def _release_info() -> html.Details | html.Div:
    """The header's note of the current ESCO release, from the dashboard's memoised data
    (dashboard.app keeps it on the server): rebuilt with every page load, so it follows the
    run that publishes a newly loaded release."""
    try:
        data = current_app.extensions["esco_dashboard_data"]
        return release_header(data.releases().rows)
    except Exception:  # noqa: BLE001 - the pages still work without the note
        log.warning("could not read the loaded ESCO releases", exc_info=True)
        return html.Div(id="release-info", className="releases")


def filter_bar(countries: list[str]) -> html.Div:
    """The period and the global filters (their values are set from the URL on load)."""
    def dropdown(name: str, label: str, options: list[dict], clearable: bool = True,
                 placeholder: str = "all") -> html.Div:
        return html.Div(className="filter", children=[
            # the id lets the dropdown's button carry the label in its name (assets/a11y.js)
            html.Label(label, htmlFor=f"f-{name}", id=f"f-{name}-label"),
            dcc.Dropdown(id=f"f-{name}", options=options, clearable=clearable,
                         placeholder=placeholder, searchable=True),
        ])

    return html.Div(id="filters", className="filters", role="search",
                    **{"aria-label": "Period and filters"}, children=[
        html.Div(className="filter period", children=[
            html.Span("Period", className="filter-label", id="f-period-label"),
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


def shell(engine: Engine) -> Callable[[], html.Div]:
    """The app's layout, built on every page load (the country list follows the registry):
    the header with the menu and log-out button, the filter bar, the period line, the content
    the callbacks fill, and the attribution."""

    def layout() -> html.Div:
        return html.Div(className="page", children=[
            # the first thing Tab reaches: past the menu and the filters to the content
            html.A("Skip to main content", href="#content", className="skip-link",
                   id="skip-link"),
            dcc.Location(id="url", refresh=False),
            dcc.Location(id="nav", refresh="callback-nav"),
            # says when a CSV download started (dashboard.downloads, assets/downloads.js)
            html.Div(id="download-status", role="status", className="visually-hidden"),
            html.Header(className="top", children=[
                html.Div("ESCO KPI dashboard", className="brand"),
                # refreshed on every page change too (dashboard.callbacks), so that a
                # release loaded meanwhile shows without a full reload
                html.Div(_release_info(), id="release-note"),
                html.Nav(id="menu", className="menu", **{"aria-label": "Pages"}),
                html.Form(action="/logout", method="POST", className="logout", children=[
                    html.Button("Log out", type="submit", id="logout-button")]),
            ]),
            filter_bar(_countries(engine)),
            # a status: a screen reader announces the new period when it changes
            html.Div(id="period-info", className="period-info", role="status"),
            # tabIndex -1: the skip link moves the keyboard focus here, not only the view.
            # The spinner is for a page being rendered only: dcc.Loading otherwise hides
            # (visibility: hidden) the whole content while any callback writes inside it,
            # say the Review page's details of a selection or its decision, which takes
            # the focus from the note being typed and lets a click land on nothing.
            dcc.Loading(html.Main(id="content", className="content", tabIndex="-1"),
                        type="default", delay_show=150,
                        target_components={"content": "children"}),
            html.Footer(className="footer", children=[
                html.Span(ATTRIBUTION, id="attribution"), " · ",
                html.A("Accessibility statement", href=STATEMENT_PATH,
                       id="accessibility-link"),
            ]),
        ])

    return layout
