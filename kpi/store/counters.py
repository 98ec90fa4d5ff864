"""The per-implementer outcome counters (`outcome_counts`): how many events of each outcome and
reason arrived per day. Written by the collector with the events of a request, and by
quarantine replay when a released event is flagged; read by /v1/me and data quality."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from kpi.store.db import outcome_counts


def bump_outcome_counts(conn: Connection, counts: Counter[tuple[int, date, str, str]]) -> None:
    """Add `counts` ((implementer id, day of arrival, outcome, reason) -> events) to the
    counters, in the caller's transaction."""
    if not counts:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(outcome_counts)
    stmt = stmt.on_conflict_do_update(
        index_elements=["implementer_id", "received_on", "outcome", "reason"],
        set_={"events": outcome_counts.c.events + stmt.excluded.events},
    )
    conn.execute(stmt, [
        {"implementer_id": implementer_id, "received_on": day, "outcome": outcome,
         "reason": reason, "events": n}
        for (implementer_id, day, outcome, reason), n in sorted(counts.items())
    ])
