"""Judging a request's events before anything is stored: accepted, quarantined or rejected.

Each item is validated (collector.fastpath when it can vouch for it, else the marshmallow
schema of collector.schemas, which words the reasons; personal data is refused there), then
checked against the loaded ESCO releases: a concept no loaded release knows, or a version newer
than all of them, is quarantined (stored, counted once a release that has it is loaded). A URI
that a loaded release states it replaced is known (the warehouse counts it under its
successor). An event naming a loaded release that lacks its concept still counts, and is
flagged esco_version_mismatch for the data-quality counters. Without esco_version, an event
takes the newest loaded release that holds its concept. The result says, per item, what
becomes of it and why; collector.store commits it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from marshmallow import ValidationError

from collector.body import BodyError
from collector.fastpath import FastLoader
from collector.schemas import EventSchema, flatten_reasons
from kpi.catalogue.index import CatalogueIndex
from kpi.catalogue.versions import version_key
from kpi.vocabulary import ESCO_VERSION_MISMATCH

ACCEPTED, DUPLICATE, QUARANTINED, REJECTED = "accepted", "duplicate", "quarantined", "rejected"


@dataclass
class Classified:
    """Each item of a request, judged before anything is stored."""

    rows: list[dict] = field(default_factory=list)  # valid events, status set
    rows_index: list[int] = field(default_factory=list)  # their index in the request
    errors: dict[int, dict] = field(default_factory=dict)  # index -> error entry
    rejected_reasons: Counter = field(default_factory=Counter)  # stored reason -> events
    duplicates_in_request: list[int] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)  # event_id -> flag of a counted event
    received: int = 0


_REASON_CODES = (
    ("personal_data", "personal_data"),
    ("Missing data for required field", "missing"),
    ("Unknown field", "unknown field"),
    ("Must be one of", "not an allowed value"),
    ("Length must be", "wrong length"),
    ("Not a valid", "wrong type"),
)


def _stored_reason(reasons: dict[str, list[str]], known_fields: set[str]) -> str:
    """One short reason per rejected event for the data-quality counters, free of client text."""
    name = sorted(reasons)[0]
    if name not in known_fields and not name.startswith("_"):
        return "unknown field"  # the name itself is client text: never store it
    if name == "_line":
        return "_line: invalid JSON"
    message = reasons[name][0]
    code = next((c for prefix, c in _REASON_CODES if message.startswith(prefix)), None)
    return f"{name}: {code or message.rstrip('.')}"[:200]


@lru_cache(maxsize=4)
def event_schema(today: date, max_age_days: int) -> EventSchema:
    """The marshmallow schema of a day; built once, since building one deep-copies its fields."""
    return EventSchema(today=today, max_age_days=max_age_days)


def classify(items: list[Any], today: date, max_age_days: int,
             catalogue: CatalogueIndex) -> Classified:
    """Validate every item and decide accepted / quarantined / rejected / duplicate-in-request."""
    result = Classified(received=len(items))
    fast = FastLoader(today, max_age_days)
    schema = event_schema(today, max_age_days)
    known_fields = set(schema.fields)
    seen: set[str] = set()
    for index, item in enumerate(items):
        event_id = item.get("event_id") if isinstance(item, dict) else None
        event_id = event_id if isinstance(event_id, str) and len(event_id) <= 64 else None
        if isinstance(item, BodyError):
            reasons = {"_line": [item.message]}
        elif not isinstance(item, dict):
            reasons = {"_schema": ["Each event must be a JSON object."]}
        elif (row := fast.load(item)) is not None:
            reasons = None
        else:
            try:
                row = schema.load(item)
            except ValidationError as exc:
                reasons = flatten_reasons(exc.messages)
            else:
                reasons = None
        if reasons is not None:
            result.errors[index] = {"index": index, "event_id": event_id,
                                    "outcome": REJECTED, "reasons": reasons}
            result.rejected_reasons[_stored_reason(reasons, known_fields)] += 1
            continue
        if row["event_id"] in seen:
            result.duplicates_in_request.append(index)
            continue
        seen.add(row["event_id"])
        flag = _catalogue_check(row, catalogue)
        if flag:
            result.flags[row["event_id"]] = flag
        elif row["status"] == QUARANTINED:
            result.errors[index] = {"index": index, "event_id": row["event_id"],
                                    "outcome": QUARANTINED,
                                    "reasons": _quarantine_message(row, catalogue)}
        result.rows.append(row)
        result.rows_index.append(index)
    return result


@lru_cache(maxsize=256)
def _newer(version: str, current: str) -> bool:
    # Remembered: most events of a batch name one of a few releases.
    return version_key(version) > version_key(current)


def _catalogue_check(row: dict, catalogue: CatalogueIndex) -> str | None:
    """Set the row's status, quarantine reason and ESCO version; return its flag, if any."""
    version = row.get("esco_version")
    uri = row.get("concept_uri")
    current = catalogue.current_version
    row["status"], row["quarantine_reason"] = ACCEPTED, None
    flag = None
    if version and (current is None or _newer(version, current)):
        row["status"], row["quarantine_reason"] = QUARANTINED, "newer_esco_version"
    elif uri and not catalogue.knows(uri):
        row["status"], row["quarantine_reason"] = QUARANTINED, "unknown_concept"
    elif version and uri and catalogue.is_loaded(version) and not catalogue.holds(version, uri):
        flag = ESCO_VERSION_MISMATCH
    # The default is the release the portal most likely took the concept from: the newest
    # that holds it, not the newest loaded (which may have dropped it). A quarantined event
    # that named no release keeps none (""): replay picks the default once a release knows
    # its concept.
    if version:
        row["esco_version"] = version
    elif row["status"] == QUARANTINED:
        row["esco_version"] = ""
    else:
        row["esco_version"] = (uri and catalogue.newest_holding(uri)) or current or "unknown"
    return flag


def _quarantine_message(row: dict, catalogue: CatalogueIndex) -> dict[str, list[str]]:
    """What would release a quarantined event, promising only what quarantine replay does
    (kpi.catalogue.quarantine): it counts an event once its version is not newer than the
    newest loaded release and a loaded release knows its concept."""
    current = catalogue.current_version
    uri = row.get("concept_uri")
    unknown = bool(uri) and not catalogue.knows(uri)
    if row["quarantine_reason"] == "newer_esco_version":
        version = row["esco_version"]
        newer = (f"Newer than every loaded release (newest {current})" if current
                 else "No ESCO release is loaded")
        if not unknown:
            return {"esco_version": [f"{newer}; stored, and counted once ESCO {version} is "
                                     f"loaded."]}
        return {"esco_version": [f"{newer}; stored, and counted once ESCO {version} is loaded "
                                 f"and holds the concept."],
                "concept_uri": [f"Not in any loaded ESCO release (newest {current})." if current
                                else "No ESCO release is loaded."]}
    missing = (f"Not in any loaded ESCO release (newest {current})" if current
               else "No ESCO release is loaded")
    return {"concept_uri": [f"{missing}; stored, and counted if a release that holds it is "
                            f"loaded."]}
