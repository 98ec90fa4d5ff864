"""The per-implementer rate limit: a token bucket kept in the ingest store.

The bucket is read and written inside the same transaction that stores the events, so the
limit holds across worker processes and across collector hosts sharing one PostgreSQL, and a
refused request leaves no trace.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
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
    return take_tokens_each(conn, implementer_id, [(wanted, per_minute)], now)[0]


def take_tokens_each(conn: Connection, implementer_id: int,
                     requests: Sequence[tuple[int, int]], now: float | None = None, *,
                     dry_run: bool = False) -> list[Refusal | None]:
    """For several requests of one implementer, in order, each (wanted, per_minute): each takes
    its tokens or is refused (taking none), exactly as if they came one after the other at
    `now`. The bucket is read and written once (a group commit writes them together).

    dry_run: only what the answers would be now; the bucket is neither locked nor changed."""
    now = time.time() if now is None else now
    query = select(rate_buckets.c.tokens, rate_buckets.c.updated_at).where(
        rate_buckets.c.implementer_id == implementer_id)
    if conn.dialect.name == "postgresql" and not dry_run:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None and conn.dialect.name == "postgresql" and not dry_run:
        # Two first requests may race: create the row, then lock whichever one exists.
        conn.execute(pg_insert(rate_buckets).values(
            implementer_id=implementer_id, tokens=float(requests[0][1]), updated_at=now
        ).on_conflict_do_nothing())
        row = conn.execute(query).first()
    # The bucket as the next request finds it: None is a full one (no row yet).
    stored = None if row is None else (row.tokens, row.updated_at)
    answers: list[Refusal | None] = []
    for wanted, per_minute in requests:
        capacity = float(per_minute)
        rate = capacity / 60.0
        if stored is None:
            tokens = capacity
        else:
            # Clocks of several hosts may disagree a little; never refill for negative time.
            tokens = min(capacity, stored[0] + max(0.0, now - stored[1]) * rate)
        if tokens < wanted:
            answers.append(Refusal(max(1, math.ceil((wanted - tokens) / rate))))
            continue
        stored = (tokens - wanted, now)
        answers.append(None)
    if dry_run or all(answers):
        return answers  # every request refused: the bucket is left as it was
    values = {"tokens": stored[0], "updated_at": stored[1]}
    if row is None:
        conn.execute(insert(rate_buckets).values(implementer_id=implementer_id, **values))
    else:
        conn.execute(update(rate_buckets).where(
            rate_buckets.c.implementer_id == implementer_id).values(**values))
    return answers
