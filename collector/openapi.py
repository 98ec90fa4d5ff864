"""`/v1/openapi.json`, generated from the marshmallow schemas that validate requests."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from collector.schemas import (
    ErrorSchema,
    EventBatchSchema,
    EventSchema,
    HealthSchema,
    MeSchema,
    OutcomeSummarySchema,
)
from kpi import __version__


def _error(description: str, retry_after: bool = False) -> dict:
    response: dict = {"description": description,
                      "content": {"application/json": {"schema": "Error"}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "seconds to wait"}}
    return response


def build_spec(max_events: int, max_body_bytes: int) -> dict:
    """The OpenAPI 3 document of the ingestion API."""
    spec = APISpec(
        title="esco-kpi ingestion API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Implementers send anonymised ESCO usage events. Retry only 429, "
                             "503 and network failures, with the same event_ids."},
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Event", schema=EventSchema)
    spec.components.schema("EventBatch", schema=EventBatchSchema)
    spec.components.schema("OutcomeSummary", schema=OutcomeSummarySchema)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("Health", schema=HealthSchema)
    spec.components.schema("Me", schema=MeSchema)
    summary = {"content": {"application/json": {"schema": "OutcomeSummary"}}}
    spec.path(path="/v1/events", operations={"post": {
        "summary": "Send a batch of usage events",
        "security": [{"apiKey": []}],
        "parameters": [{"name": "dry_run", "in": "query", "required": False,
                        "schema": {"type": "boolean"},
                        "description": "validate and answer, store nothing"}],
        "requestBody": {"required": True, "description": (
            f"At most {max_events} events and {max_body_bytes} bytes after decompression; "
            "Content-Encoding: gzip is accepted."), "content": {
            "application/json": {"schema": "EventBatch"},
            "application/x-ndjson": {"schema": {"type": "string",
                                                "description": "one Event object per line"}},
        }},
        "responses": {
            "202": {"description": "at least one event accepted, duplicate or quarantined",
                    **summary},
            "400": {"description": "unparseable body, wrong shape, or every event rejected",
                    "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/OutcomeSummary"},
                        {"$ref": "#/components/schemas/Error"}]}}}},
            "401": _error("missing, unknown or revoked key"),
            "413": _error("over the size or event-count limit"),
            "415": _error("unsupported content type or encoding"),
            "429": _error("rate limit exceeded; nothing stored", retry_after=True),
            "503": _error("cannot store durably now; nothing acknowledged", retry_after=True),
        },
    }})
    spec.path(path="/v1/health", operations={"get": {
        "summary": "Liveness", "responses": {"200": {
            "description": "up", "content": {"application/json": {"schema": "Health"}}}}}})
    spec.path(path="/v1/me", operations={"get": {
        "summary": "Who this key belongs to, and its last 30 days of outcomes",
        "security": [{"apiKey": []}],
        "responses": {"200": {"description": "the implementer",
                              "content": {"application/json": {"schema": "Me"}}},
                      "401": _error("missing, unknown or revoked key"),
                      "503": _error("store unavailable", retry_after=True)}}})
    document = spec.to_dict()
    # The limit is a setting, so it is added here rather than in the (static) schema.
    document["components"]["schemas"]["EventBatch"]["properties"]["events"]["maxItems"] = \
        max_events
    return document
