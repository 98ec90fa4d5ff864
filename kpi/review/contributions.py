"""What one implementer contributed to the review loop: the review items it sent, each with its
own spelling and the item's status (`GET /v1/me/suggestions`).

The groups come from the warehouse rollups (sql/implementer_suggestions.sql, on a reader), the
statuses from the audit trail (kpi.review.decisions). Nothing of another implementer is given
out: neither its name, its spelling nor how many implementers sent the same suggestion.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import duckdb
from sqlalchemy import Engine

from kpi.review.decisions import apply_status, latest_rows
from kpi.review.items import KINDS, Item, item_id
from kpi.settings import Settings
from kpi.warehouse import models
from kpi.warehouse.published import MANIFEST, published_dir

# The keys of each suggestion, in order.
FIELDS: tuple[str, ...] = ("item_id", "kind", "concept_uri", "language", "label", "status",
                           "in_release", "reason")
# Item ids per query of the audit trail: well below SQLite's limit on bound parameters.
_CHUNK = 500
# Implementers whose groups this process keeps, per published snapshot: reading every day's
# rollup files costs a few hundred milliseconds, the statuses (read fresh every time) a few.
_CACHED_IMPLEMENTERS = 256
_cache: OrderedDict[tuple[str, tuple[int, int, int], int], list[dict[str, Any]]] = \
    OrderedDict()
_cache_lock = threading.Lock()


def _groups(con: duckdb.DuckDBPyConnection, implementer_id: int) -> list[dict[str, Any]]:
    cur = models.run(con, "implementer_suggestions", {"implementer_id": implementer_id})
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def _publication(settings: Settings) -> tuple[int, int, int]:
    """What names the current publication: every run replaces the manifest file (a new inode),
    and a rebuilt warehouse too, whose run numbers start again. Read before the query: should
    a run publish meanwhile, the next call reads again."""
    try:
        st = (published_dir(settings) / MANIFEST).stat()
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _shared_groups(settings: Settings, implementer_id: int) -> list[dict[str, Any]]:
    """The groups of one implementer on the shared reader, cached per published snapshot."""
    # the reader is only needed here (kpi.review.items imports it lazily alike)
    from kpi.warehouse.reader import shared_reader

    key = (str(settings.warehouse_path.resolve()), _publication(settings), implementer_id)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    cursor = shared_reader(settings)
    try:
        groups = _groups(cursor, implementer_id)
    finally:
        cursor.close()
    with _cache_lock:
        _cache[key] = groups
        while len(_cache) > _CACHED_IMPLEMENTERS:
            _cache.popitem(last=False)
    return groups


def implementer_suggestions(settings: Settings, engine: Engine, implementer_id: int,
                            con: duckdb.DuckDBPyConnection | None = None
                            ) -> list[dict[str, Any]]:
    """The review items that `implementer_id` contributed to, as dicts of FIELDS: its own
    spelling as `label`, the status, the release that holds it (released or covered) and, for
    a rejection, the reason.

    `con` is a warehouse reader (the caller keeps it); without one, a cursor of the process's
    shared reader is used, and the groups are kept until the next publication. Like
    `list_items`, a label already among its concept's catalogue labels is left out unless a
    decision names it.
    """
    groups = _groups(con, implementer_id) if con is not None else _shared_groups(
        settings, implementer_id)
    items: list[tuple[Item, bool]] = []
    for row in groups:
        concept = row["concept_type"] if row["kind"] == "proposal" else row["concept_uri"]
        item = Item(
            item_id=item_id(row["kind"], concept, row["language"], row["label_norm"]),
            kind=row["kind"], concept_uri=row["concept_uri"], concept_type=row["concept_type"],
            language=row["language"], label=row["label"], label_norm=row["label_norm"],
            implementers=int(row["implementers"]), events=0, first_seen=None, last_seen=None)
        items.append((item, bool(row["in_catalogue"])))
    ids = [item.item_id for item, _ in items]
    latest: dict[str, dict[str, Any]] = {}
    if ids:
        with engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                latest.update(latest_rows(conn, ids[start:start + _CHUNK]))
    out = []
    for item, in_catalogue in items:
        row = latest.get(item.item_id)
        if in_catalogue and row is None:
            continue  # no candidate, and no decision named it
        apply_status(item, row)
        out.append({
            "item_id": item.item_id, "kind": item.kind, "concept_uri": item.concept_uri,
            "language": item.language, "label": item.label, "status": item.status,
            "in_release": item.in_release,
            "reason": row["reason"] if row is not None and item.status == "rejected" else None,
        })
    order = {kind: n for n, kind in enumerate(KINDS)}
    out.sort(key=lambda s: (order[s["kind"]], s["language"], s["label"], s["item_id"]))
    return out
