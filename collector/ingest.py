"""One request's events, from parsed items to the contract's answer.

The steps, each in its own module: collector.classify judges every item (accepted,
quarantined, rejected, and why); collector.store commits the valid ones with the outcome
counters in one transaction, or, for a dry run, only looks up which are already stored; then
`summary` words the answer. collector.api maps the outcome to HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from collector.classify import QUARANTINED, REJECTED, Classified, classify
from collector.ratelimit import Refusal
from collector.store import Stored, existing_event_ids, store
from kpi.catalogue.index import CatalogueIndex
from kpi.settings import Settings


@dataclass
class Answer:
    """The outcome summary of a request, or the rate limit's refusal (nothing stored)."""

    summary: dict | None
    refusal: Refusal | None = None


def ingest(engine: Engine, implementer_id: int, items: list[Any], catalogue: CatalogueIndex,
           settings: Settings, dry_run: bool = False) -> Answer:
    """Classify the items, store them (unless a dry run) and summarise.

    Raises collector.store.StoreUnavailable (or an SQLAlchemyError from a dry run's look-up)
    when the store cannot answer: then nothing is acknowledged.
    """
    today = datetime.now(UTC).date()
    result = classify(items, today, settings["ingest.max_age_days"], catalogue)
    if dry_run:
        ids = [row["event_id"] for row in result.rows]
        return Answer(summary(result, None, existing_event_ids(engine, implementer_id, ids)))
    stored = store(engine, implementer_id, result, today,
                   settings["ingest.rate_limit_events_per_minute"],
                   settings["ingest.store_timeout_seconds"])
    if stored.refusal:
        return Answer(None, stored.refusal)
    return Answer(summary(result, stored))


def summary(result: Classified, stored: Stored | None, dry_run_duplicates: set[str] | None = None
            ) -> dict:
    """The contract's outcome summary for a request."""
    new_ids = stored.new_event_ids if stored else set()
    accepted = quarantined = duplicates = 0
    errors = []
    for index, row in zip(result.rows_index, result.rows, strict=True):
        is_new = (row["event_id"] not in dry_run_duplicates) if dry_run_duplicates is not None \
            else (row["event_id"] in new_ids)
        if not is_new:
            duplicates += 1
            continue
        if row["status"] == QUARANTINED:
            quarantined += 1
            errors.append(result.errors[index])
        else:
            accepted += 1
    duplicates += len(result.duplicates_in_request)
    errors.extend(e for e in result.errors.values() if e["outcome"] == REJECTED)
    errors.sort(key=lambda e: e["index"])
    return {"received": result.received, "accepted": accepted, "duplicates": duplicates,
            "quarantined": quarantined, "rejected": sum(result.rejected_reasons.values()),
            "errors": errors}
