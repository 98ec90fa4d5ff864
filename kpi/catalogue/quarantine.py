"""`esco-kpi quarantine replay`: quarantined events that the catalogue now knows start to count.

A released event is deleted and inserted again as accepted, in one transaction, so that it gets
a new id above the aggregator's watermark: the aggregator sees it exactly once, and the
de-duplication key `(implementer, event_id)` never has a gap. An event's concept is known by the
collector's rule (CatalogueIndex.knows): a concept of a loaded release, or a URI that a loaded
release states it replaced (concept_successors).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select

from kpi.catalogue.index import CatalogueIndex
from kpi.catalogue.versions import version_key
from kpi.store.counters import bump_outcome_counts
from kpi.store.db import events
from kpi.vocabulary import ESCO_VERSION_MISMATCH, FLAGGED

BATCH = 5000


@dataclass(frozen=True)
class ReplaySummary:
    checked: int
    released: int
    still_quarantined: int


def _releasable(row, index: CatalogueIndex) -> bool:
    version = row["esco_version"]
    current = index.current_version
    if current is None:
        return False
    if row["quarantine_reason"] == "newer_esco_version" and version_key(version) > version_key(
            current):
        return False
    uri = row["concept_uri"]
    return uri is None or index.knows(uri)


def _released(row, index: CatalogueIndex, flags: Counter) -> dict:
    """The accepted event a released quarantined one becomes: an event that named no release
    gets the newest that holds its concept (as the collector would now give it); one whose
    named release lacks its concept is counted, and flagged, as the collector flags it."""
    columns = {c.name: row[c.name] for c in events.c if c.name != "id"}
    uri, version = row["concept_uri"], row["esco_version"]
    if not version:
        version = (uri and index.newest_holding(uri)) or index.current_version or "unknown"
    elif uri and index.is_loaded(version) and not index.holds(version, uri):
        flags[(row["implementer_id"], row["received_on"], FLAGGED, ESCO_VERSION_MISMATCH)] += 1
    return {**columns, "esco_version": version, "status": "accepted", "quarantine_reason": None}


def replay(engine: Engine, progress: Callable[[str, int, int], None] | None = None
           ) -> ReplaySummary:
    """Re-check every quarantined event against the loaded catalogue; release what it knows."""
    index = CatalogueIndex.load(engine)
    checked = released = 0
    last_id = 0
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(events)
                             .where(events.c.status == "quarantined")).scalar_one()
    while True:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            rows = conn.execute(
                select(events).where(events.c.status == "quarantined", events.c.id > last_id)
                .order_by(events.c.id).limit(BATCH)
            ).mappings().all()
            if not rows:
                break
            last_id = rows[-1]["id"]
            checked += len(rows)
            ready = [row for row in rows if _releasable(row, index)]
            if ready:
                flags: Counter = Counter()
                conn.execute(delete(events).where(events.c.id.in_([r["id"] for r in ready])))
                conn.execute(insert(events), [_released(row, index, flags) for row in ready])
                bump_outcome_counts(conn, flags)
                released += len(ready)
        if progress:
            progress("re-checking quarantined events", checked, total)
    return ReplaySummary(checked, released, checked - released)
