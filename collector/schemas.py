"""The event schema: what a portal may send, validated by marshmallow.

The same schemas generate `/v1/openapi.json`, so the documentation cannot drift from the
validation: `type_fields` turns the per-type rules below into the fields each event type
requires and allows, for the description's one schema per type. Loading an event returns the
row to store (day precision, normalised URI and language) or the per-field reasons the
contract returns.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from collector.privacy import personal_data_reason
from kpi.review.decisions import REASONS, STATUSES
from kpi.review.items import KINDS
from kpi.vocabulary import (
    CONCEPT_URI,
    CONTEXTS,
    ESCO_URI_PREFIX,
    EVENT_CONCEPT_TYPES,
    EVENT_TYPES,
    LANGUAGES,
)

# What each event type needs beyond the fields every event has, and what it takes besides.
NEEDS_CONCEPT = {"concept_used", "label_added", "translation_feedback"}
NEEDS_LABEL = {"label_added", "concept_proposed", "translation_feedback"}
NEEDS_CONCEPT_TYPE = {"concept_proposed"}
TAKES_LABEL = NEEDS_LABEL
TAKES_COMMENT = {"concept_proposed", "translation_feedback"}

# Patterns are ECMA-compatible and anchored, since they appear in the OpenAPI description, and
# always used with fullmatch: "$" alone would also match before a trailing newline.
EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
ESCO_VERSION = re.compile(r"^\d{1,3}\.\d{1,3}(\.\d{1,3})?$")
_HTTPS_PREFIX = "https" + ESCO_URI_PREFIX.removeprefix("http")
# A concept URI as a portal may send it: CONCEPT_URI, or the same with https or a trailing
# slash, both normalised away (see normalise_concept_uri).
SENT_CONCEPT_URI = re.compile(
    "^https?" + CONCEPT_URI.pattern.removeprefix("^http").removesuffix("$") + "/?$"
)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_LABEL, MAX_COMMENT = 200, 1000


# Pure checks, shared by the marshmallow fields below and by collector.fastpath.

def parse_occurred_at(value: Any) -> date | None:
    """The UTC date of an RFC 3339 date-time or a YYYY-MM-DD date; None if it is neither."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        if _DATE_ONLY.fullmatch(value):
            return date.fromisoformat(value)
        if _RFC3339.fullmatch(value):
            text = value.replace("z", "Z").replace("t", "T")
            if "." in text:  # Python accepts up to 6 fraction digits; RFC 3339 any number.
                text = re.sub(r"(\.\d{6})\d+", r"\1", text)
            return datetime.fromisoformat(text).astimezone(UTC).date()
    except (ValueError, OverflowError):  # OverflowError: past year 9999 or before year 1
        pass
    return None


def normalise_concept_uri(text: str) -> str | None:
    """The URI with https and a trailing slash normalised away; None if not an ESCO URI."""
    if text.startswith(_HTTPS_PREFIX):
        text = "http://" + text[len("https://"):]
    if text.endswith("/"):
        text = text[:-1]
    return text if CONCEPT_URI.fullmatch(text) else None


def normalise_language(text: str) -> str | None:
    """The ESCO language of a tag (`en-US` -> `en`), or None."""
    primary = text.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def free_text_problem(value: str, line_breaks: bool) -> str | None:
    """Why a label or comment is refused (control characters, personal data), or None."""
    control = _CONTROL_BUT_LINE_BREAKS if line_breaks else _CONTROL
    if control.search(value):
        return "Must not contain control characters."
    reason = personal_data_reason(value)
    return f"personal_data: {reason}" if reason else None


def type_rule_errors(data: dict, today: date, max_age_days: int) -> dict[str, list[str]]:
    """Rules across fields: what each event type needs, and how old or new a day may be."""
    errors: dict[str, list[str]] = {}
    kind = data.get("type")
    if kind in NEEDS_CONCEPT and "concept_uri" not in data:
        errors["concept_uri"] = [f"Missing data for required field for type {kind}."]
    if kind in NEEDS_LABEL and "label" not in data:
        errors["label"] = [f"Missing data for required field for type {kind}."]
    if kind in NEEDS_CONCEPT_TYPE and "concept_type" not in data:
        errors["concept_type"] = [f"Missing data for required field for type {kind}."]
    if kind in EVENT_TYPES and kind not in TAKES_LABEL and "label" in data:
        errors["label"] = [f"Not used by type {kind}; send a label_added event."]
    if kind in EVENT_TYPES and kind not in TAKES_COMMENT and "comment" in data:
        errors["comment"] = [f"Not used by type {kind}."]
    day = data.get("occurred_at")
    if day is not None:
        if day > today + timedelta(days=1):
            errors["occurred_at"] = ["Must not be more than 1 day after today (UTC)."]
        elif day < today - timedelta(days=max_age_days):
            errors["occurred_at"] = [f"Must not be older than {max_age_days} days."]
    return errors


