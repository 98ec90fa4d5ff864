"""The collector's Flask app factory (Flask tutorial style: `create_app(settings)`)."""

from __future__ import annotations

import threading
import time

from flask import Flask, Response, request

from collector import metrics
from collector.api import bp as api_bp
from collector.api import error
from collector.openapi import build_spec
from kpi.catalogue.index import CatalogueIndex
from kpi.catalogue.load import catalogue_token
from kpi.settings import Settings, load_settings
from kpi.store.db import make_engine

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


class CatalogueCache:
    """The catalogue index of this process, reloaded soon after a new release is loaded."""

    def __init__(self, engine, check_every: float = 5.0):
        self.engine = engine
        self.check_every = check_every
        self._lock = threading.Lock()
        self._index: CatalogueIndex | None = None
        self._checked = 0.0

    def current(self) -> CatalogueIndex:
        now = time.monotonic()
        if self._index is not None and now - self._checked < self.check_every:
            return self._index
        with self._lock:
            if self._index is None or now - self._checked >= self.check_every:
                try:
                    token = catalogue_token(self.engine)
                    if self._index is None or token != self._index.token:
                        self._index = CatalogueIndex.load(self.engine)
                except Exception:  # noqa: BLE001 - keep the last index if the store is down
                    if self._index is None:
                        raise
                self._checked = now
        return self._index


def create_app(settings: Settings | None = None) -> Flask:
    """A collector app; several can live in one process (tests), each with its own store."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.config["ESCO_SETTINGS"] = settings
    app.config["RETRY_AFTER"] = settings["ingest.retry_after_seconds"]
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False
    engine = make_engine(settings)
    app.extensions["esco_store"] = engine
    app.extensions["esco_catalogue"] = CatalogueCache(engine)
    app.extensions["esco_openapi"] = build_spec(settings["ingest.max_events_per_request"],
                                                settings["ingest.max_body_bytes"])
    app.register_blueprint(api_bp)

    @app.get("/metrics")
    def metrics_page() -> Response:
        text, content_type = metrics.render(engine)
        return Response(text, content_type=content_type)

    @app.errorhandler(404)
    def not_found(_exc) -> Response:
        return error(404, "not found")

    @app.errorhandler(405)
    def not_allowed(exc) -> Response:
        response = error(405, "method not allowed")
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(500)
    def server_error(_exc) -> Response:
        return error(500, "internal error")

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/v1/") or request.path == "/metrics":
            response.headers.setdefault("Content-Security-Policy", API_CSP)
            response.headers.setdefault("Cache-Control", "no-store")
        endpoint = request.url_rule.rule if request.url_rule else "other"
        metrics.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        return response

    return app
