"""The review loop's summary per kind and language (sql/review_summary.sql).

Not one of kpi.warehouse.indicators.INDICATORS: those run on a warehouse reader, and the
statuses live in the ingest store's audit trail, which is not published into the warehouse.
Here the items and their dates are computed in Python (kpi.review.decisions) and handed to the
SQL model as the table `review_statuses` on an in-memory DuckDB connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, select

from kpi.review.decisions import SYSTEM_USER, list_items
from kpi.review.items import Item
from kpi.settings import Settings
from kpi.store.db import review_decisions
from kpi.warehouse import models

_SCHEMA = pa.schema([("kind", pa.string()), ("language", pa.string()),
                     ("status", pa.string()), ("first_seen", pa.date32()),
                     ("decided_on", pa.date32()), ("released_on", pa.date32())])


def review_summary(settings: Settings, engine: Engine, *, kind: str | None = None,
                   language: str | None = None, overall: bool = False,
                   known: Sequence[Item] | None = None) -> list[dict[str, Any]]:
    """One dict per kind and language (see sql/review_summary.sql); with `overall`, one dict
    for every item together (kind and language "all"), its medians over all of them."""
    items = list_items(settings, engine, kind=kind, language=language, known=known)
    decided: dict[str, Any] = {}
    released: dict[str, Any] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(review_decisions.c.item_id, review_decisions.c.decision,
                                   review_decisions.c.decided_by,
                                   review_decisions.c.decided_at)
                            .order_by(review_decisions.c.id))
        for item_id, decision, by, at in rows:
            if by != SYSTEM_USER:
                decided[item_id] = at.date()  # the latest reviewer's decision wins
            elif decision == "release":
                released[item_id] = at.date()
    table = pa.Table.from_pylist([
        {"kind": "all" if overall else i.kind, "language": "all" if overall else i.language,
         "status": i.status,
         "first_seen": i.first_seen, "decided_on": decided.get(i.item_id),
         "released_on": released.get(i.item_id) if i.status == "released" else None}
        for i in items], schema=_SCHEMA)
    con = duckdb.connect(":memory:")
    try:
        with models.registered(con, review_statuses=table):
            # the items are filtered already; overall, the model sees only "all"
            cur = models.run(con, "review_summary", {"kind": None if overall else kind,
                                                     "language": None if overall else language})
            columns = [d[0] for d in cur.description]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
