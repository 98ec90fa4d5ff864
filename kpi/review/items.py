"""Review items: one per suggestion group, with a stable id and its evidence over all time.

A group is the key under which the indicators group a suggestion: a candidate label by
(concept, language, label_norm), a proposal by (concept_type, language, label_norm), a
translation suggestion by (concept, language, label_norm). The item id is a hash of the kind and
that key, so it is the same across aggregations, periods, restarts and warehouse rebuilds
(concept URIs, never the warehouse's integer concept keys).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kpi.settings import Settings
from kpi.warehouse import models

KINDS: tuple[str, ...] = ("label", "proposal", "translation")
_PREFIX = {"label": "L", "proposal": "P", "translation": "T"}
# 16 hex digits (64 bits): a collision among a million items has odds of about 1 in 30 million.
_HASH_DIGITS = 16
# What an item id looks like (a link to one item checks it before use).
ITEM_ID = re.compile(rf"^[LPT]-[0-9a-f]{{{_HASH_DIGITS}}}$")
# The keys of `review list --json` and of the hand-over's item columns, in order.
PUBLIC_FIELDS: tuple[str, ...] = (
    "item_id", "kind", "status", "concept_uri", "concept_type", "language", "label",
    "implementers", "events", "first_seen", "last_seen", "in_release", "released_as",
)


def item_id(kind: str, concept: str | None, language: str, label_norm: str) -> str:
    """The id of a group: kind prefix and a hash of the group key.

    `concept` is the concept URI for labels and translations, the concept type for proposals.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of: {', '.join(KINDS)}; got {kind!r}")
    # the unit separator cannot occur in a URI, a language code or a normalised label
    key = "\x1f".join((kind, concept or "", language, label_norm))
    return f"{_PREFIX[kind]}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:_HASH_DIGITS]}"


@dataclass
class Item:
    """A review item: its key, its evidence and (once kpi.review.decisions filled it in) its
    status and latest decision."""

    item_id: str
    kind: str
    concept_uri: str | None
    concept_type: str | None
    language: str
    label: str
    label_norm: str
    implementers: int
    events: int
    first_seen: date | None
    last_seen: date | None
    spellings: int = 1
    countries: int = 0
    usage: int = 0
    broader_uris: list[str] = field(default_factory=list)
    current_label: str | None = None
    in_catalogue: bool = False
    status: str = "open"
    grown_since_decision: bool = False
    in_release: str | None = None
    released_as: str | None = None

    def public(self) -> dict[str, Any]:
        """The fields of PUBLIC_FIELDS (dates as ISO text) and grown_since_decision."""
        out = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        for name in ("first_seen", "last_seen"):
            if isinstance(out[name], date):
                out[name] = out[name].isoformat()
        out["grown_since_decision"] = self.grown_since_decision
        return out

    def evidence(self) -> dict[str, Any]:
        """What an audit row keeps of the evidence beyond its own columns (JSON-ready)."""
        return {
            "countries": self.countries,
            "spellings": self.spellings,
            "usage": self.usage,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "broader_uris": list(self.broader_uris),
            "current_label": self.current_label,
        }


