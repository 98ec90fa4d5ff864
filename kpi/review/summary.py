"""The review loop's summary per kind and language (sql/review_summary.sql).

Not one of kpi.warehouse.indicators.INDICATORS: those run on a warehouse reader, and the
statuses live in the ingest store's audit trail, which is not published into the warehouse.
The items' evidence comes as an Arrow table (kpi.review.items.evidence_table); the statuses of
the decided items, a few among 100,000, are computed in Python by the rules of
kpi.review.decisions, and every other item is open. The table `review_statuses` that results
is handed to the SQL model on an in-memory DuckDB connection.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, select

from kpi.review.decisions import SYSTEM_USER, decided_items, open_rows
from kpi.review.items import evidence_table, filtered
from kpi.settings import Settings
from kpi.store.db import review_decisions
from kpi.warehouse import models

_SCHEMA = pa.schema([("kind", pa.string()), ("language", pa.string()),
                     ("status", pa.string()), ("first_seen", pa.date32()),
                     ("decided_on", pa.date32()), ("released_on", pa.date32())])


def review_summary(settings: Settings, engine: Engine, *, kind: str | None = None,
                   language: str | None = None, overall: bool = False,
                   known: pa.Table | None = None) -> list[dict[str, Any]]:
    """One dict per kind and language (see sql/review_summary.sql); with `overall`, one dict
    for every item together (kind and language "all"), its medians over all of them.

    `known`: the evidence_table of every kind and language, when the caller keeps it (as the
    dashboard does between runs); otherwise it is read from the warehouse.
    """
    table = filtered(evidence_table(settings) if known is None else known, kind, language)
    latest: dict[str, dict[str, Any]] = {}  # each item's latest audit row: its status
    decided: dict[str, Any] = {}
    released: dict[str, Any] = {}
    with engine.connect() as conn:
        # the whole trail once, oldest first: the later rows of an item overwrite the earlier
        for row in conn.execute(select(review_decisions).order_by(review_decisions.c.id)
                                ).mappings():
            latest[row["item_id"]] = dict(row)
            if row["decided_by"] != SYSTEM_USER:
                decided[row["item_id"]] = row["decided_at"].date()  # the latest reviewer's
            elif row["decision"] == "release":
                released[row["item_id"]] = row["decided_at"].date()
    # the columns needed, before the rows are filtered (see decisions.queue)
    undecided = open_rows(table.select(["item_id", "in_catalogue", "kind", "language",
                                        "first_seen"]), latest)
    # the items a decision names: their status by the audit trail's rules, whether or not the
    # warehouse still holds them
    items = decided_items(settings, table, latest, kind, language)
    statuses = pa.concat_tables([
        pa.table({"kind": undecided.column("kind"), "language": undecided.column("language"),
                  "status": pa.array(["open"] * undecided.num_rows, pa.string()),
                  "first_seen": undecided.column("first_seen"),
                  "decided_on": pa.nulls(undecided.num_rows, pa.date32()),
                  "released_on": pa.nulls(undecided.num_rows, pa.date32())}).cast(_SCHEMA),
        pa.Table.from_pylist([
            {"kind": i.kind, "language": i.language, "status": i.status,
             "first_seen": i.first_seen, "decided_on": decided.get(i.item_id),
             "released_on": released.get(i.item_id) if i.status == "released" else None}
            for i in items], schema=_SCHEMA),
    ])
    if overall:
        every = pa.array(["all"] * statuses.num_rows, pa.string())
        statuses = statuses.set_column(0, "kind", every).set_column(1, "language", every)
    con = duckdb.connect(":memory:")
    try:
        with models.registered(con, review_statuses=statuses):
            # the items are filtered already; overall, the model sees only "all"
            cur = models.run(con, "review_summary", {"kind": None if overall else kind,
                                                     "language": None if overall else language})
            columns = [d[0] for d in cur.description]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
