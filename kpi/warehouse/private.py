"""The aggregator's private DuckDB database: what every rollup is recomputed from.

DuckDB lets one process write a database file, and a file open for writing cannot be opened
read-only by another process, so ``<warehouse>/aggregator.duckdb`` is the aggregator's alone:
a copy of the accepted events (each with the watermark it was appended under), the catalogue
and implementer copies, the watermark, and the days to recompute at the next publish. Its
tables are in sql/private/schema.sql, its writers in sql/private/. Readers see what
kpi.warehouse.published writes from it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from kpi.settings import Settings
from kpi.warehouse import models
from kpi.warehouse.models import transaction

# Bumped whenever the private tables change shape (the published files have a format of their
# own: kpi.warehouse.published.FORMAT).
FORMAT = "4"
# Formats this version upgrades in place (see `_upgrade`): 1 had URIs in the rollups; 2 had no
# collections, successors, gendered label forms or release languages in its catalogue copy;
# 3 (and the older ones) had URIs in the private events.
UPGRADABLE = ("1", "2", "3")
PRIVATE_DB = "aggregator.duckdb"
LOCK_FILE = "aggregate.lock"


def private_path(settings: Settings) -> Path:
    return settings.warehouse_path / PRIVATE_DB


def connect_private(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open (and create) the aggregator's private database. Only the aggregator calls this."""
    settings.warehouse_path.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(private_path(settings)),
        # Bounded memory: DuckDB spills to disk past the limit; the aggregator stays < 2 GB.
        config={"memory_limit": "1GB", "preserve_insertion_order": False},
    )
    models.run(con, "private/schema")
    models.install(con, "private")
    held = get_meta(con, "format")
    if held is None:
        set_meta(con, "format", FORMAT)
    elif held in UPGRADABLE:
        _upgrade(con, held)
    elif held != FORMAT:
        con.close()
        raise RuntimeError(
            f"the warehouse in {settings.warehouse_path} has format {held}, this version "
            f"writes {FORMAT}: move that folder away and run the aggregation to rebuild it"
        )
    return con


def _upgrade(con: duckdb.DuckDBPyConnection, held: str) -> None:
    """Bring a warehouse of an older format to this one.

    The private events are kept (the ingest store may no longer hold the oldest of them) and
    rewritten with concept keys instead of URIs. Formats 1 and 2 also have every day marked
    dirty, so the next publish rewrites every rollup with concept keys and current concept
    types, and their catalogue copy dropped, so the next run copies every release again with
    the columns it lacked. A format-3 warehouse's published files stay as they are.
    """
    with transaction(con):
        if held in ("1", "2"):
            models.run(con, "private/upgrade_catalogue_copy")
            models.run(con, "private/mark_all_days_dirty")
        models.run(con, "private/upgrade_event_keys")
        mark_unpublished(con, "concept_keys")
        set_meta(con, "format", FORMAT)


def assign_concept_keys(con: duckdb.DuckDBPyConnection,
                        batch_uris: pa.Array | pa.ChunkedArray | None = None) -> int:
    """Give a key to every concept URI of the catalogue (or, given `batch_uris`, to each of
    those URIs: a batch's, before it is appended) that has none yet; returns how many were
    added, and marks the concept_keys dimension unpublished when any was. Call it inside a
    transaction."""
    if batch_uris is None:
        added = int(models.run(con, "private/assign_concept_keys").fetchone()[0])
    else:
        with models.registered(con, batch_uris=pa.table({"uri": batch_uris})):
            added = int(models.run(con, "private/key_batch_uris").fetchone()[0])
    if added:
        mark_unpublished(con, "concept_keys")
    return added


def get_meta(con: duckdb.DuckDBPyConnection, key: str, default: str | None = None) -> str | None:
    row = models.run(con, "private/get_meta", {"key": key}).fetchone()
    return row[0] if row else default


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    models.run(con, "private/set_meta", {"key": key, "value": value})


# The meta key of a dimension's mark (mark_unpublished): this prefix and the dimension's name.
UNPUBLISHED = "unpublished:"


def mark_unpublished(con: duckdb.DuckDBPyConnection, *dimensions: str) -> None:
    """Have the next run publish these dimensions again. Call it in the transaction that
    changes their data: a crash before publishing cannot lose the mark."""
    for name in dimensions:
        set_meta(con, UNPUBLISHED + name, "1")


def unpublished_dimensions(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The dimensions marked by mark_unpublished and not published since (one query)."""
    return {row[0] for row in models.run(con, "private/unpublished_dimensions",
                                         {"prefix": UNPUBLISHED}).fetchall()}


def mark_published(con: duckdb.DuckDBPyConnection, *dimensions: str) -> None:
    for name in dimensions:
        set_meta(con, UNPUBLISHED + name, "0")