def evidence_table(settings: Settings, kind: str | None = None, language: str | None = None,
                   label_norms: Iterable[str] | None = None) -> pa.Table:
    """Every suggestion group of the published warehouse as one Arrow row (the columns of
    sql/review_items.sql, item ids included), in no particular order: what the review queue
    reads without building an Item per group. With `label_norms`, only the groups of those
    label_norms (a fraction of the time for a few). Runs on the shared reader."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of: {', '.join(KINDS)}; got {kind!r}")
    return _query(settings, "review_items", {
        "kind": kind, "language": language,
        "label_norms": None if label_norms is None else sorted(set(label_norms))}, arrow=True)


def item_keys_table(settings: Settings) -> pa.Table:
    """Every item of evidence_table without its evidence (item_id, kind, language,
    in_catalogue: sql/review_item_keys.sql), under a third of its time (0.13-0.15 s against
    0.44-0.49 s at 10 M events)."""
    return _query(settings, "review_item_keys", {}, arrow=True)


def evidence(settings: Settings, kind: str | None = None, language: str | None = None,
             table: pa.Table | None = None) -> list[Item]:
    """Every suggestion group of the published warehouse as an Item (status still "open"), in
    no particular order (kpi.review.decisions.queue orders them); from `table`, an
    evidence_table of every kind and language, when the caller has it."""
    if table is None:
        table = evidence_table(settings, kind, language)
    else:
        table = filtered(table, kind, language)
    return evidence_items(table)


def evidence_items(table: pa.Table) -> list[Item]:
    """One Item (status still "open") per row of an evidence_table, in the table's order."""
    # a list per column, then one Item per row: about half the time of a dict per row
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    return [
        Item(item_id=iid, kind=k, concept_uri=uri, concept_type=ctype, language=lang,
             label=label, label_norm=norm, implementers=impl, events=events, first_seen=first,
             last_seen=last, spellings=spellings, countries=countries, usage=usage,
             broader_uris=list(broader or []), current_label=current, in_catalogue=bool(known))
        for iid, k, uri, ctype, lang, label, norm, impl, events, first, last, spellings,
        countries, usage, broader, current, known in zip(
            *(columns[c] for c in ("item_id", "kind", "concept_uri", "concept_type", "language",
                                   "label", "label_norm", "implementers", "events",
                                   "first_seen", "last_seen", "spellings", "countries",
                                   "usage", "broader_uris", "current_label", "in_catalogue")),
            strict=True)
    ]


def filtered(table: pa.Table, kind: str | None, language: str | None) -> pa.Table:
    """The rows of an evidence_table of one kind and language (None: all)."""
    if kind is not None:
        table = table.filter(pc.equal(table.column("kind"), kind))
    if language is not None:
        table = table.filter(pc.equal(table.column("language"), language))
    return table


def _query(settings: Settings, name: str, params: dict[str, Any], arrow: bool = False
           ) -> Any:
    """Rows of a review model of sql/ on the process's shared warehouse reader: dicts, or with
    `arrow` one Arrow table. The shared reader, not a fresh one: opening a reader costs some
    80 ms at 10 M events, and the kept reader holds used_label_norms as a small table (the
    evidence took 0.70 s on a fresh reader, 0.54 s on the shared one)."""
    from kpi.warehouse.reader import shared_reader  # the warehouse is only needed here

    con = shared_reader(settings)
    try:
        if arrow:
            return models.arrow(con, name, params)
        cur = models.run(con, name, params)
        columns = [d[0] for d in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


@dataclass(frozen=True)
class ItemDetail:
    """What a reviewer sees of one item beyond its evidence: each spelling sent (label,
    events, implementers) and its implementers per month (month's first day, implementers,
    events), from sql/review_item_detail.sql."""

    spellings: list[tuple[str, int, int]]
    months: list[tuple[date, int, int]]


def item_detail(settings: Settings, item: Item, since: date) -> ItemDetail:
    """The spellings of `item` over all time and its months from `since` on."""
    rows = _query(settings, "review_item_detail", {
        "kind": item.kind, "concept_uri": item.concept_uri, "concept_type": item.concept_type,
        "language": item.language, "label_norm": item.label_norm, "since": since})
    return ItemDetail(
        spellings=[(r["label"], int(r["events"]), int(r["implementers"]))
                   for r in rows if r["section"] == "spelling"],
        months=sorted((r["month"], int(r["implementers"]), int(r["events"]))
                      for r in rows if r["section"] == "month"))


def item_months_table(settings: Settings, since: date) -> pa.Table:
    """The implementers per month from `since` on of every item sent in that time, one row
    per item and month (item_id, month's first day, implementers...: sql/review_item_months.sql),
    as Arrow: see item_months for the few items a page shows. `since` is a month's first day
    (the months that have ended are read from their sums)."""
    if since.day != 1:
        raise ValueError(f"since must be the first day of a month; got {since.isoformat()}")
    return _query(settings, "review_item_months", {"since": since}, arrow=True)


def item_months(table: pa.Table, item_ids: Iterable[str]) -> dict[str, dict[date, int]]:
    """item id -> {month's first day: implementers} for some items, from an
    item_months_table."""
    wanted = table.filter(pc.is_in(table.column("item_id"),
                                   value_set=pa.array(list(item_ids), pa.string())))
    out: dict[str, dict[date, int]] = {}
    for key, month, implementers in zip(*(wanted.column(c).to_pylist() for c in (
            "item_id", "month", "implementers")), strict=True):
        out.setdefault(key, {})[month] = implementers
    return out
