"""A fast loader for events that are plainly valid; everything else goes to marshmallow.

marshmallow's per-field machinery costs about 35 µs an event, most of the time of a
1,000-event request. This loader applies the same checks (the pure functions of
collector.schemas) without it, and returns the same row as `EventSchema.load`, or None when
it cannot vouch for the event: then `EventSchema` decides, and words the reasons. A property
test holds the two to the same answers.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from collector.schemas import (
    ESCO_VERSION,
    EVENT_FIELDS,
    EVENT_ID,
    MAX_COMMENT,
    MAX_LABEL,
    NEEDS_CONCEPT_TYPE,
    free_text_problem,
    normalise_concept_uri,
    normalise_language,
    parse_occurred_at,
    type_rule_errors,
)
from kpi.vocabulary import CONTEXTS, EVENT_CONCEPT_TYPES, EVENT_TYPES

_FIELDS = frozenset(EVENT_FIELDS)
_EVENT_TYPES = frozenset(EVENT_TYPES)
_CONTEXTS = frozenset(CONTEXTS)
_CONCEPT_TYPES = frozenset(EVENT_CONCEPT_TYPES)


@lru_cache(maxsize=1 << 16)
def _concept_uri(text: str) -> str | None:
    # Usage is Zipf-like over the catalogue: most URIs of a batch were seen in recent ones.
    return normalise_concept_uri(text)


class FastLoader:
    """`load(item)` -> the stored row, or None to let marshmallow judge the item."""

    def __init__(self, today: date, max_age_days: int):
        self.today = today
        self.max_age_days = max_age_days
        # A batch repeats the same few dates, languages and type/field combinations, so the
        # pure checks below are remembered per value (exactly the same answers, once).
        self._days: dict[str, date | None] = {}
        self._languages: dict[str, str | None] = {}
        self._rules: dict[tuple, bool] = {}  # type_rule_errors' inputs -> whether it objects

    def load(self, item: Any) -> dict | None:
        if type(item) is not dict or not item.keys() <= _FIELDS:
            return None
        event_id, kind = item.get("event_id"), item.get("type")
        if (type(event_id) is not str or not EVENT_ID.fullmatch(event_id) or type(kind) is not str
                or kind not in _EVENT_TYPES):
            return None
        when = item.get("occurred_at")
        if type(when) is not str:
            return None
        day = self._days.get(when, False)
        if day is False:
            day = self._days[when] = parse_occurred_at(when)
        if day is None:
            return None
        language = item.get("language")
        if type(language) is not str:
            return None
        known = self._languages.get(language, False)
        if known is False:
            known = self._languages[language] = normalise_language(language)
        if known is None:
            return None
        row = {"event_id": event_id, "type": kind, "language": known}
        if not self._optional_fields(item, row):
            return None
        # type_rule_errors reads the type, which of these fields are present, and the day.
        rule = (kind, "concept_uri" in row, "label" in row, "concept_type" in row,
                "comment" in row, day)
        objects = self._rules.get(rule)
        if objects is None:
            objects = self._rules[rule] = bool(
                type_rule_errors({**row, "occurred_at": day}, self.today, self.max_age_days))
        if objects:
            return None
        row["day"] = day
        if kind not in NEEDS_CONCEPT_TYPE:
            row.pop("concept_type", None)
        return row

    @staticmethod
    def _optional_fields(item: dict, row: dict) -> bool:
        """Check and copy the optional fields; False when any needs marshmallow's judgement."""
        if "concept_uri" in item:
            uri = item["concept_uri"]
            if type(uri) is not str or (uri := _concept_uri(uri)) is None:
                return False
            row["concept_uri"] = uri
        if "esco_version" in item:
            version = item["esco_version"]
            if type(version) is not str or not ESCO_VERSION.fullmatch(version):
                return False
            row["esco_version"] = version
        context = item.get("context", "other")
        if type(context) is not str or context not in _CONTEXTS:
            return False
        row["context"] = context
        count = item.get("count", 1)
        if type(count) is not int or not 1 <= count <= 1_000_000:
            return False
        row["count"] = count
        if "label" in item:
            label = item["label"]
            if type(label) is not str:
                return False
            label = label.strip()
            if not 1 <= len(label) <= MAX_LABEL or free_text_problem(label, False):
                return False
            row["label"] = label
        if "concept_type" in item:
            concept_type = item["concept_type"]
            if type(concept_type) is not str or concept_type not in _CONCEPT_TYPES:
                return False
            row["concept_type"] = concept_type
        if "comment" in item:
            comment = item["comment"]
            if (type(comment) is not str or not 1 <= len(comment) <= MAX_COMMENT
                    or free_text_problem(comment, True)):
                return False
            row["comment"] = comment
        return True
