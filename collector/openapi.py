"""`/v1/openapi.json`, generated from the marshmallow schemas that validate requests.

An event's fields depend on its type: `Event` lists every field an event may have and combines,
with oneOf and a discriminator on `type`, one schema per type that lists exactly the fields the
type requires and allows (collector.schemas.type_fields, from the rules the validation applies).
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from collector.schemas import (
    EVENT_FIELDS,
    NEEDS_CONCEPT_TYPE,
    ErrorSchema,
    EventBatchSchema,
    EventSchema,
    HealthSchema,
    MeSchema,
    OutcomeSummarySchema,
    SuggestionSchema,
    SuggestionsSchema,
    type_fields,
)
from kpi import __version__
from kpi.vocabulary import EVENT_TYPES

# What an event of each type reports, and what its concept_uri names.
_EVENT_TYPE_DOCS = {
    "concept_used": ("An ESCO concept used by the portal, `count` times.",
                     "the concept used"),
    "label_added": ("The portal's own label for an ESCO concept: a candidate alternative label.",
                    "the concept labelled"),
    "concept_proposed": ("A concept ESCO lacks, proposed with its label and type.",
                         "the broader concept of the proposal, if any"),
    "translation_feedback": ("A suggested translation (`label`, in `language`) of a concept's "
                             "label, optionally with a comment.", "the concept translated"),
}


def _error(description: str, retry_after: bool = False) -> dict:
    response: dict = {"description": description,
                      "content": {"application/json": {"schema": "Error"}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "seconds to wait"}}
    return response


def event_schema_name(kind: str) -> str:
    """The component name of an event type's schema: concept_used -> ConceptUsedEvent."""
    return "".join(part.capitalize() for part in kind.split("_")) + "Event"


def _event_type_schema(event: dict, kind: str) -> dict:
    """The schema of one event type, from the JSON schema of EventSchema (`event`)."""
    required, allowed = type_fields(kind)
    summary, concept_uri = _EVENT_TYPE_DOCS[kind]
    properties = {name: dict(event["properties"][name])
                  for name in EVENT_FIELDS if name in allowed}
    properties["type"] = {"type": "string", "enum": [kind]}
    properties["concept_uri"]["description"] = (
        f"ESCO concept URI: {concept_uri}; https and a trailing slash are normalised away")
    if "concept_type" in properties and kind not in NEEDS_CONCEPT_TYPE:
        properties["concept_type"]["description"] = "checked, then ignored by this type"
    return {"type": "object", "description": summary, "properties": properties,
            "required": [name for name in EVENT_FIELDS if name in required],
            "additionalProperties": False}


def build_spec(max_events: int, max_body_bytes: int) -> dict:
    """The OpenAPI 3 document of the ingestion API."""
    marshmallow = MarshmallowPlugin()
    spec = APISpec(
        title="esco-kpi ingestion API",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[marshmallow],
        info={"description": "Implementers send anonymised ESCO usage events. Retry only 429, "
                             "503 and network failures, with the same event_ids."},
    )
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    event = marshmallow.converter.schema2jsonschema(EventSchema)
    names = {kind: event_schema_name(kind) for kind in EVENT_TYPES}
    for kind, name in names.items():
        spec.components.schema(name, _event_type_schema(event, kind))
    # Registered with EventSchema, so that EventBatch's events refer to it.
    spec.components.schema("Event", {
        "description": "Every field an event may have; which ones it must and may have "
                       "depends on its type, as the schema of each type says.",
        "oneOf": list(names.values()),
        "discriminator": {"propertyName": "type", "mapping": {
            kind: f"#/components/schemas/{name}" for kind, name in names.items()}},
    }, schema=EventSchema)
    spec.components.schema("EventBatch", schema=EventBatchSchema)
    spec.components.schema("OutcomeSummary", schema=OutcomeSummarySchema)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("Health", schema=HealthSchema)
    spec.components.schema("Me", schema=MeSchema)
    spec.components.schema("Suggestion", schema=SuggestionSchema)
    spec.components.schema("Suggestions", schema=SuggestionsSchema)
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
    spec.path(path="/v1/me/suggestions", operations={"get": {
        "summary": "The review items this key's implementer contributed to: your own "
                   "spelling of each, and its status in ESCO's review",
        "security": [{"apiKey": []}],
        "responses": {"200": {"description": "your suggestions (an empty list if none)",
                              "content": {"application/json": {"schema": "Suggestions"}}},
                      "401": _error("missing, unknown or revoked key"),
                      "503": _error("store unavailable", retry_after=True)}}})
    document = spec.to_dict()
    # The limit is a setting, so it is added here rather than in the (static) schema.
    document["components"]["schemas"]["EventBatch"]["properties"]["events"]["maxItems"] = \
        max_events
    return document