class OccurredAt(fields.Field):
    """RFC 3339 date-time or YYYY-MM-DD, kept as the UTC date only."""

    default_error_messages = {
        "invalid": "Not a valid RFC 3339 date-time or YYYY-MM-DD date.",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs) -> date:
        day = parse_occurred_at(value)
        if day is None:
            raise self.make_error("invalid")
        return day


class ConceptUri(fields.String):
    """An ESCO concept URI; https and a trailing slash are normalised away."""

    default_error_messages = {
        "invalid_uri": "Not an ESCO concept URI (http://data.europa.eu/esco/"
        "{{occupation,skill,isco,qualification}}/ID).",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs) -> str:
        uri = normalise_concept_uri(super()._deserialize(value, attr, data, **kwargs))
        if uri is None:
            raise self.make_error("invalid_uri")
        return uri


class Language(fields.String):
    """One of ESCO's languages; `en-US` becomes `en`."""

    default_error_messages = {"invalid_language": "Must be one of: " + ", ".join(LANGUAGES) + "."}

    def _deserialize(self, value: Any, attr, data, **kwargs) -> str:
        language = normalise_language(super()._deserialize(value, attr, data, **kwargs))
        if language is None:
            raise self.make_error("invalid_language")
        return language


class StrictInteger(fields.Integer):
    """An integer written as a JSON number; true, "5" and 5.0 are refused."""

    def _validated(self, value: Any):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class FullRegexp(validate.Regexp):
    """A Regexp validator that must match the whole value."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def _free_text(max_length: int, line_breaks: bool):
    def check(value: str) -> None:
        problem = free_text_problem(value, line_breaks)
        if problem:
            raise ValidationError(problem)

    return [validate.Length(min=1, max=max_length), check]


class EventSchema(Schema):
    """One usage event as a portal sends it."""

    class Meta:
        unknown = RAISE

    event_id = fields.String(
        required=True,
        validate=FullRegexp(EVENT_ID,
                                 error="Must be 1 to 64 characters of A-Z a-z 0-9 . _ : -"),
        metadata={"description": "Chosen by the client; (implementer, event_id) is the "
                                 "de-duplication key, forever.", "example": "e-1"},
    )
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    occurred_at = OccurredAt(
        required=True,
        metadata={"type": "string", "description": "RFC 3339 date-time or YYYY-MM-DD; stored "
                  "as the UTC date only", "example": "2026-11-24T10:30:00Z"},
    )
    concept_uri = ConceptUri(
        metadata={"description": "ESCO concept URI; required except for concept_proposed, "
                  "where it names the broader concept; https and a trailing slash are "
                  "normalised away", "pattern": SENT_CONCEPT_URI.pattern,
                  "example": "http://data.europa.eu/esco/skill/"
                             "b0096dc5-2e2d-4bc1-8172-05bf486c3968"},
    )
    esco_version = fields.String(
        validate=FullRegexp(ESCO_VERSION, error="Must be an ESCO version like 1.2.0."),
        metadata={"description": "the ESCO release the implementer works with; defaults to "
                                 "the newest loaded release that holds the concept"},
    )
    language = Language(required=True, metadata={"enum": list(LANGUAGES), "example": "de"})
    context = fields.String(load_default="other", validate=validate.OneOf(CONTEXTS))
    count = StrictInteger(strict=True, load_default=1,
                          validate=validate.Range(min=1, max=1_000_000))
    label = fields.String(
        validate=_free_text(MAX_LABEL, line_breaks=False),
        metadata={"description": "the portal's own label, the proposed concept's label or the "
                  "suggested translation; 1-200 characters after trimming; refused if it looks "
                  "like personal data", "maxLength": 200},
    )
    concept_type = fields.String(validate=validate.OneOf(EVENT_CONCEPT_TYPES))
    comment = fields.String(validate=_free_text(MAX_COMMENT, line_breaks=True),
                            metadata={"maxLength": MAX_COMMENT})

    def __init__(self, *, today: date | None = None, max_age_days: int = 400, **kwargs):
        super().__init__(**kwargs)
        self.today = today or datetime.now(UTC).date()
        self.max_age_days = max_age_days

    @pre_load
    def _trim_label(self, data: Any, **kwargs) -> Any:
        # "1-200 chars after trimming": trim before the length check sees it.
        if isinstance(data, dict) and isinstance(data.get("label"), str):
            data = dict(data)
            data["label"] = data["label"].strip()
        return data

    @validates_schema
    def _check_by_type(self, data: dict, **kwargs) -> None:
        errors = type_rule_errors(data, self.today, self.max_age_days)
        if errors:
            raise ValidationError(errors)

    @post_load
    def _to_row(self, data: dict, **kwargs) -> dict:
        data["day"] = data.pop("occurred_at")
        if data["type"] not in NEEDS_CONCEPT_TYPE:
            data.pop("concept_type", None)
        return data


# Every field of an event, in the schema's order.
EVENT_FIELDS: tuple[str, ...] = tuple(EventSchema._declared_fields)
# What every event must have, whatever its type.
COMMON_REQUIRED: frozenset[str] = frozenset(
    name for name, field in EventSchema._declared_fields.items() if field.required
)


def type_fields(kind: str) -> tuple[frozenset[str], frozenset[str]]:
    """The fields an event of this type requires, and all those it may have (a superset).

    The per-type rules of `type_rule_errors`, as the OpenAPI description states them. A
    concept_type on another type than concept_proposed is checked, then dropped.
    """
    required = set(COMMON_REQUIRED)
    refused = set()
    if kind in NEEDS_CONCEPT:
        required.add("concept_uri")
    if kind in NEEDS_LABEL:
        required.add("label")
    if kind in NEEDS_CONCEPT_TYPE:
        required.add("concept_type")
    if kind not in TAKES_LABEL:
        refused.add("label")
    if kind not in TAKES_COMMENT:
        refused.add("comment")
    return frozenset(required), frozenset(EVENT_FIELDS) - refused


class EventBatchSchema(Schema):
    """The JSON body: `{"events": [...]}`. Documentation only; events are loaded one by one."""

    events = fields.List(fields.Nested(EventSchema), required=True,
                         validate=validate.Length(min=1))


class EventErrorSchema(Schema):
    index = fields.Integer(required=True)
    event_id = fields.String(allow_none=True)
    outcome = fields.String(validate=validate.OneOf(("rejected", "quarantined")))
    reasons = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class OutcomeSummarySchema(Schema):
    received = fields.Integer(required=True)
    accepted = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    quarantined = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    errors = fields.List(fields.Nested(EventErrorSchema), required=True)


class ErrorSchema(Schema):
    error = fields.String(required=True)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class MeSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    country = fields.String(required=True)
    sector = fields.String(required=True)
    accepted = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    quarantined = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    rejected_by_reason = fields.Dict(keys=fields.String(), values=fields.Integer())


class SuggestionSchema(Schema):
    """One review item the implementer contributed to (`GET /v1/me/suggestions`)."""

    item_id = fields.String(required=True, metadata={"example": "L-2367701876218ed8"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    concept_uri = fields.String(required=True, allow_none=True, metadata={
        "description": "the concept labelled or translated; null for a proposal"})
    language = fields.String(required=True)
    label = fields.String(required=True, metadata={
        "description": "your own spelling: the one you sent most often in this item"})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    in_release = fields.String(required=True, allow_none=True, metadata={
        "description": "the ESCO release that holds it (released or covered), else null"})
    reason = fields.String(required=True, allow_none=True,
                           validate=validate.OneOf((*REASONS, None)),
                           metadata={"description": "why it was rejected, else null"})


class SuggestionsSchema(Schema):
    suggestions = fields.List(fields.Nested(SuggestionSchema), required=True)


def flatten_reasons(messages: Any) -> dict[str, list[str]]:
    """marshmallow's error dict as the contract's `reasons`: field -> list of messages."""
    if not isinstance(messages, dict):
        return {"_schema": [str(messages)]}
    out: dict[str, list[str]] = {}
    for field, value in messages.items():
        if isinstance(value, dict):  # nested errors: keep the first level, name the rest
            value = [f"{k}: {v}" for k, v in value.items()]
        out[str(field)] = [str(v) for v in (value if isinstance(value, list) else [value])]
    return out
