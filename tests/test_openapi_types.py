"""The OpenAPI description and the validator agree on what each event type requires and allows.

For every event type and every combination of fields, each with a value that is valid on its
own, an event is valid by `/v1/openapi.json` exactly when the collector accepts it: the
description hides no per-type rule, and allows no field a type refuses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from openapi_schema_validator import OAS30Validator

from collector.fastpath import FastLoader
from collector.openapi import build_spec, event_schema_name
from collector.schemas import (
    EVENT_FIELDS,
    SENT_CONCEPT_URI,
    EventSchema,
    normalise_concept_uri,
)
from kpi.vocabulary import EVENT_TYPES

TODAY = datetime.now(UTC).date()
SPEC = build_spec(max_events=1000, max_body_bytes=5_000_000)
SCHEMAS = SPEC["components"]["schemas"]
DESCRIBED = OAS30Validator({"$ref": "#/components/schemas/Event", "components": SPEC["components"]})
SCHEMA = EventSchema(today=TODAY)
FAST = FastLoader(TODAY, 400)
COMMON = {"event_id", "type", "occurred_at", "language"}
OPTIONAL_EVERYWHERE = {"esco_version", "context", "count"}

# A value valid on its own for every field but `type`.
VALUES = {
    "event_id": "e-1",
    "occurred_at": (TODAY - timedelta(days=1)).isoformat(),
    "concept_uri": "http://data.europa.eu/esco/skill/b0096dc5-2e2d-4bc1-8172-05bf486c3968",
    "esco_version": "1.2.0",
    "language": "en",
    "context": "cv",
    "count": 3,
    "label": "Datenbankpflege",
    "concept_type": "skill",
    "comment": "used in most vacancies",
}

# The rules as the contract states them: required beyond the common fields, and refused.
RULES = {
    "concept_used": ({"concept_uri"}, {"label", "comment"}),
    "label_added": ({"concept_uri", "label"}, {"comment"}),
    "concept_proposed": ({"label", "concept_type"}, set()),
    "translation_feedback": ({"concept_uri", "label"}, set()),
}


def accepted(item: dict) -> tuple[bool, dict]:
    try:
        SCHEMA.load(item)
    except ValidationError as exc:
        return False, exc.messages
    return True, {}


def test_every_type_has_one_schema_under_the_discriminator():
    event = SCHEMAS["Event"]
    assert event["discriminator"]["propertyName"] == "type"
    mapping = event["discriminator"]["mapping"]
    assert list(mapping) == list(EVENT_TYPES)
    assert [ref["$ref"] for ref in event["oneOf"]] == list(mapping.values())
    for kind, ref in mapping.items():
        assert ref == f"#/components/schemas/{event_schema_name(kind)}"
        schema = SCHEMAS[event_schema_name(kind)]
        assert schema["properties"]["type"]["enum"] == [kind]
        assert schema["additionalProperties"] is False
        assert "type" in schema["required"]


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_each_type_schema_lists_exactly_its_required_and_allowed_fields(kind):
    needs, refuses = RULES[kind]
    schema = SCHEMAS[event_schema_name(kind)]
    assert set(schema["required"]) == COMMON | needs
    assert set(schema["properties"]) == set(EVENT_FIELDS) - refuses
    assert set(schema["properties"]) - set(schema["required"]) >= OPTIONAL_EVERYWHERE
    # Another type's concept_type is checked, then dropped: allowed, so described.
    assert "concept_type" in schema["properties"]


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_the_described_required_fields_are_enough_and_each_is_needed(kind):
    required = SCHEMAS[event_schema_name(kind)]["required"]
    minimal = {name: VALUES[name] for name in required if name != "type"} | {"type": kind}
    assert DESCRIBED.is_valid(minimal)
    assert accepted(minimal) == (True, {})
    for name in required:
        item = {k: v for k, v in minimal.items() if k != name}
        assert not DESCRIBED.is_valid(item)
        ok, reasons = accepted(item)
        assert not ok and name in reasons, (name, reasons)


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_a_field_the_description_refuses_is_rejected_and_one_it_allows_is_accepted(kind):
    schema = SCHEMAS[event_schema_name(kind)]
    minimal = {name: VALUES[name] for name in schema["required"] if name != "type"}
    minimal["type"] = kind
    for name in set(EVENT_FIELDS) - set(schema["required"]):
        item = {**minimal, name: VALUES[name]}
        ok, reasons = accepted(item)
        if name in schema["properties"]:
            assert ok and DESCRIBED.is_valid(item), (name, reasons)
        else:
            assert not DESCRIBED.is_valid(item)
            assert not ok and list(reasons) == [name], (name, reasons)


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_described_exactly_when_accepted_for_every_combination_of_fields(kind):
    others = [name for name in EVENT_FIELDS if name != "type"]
    for size in range(len(others) + 1):
        for names in combinations(others, size):
            item = {"type": kind, **{name: VALUES[name] for name in names}}
            ok, reasons = accepted(item)
            assert DESCRIBED.is_valid(item) == ok, (item, reasons)
            if FAST.load(item) is not None:
                assert ok


def test_a_comment_on_a_label_added_event_is_refused_by_both():
    item = {"type": "label_added", **{name: VALUES[name] for name in
                                      ("event_id", "occurred_at", "language", "concept_uri",
                                       "label", "comment")}}
    assert not DESCRIBED.is_valid(item)
    assert accepted(item) == (False, {"comment": ["Not used by type label_added."]})


uris = st.one_of(
    st.from_regex(r"https?://data\.europa\.eu/esco/(skill|occupation|isco|qualification|foo)/"
                  r"[A-Za-z0-9._/-]{0,102}/{0,2}\n?", fullmatch=True),
    st.text(max_size=60),
)


@given(uris)
@settings(max_examples=500, deadline=None, database=None)
def test_the_described_uri_pattern_is_what_the_validator_accepts(text):
    patterns = {SCHEMAS[name]["properties"]["concept_uri"]["pattern"]
                for name in ["Event", *map(event_schema_name, EVENT_TYPES)]}
    assert patterns == {SENT_CONCEPT_URI.pattern}
    # Anchored, so ECMA's match (where "$" is the very end) is Python's fullmatch; Python's
    # search, which jsonschema uses, would also let a trailing newline through.
    pattern = SENT_CONCEPT_URI.pattern
    assert pattern.startswith("^") and pattern.endswith("$")
    assert (re.fullmatch(pattern, text) is not None) == (normalise_concept_uri(text) is not None)
