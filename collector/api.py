"""The ingestion API blueprint: /v1/events, /v1/me, /v1/me/suggestions, /v1/health,
/v1/openapi.json."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import duckdb
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from collector import metrics
from collector.body import BodyError, check_content_type, parse_events, read_body
from collector.ingest import ingest
from collector.store import StoreUnavailable
from kpi.review.contributions import implementer_suggestions
from kpi.store.db import outcome_counts
from kpi.store.registry import Implementer, authenticate

bp = Blueprint("api", __name__, url_prefix="/v1")


def error(status: int, message: str, retry_after: int | None = None) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="esco-kpi"'
    return response


def _bearer_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def _implementer() -> Implementer | Response:
    key = _bearer_key()
    if key is None:
        return error(401, "missing API key: send 'Authorization: Bearer <key>'")
    try:
        implementer = authenticate(current_app.extensions["esco_store"], key)
    except SQLAlchemyError:
        return error(503, "the store is unavailable; retry later",
                     current_app.config["RETRY_AFTER"])
    if implementer is None:
        return error(401, "unknown or revoked API key")
    return implementer


def _dry_run() -> bool:
    value = request.args.get("dry_run", "false").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise BodyError(400, "dry_run must be true or false")


@bp.post("/events")
def post_events() -> Response:
    started = time.perf_counter()
    response = _post_events()
    metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
    return response


def _post_events() -> Response:
    implementer = _implementer()
    if isinstance(implementer, Response):
        return implementer
    settings = current_app.config["ESCO_SETTINGS"]
    engine = current_app.extensions["esco_store"]
    try:
        dry_run = _dry_run()
        form, gzipped = check_content_type(request.headers.get("Content-Type"),
                                           request.headers.get("Content-Encoding"))
        body = read_body(request.stream, request.content_length, gzipped,
                         settings["ingest.max_body_bytes"])
        parsed = parse_events(body, form, settings["ingest.max_events_per_request"])
    except BodyError as exc:
        return error(exc.status, exc.message)
    catalogue = current_app.extensions["esco_catalogue"].current()
    try:
        answer = ingest(engine, implementer.id, parsed.items, catalogue, settings, dry_run)
    except (StoreUnavailable, SQLAlchemyError) as exc:
        current_app.logger.warning("store unavailable: %s", exc)
        # "Not acknowledged" rather than "not stored": a commit whose answer was lost with the
        # connection may have gone through; the resend then answers duplicates.
        return error(503, "the store cannot commit right now; nothing of this request is "
                          "acknowledged; retry later with the same event_ids",
                     current_app.config["RETRY_AFTER"])
    if answer.refusal:
        return error(429, "rate limit exceeded: nothing of this request was stored; "
                          "retry after the delay", answer.refusal.retry_after)
    body_out = answer.summary
    if not dry_run:
        for outcome in ("accepted", "duplicates", "quarantined", "rejected"):
            if body_out[outcome]:
                metrics.EVENTS.labels(outcome).inc(body_out[outcome])
    stored_any = body_out["accepted"] + body_out["duplicates"] + body_out["quarantined"]
    response = jsonify(body_out)
    response.status_code = 202 if stored_any else 400
    return response


@bp.get("/me")
def me() -> Response:
    implementer = _implementer()
    if isinstance(implementer, Response):
        return implementer
    since = datetime.now(UTC).date() - timedelta(days=29)
    try:
        with current_app.extensions["esco_store"].connect() as conn:
            rows = conn.execute(
                select(outcome_counts.c.outcome, outcome_counts.c.reason,
                       func.sum(outcome_counts.c.events))
                .where(outcome_counts.c.implementer_id == implementer.id,
                       outcome_counts.c.received_on >= since)
                .group_by(outcome_counts.c.outcome, outcome_counts.c.reason)
            ).all()
    except SQLAlchemyError:
        return error(503, "the store is unavailable; retry later",
                     current_app.config["RETRY_AFTER"])
    totals = {"accepted": 0, "duplicates": 0, "quarantined": 0, "rejected": 0}
    by_reason: dict[str, int] = {}
    names = {"accepted": "accepted", "duplicate": "duplicates", "quarantined": "quarantined",
             "rejected": "rejected"}
    for outcome, reason, n in rows:
        if outcome not in names:
            continue  # flagged events were counted under their own outcome already
        totals[names[outcome]] += int(n)
        if outcome == "rejected":
            by_reason[reason] = by_reason.get(reason, 0) + int(n)
    return jsonify({"id": implementer.id, "name": implementer.name,
                    "country": implementer.country, "sector": implementer.sector,
                    **totals, "rejected_by_reason": dict(sorted(by_reason.items()))})


@bp.get("/me/suggestions")
def my_suggestions() -> Response:
    implementer = _implementer()
    if isinstance(implementer, Response):
        return implementer
    try:
        suggestions = implementer_suggestions(current_app.config["ESCO_SETTINGS"],
                                              current_app.extensions["esco_store"],
                                              implementer.id)
    except (SQLAlchemyError, duckdb.Error, OSError):
        # the store, or the warehouse's files (e.g. retired while read), cannot answer now
        return error(503, "the store is unavailable; retry later",
                     current_app.config["RETRY_AFTER"])
    return jsonify({"suggestions": suggestions})


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(current_app.extensions["esco_openapi"])

