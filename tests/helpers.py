"""Small helpers for building events and sending them over HTTP."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import requests

SKILL = "http://data.europa.eu/esco/skill/b0096dc5-2e2d-4bc1-8172-05bf486c3968"
OCCUPATION = "http://data.europa.eu/esco/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34"


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def days_ago(n: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=n)).isoformat()


def event(event_id: str, /, **fields: Any) -> dict:
    base = {"event_id": event_id, "type": "concept_used", "occurred_at": today(),
            "concept_uri": SKILL, "language": "en"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def post(url: str, key: str | None, events: list[dict] | None = None, *, body: bytes | None = None,
         content_type: str = "application/json", gzip_body: bool = False,
         params: dict | None = None, headers: dict | None = None) -> requests.Response:
    if body is None:
        body = orjson.dumps({"events": events})
    all_headers = {"Content-Type": content_type}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    if gzip_body:
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    all_headers.update(headers or {})
    return requests.post(f"{url}/v1/events", data=body, headers=all_headers, params=params,
                         timeout=30)
