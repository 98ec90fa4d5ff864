"""The per-implementer rate limit: a token bucket kept in the ingest store.

The bucket is read and written inside the same transaction that stores the events, so the
limit holds across worker processes and across collector hosts sharing one PostgreSQL, and a
refused request leaves no trace.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from kpi.store.db import rate_buckets


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: how long to wait before the bucket holds enough tokens."""

    retry_after: int


def take_tokens(conn: Connection, implementer_id: int, wanted: int,
                per_minute: int, now: float | None = None) -> Refusal | None:
    """Take `wanted` tokens, or refuse (and take none) when the bucket holds fewer."""
    now = time.time() if now is None else now
    capacity = float(per_minute)
    rate = capacity / 60.0
    query = select(rate_buckets.c.tokens, rate_buckets.c.updated_at).where(
        rate_buckets.c.implementer_id == implementer_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None and conn.dialect.name == "postgresql":
        # Two first requests may race: create the row, then lock whichever one exists.
        conn.execute(pg_insert(rate_buckets).values(
            implementer_id=implementer_id, tokens=capacity, updated_at=now
        ).on_conflict_do_nothing())
        row = conn.execute(query).first()
    if row is None:
        tokens = capacity
    else:
        # Clocks of several hosts may disagree a little; never refill for negative time.
        tokens = min(capacity, row.tokens + max(0.0, now - row.updated_at) * rate)
    if tokens < wanted:
        return Refusal(max(1, math.ceil((wanted - tokens) / rate)))
    values = {"tokens": tokens - wanted, "updated_at": now}
    if row is None:
        conn.execute(insert(rate_buckets).values(implementer_id=implementer_id, **values))
    else:
        conn.execute(update(rate_buckets).where(
            rate_buckets.c.implementer_id == implementer_id).values(**values))
    return None
