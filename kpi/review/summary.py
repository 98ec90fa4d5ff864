"""The review loop's summary per kind and language (sql/review_summary.sql).

Not one of kpi.warehouse.indicators.INDICATORS: those run on a warehouse reader, and the
statuses live in the ingest store's audit trail, which is not published into the warehouse.
The statuses of the decided items, a few among 100,000, are computed in Python by the rules of
kpi.review.decisions from their evidence (kpi.review.items.evidence_table of their label_norms
alone), and every other item is open: of those, only the kind, language and whether the
catalogue has the label are needed (kpi.review.items.item_keys_table, under a third of the
evidence's time). The table `review_statuses` that results is handed to the SQL model on an
in-memory DuckDB connection.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import Engine, select

from kpi.review.decisions import SYSTEM_USER, decided_items, open_rows
from kpi.review.items import evidence_table, filtered, item_keys_table
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

    `known`: the evidence_table of every kind and language, when the caller has it; otherwise
    the items' keys are read from the warehouse, and the evidence of the decided ones alone.
    """
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
    if known is None:
        keys = filtered(item_keys_table(settings), kind, language)
        named = filtered(evidence_table(settings, label_norms=[
            row["label_norm"] for row in latest.values()]), kind, language) if latest else None
    else:
        keys = named = filtered(known, kind, language)
    undecided = open_rows(keys.select(["item_id", "in_catalogue", "kind", "language"]), latest)
    # the items a decision names: their status by the audit trail's rules, whether or not the
    # warehouse still holds them
    items = decided_items(settings, named, latest, kind, language) if latest else []
    statuses = pa.concat_tables([
        # an open item's first_seen is no figure's (days_to_decision is over decided items)
        pa.table({"kind": undecided.column("kind"), "language": undecided.column("language"),
                  "status": pa.array(["open"] * undecided.num_rows, pa.string()),
                  "first_seen": pa.nulls(undecided.num_rows, pa.date32()),
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
