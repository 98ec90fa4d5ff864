"""The dashboard's Flask server, with the Dash app mounted at /dashboard/: create_dashboard
wires the login (dashboard.login), the layout (dashboard.layout), the callbacks
(dashboard.callbacks) and the security headers (dashboard.security) together.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
from dash import Dash
from flask import Flask, render_template
from flask_caching import Cache

from dashboard import ATTRIBUTION, PREFIX, STATEMENT_PATH, auth
from dashboard.callbacks import register_callbacks, warm_view
from dashboard.data import PAGE_ROW_BUDGET, Data, SharedPageCache, Warmer
from dashboard.downloads import add_download_route
from dashboard.layout import shell
from dashboard.login import add_login_routes, configure_sessions
from dashboard.pages import BY_PATH, WARMED
from dashboard.security import add_security_headers
from kpi.settings import Settings
from kpi.store.db import make_engine

HERE = Path(__file__).parent
# Dash's page, in English (lang: WCAG 3.1.1), without its Internet Explorer comment.
INDEX = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""


def create_dashboard(settings: Settings, warm_up: bool = False) -> Flask:
    """The dashboard's Flask server (with the Dash app mounted at /dashboard/).

    warm_up: start a Warmer thread that renders the default views after every aggregation
    (`serve` does, per worker; tests call the pages themselves).
    """
    use_system_allocator()
    server = Flask(__name__, template_folder=str(HERE / "templates"))
    configure_sessions(server, settings.data_dir)
    server.config.update(MAX_CONTENT_LENGTH=1_000_000)
    engine = make_engine(settings)
    auth.init_tables(engine)
    server.extensions["esco_store"] = engine
    cache = Cache(server, config={"CACHE_TYPE": "dashboard.data.ResultCache"})
    pages = SharedPageCache(settings.data_dir / "cache" / "pages", row_budget=PAGE_ROW_BUDGET)
    data = Data(settings, cache, pages, store=engine)
    server.extensions["esco_dashboard_data"] = data
    if warm_up:
        warmer = Warmer(data, lambda path, state: warm_view(data, BY_PATH[path], state),
                        [p.PATH for p in WARMED],
                        lock=settings.data_dir / "cache" / "warm.lock")
        warmer.start()
        server.extensions["esco_dashboard_warmer"] = warmer

    add_login_routes(server, engine)
    add_download_route(server, data)

    @server.get(STATEMENT_PATH)
    def accessibility() -> str:
        """The accessibility statement (public, like the login form that links to it)."""
        return render_template("accessibility.html", attribution=ATTRIBUTION)

    app = Dash(
        __name__, server=server, url_base_pathname=PREFIX, title="ESCO KPI dashboard",
        assets_folder=str(HERE / "assets"),
        suppress_callback_exceptions=True, update_title=None, serve_locally=True,
    )
    app.index_string = INDEX
    app.layout = shell(engine)
    register_callbacks(app, data)
    # Dash registers its script bundles on the first request, after setting its "done" flag:
    # under threaded workers a concurrent request for a bundle can then get a 500. Doing the
    # set-up now, before any request, closes that race.
    with server.test_request_context(PREFIX):
        app._setup_server()
    add_security_headers(server, app.csp_hashes())
    return server


def use_system_allocator() -> None:
    """Arrow's buffers from the C library's allocator, unless ARROW_DEFAULT_MEMORY_POOL names
    one. With pyarrow's default (mimalloc) the first large CSV of a worker (the review queue's
    30 MB) took twice the CPU, its memory new to the process; later ones took the same with
    either (bench/RESULTS.md)."""
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())
