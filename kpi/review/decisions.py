"""Decisions on review items: the audit trail in the ingest store, and the statuses it gives.

Every decision is a new row of `review_decisions` (kpi.store.db): who, when, what, why, and the
evidence the decision saw. Rows are never changed or deleted (triggers refuse it); an item's
status is its latest row, with two rules read from the evidence:

- a deferred item reopens (status `open`) once more implementers sent it than when it was
  deferred;
- a rejected item stays rejected, but is marked `grown_since_decision` once more implementers
  sent it than when it was rejected.

Statuses: open, accepted, rejected, deferred, released (accepted, and the newest loaded
release holds it) and covered (never accepted, but the newest release holds it anyway); the
last two are written by kpi.review.reconcile as the user `system`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, func, insert, select, text

from kpi.review import ReviewError
from kpi.review.items import KINDS, Item, evidence, evidence_items, evidence_table, filtered
from kpi.settings import Settings
from kpi.store.db import review_decisions
from kpi.store.registry import user_role
from kpi.vocabulary import LANGUAGES

STATUSES: tuple[str, ...] = ("open", "accepted", "rejected", "deferred", "released", "covered")
# What a reviewer can decide, and the status each decision gives.
DECISIONS: dict[str, str] = {
    "accept": "accepted", "reject": "rejected", "defer": "deferred", "reopen": "open",
}
# What reconciliation writes (as SYSTEM_USER).
SYSTEM_DECISIONS: dict[str, str] = {"release": "released", "cover": "covered"}
REASONS: tuple[str, ...] = ("out_of_scope", "too_specific", "brand_or_product", "duplicate",
                            "wrong_language", "not_a_label", "other")
SYSTEM_USER = "system"
MAX_NOTE = 2000
_FINAL = ("released", "covered")


def utcnow() -> datetime:
    return datetime.now(UTC)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the audit trail's write lock from its start: two decisions on
    one item (two reviewers, or a reviewer and reconciliation) are taken one after the other,
    each seeing the other's row."""
    if engine.dialect.name == "sqlite":
        # BEGIN IMMEDIATE (see kpi.store.db): the write lock up front
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn
        return
    with engine.begin() as conn:
        # conflicts with itself, not with readers
        conn.execute(text("lock table review_decisions in share row exclusive mode"))
        yield conn


def latest_rows(conn: Connection, item_ids: Iterable[str] | None = None
                ) -> dict[str, dict[str, Any]]:
    """The latest audit row of each item (of `item_ids`, or of every decided item)."""
    newest = select(func.max(review_decisions.c.id)).group_by(review_decisions.c.item_id)
    if item_ids is not None:
        ids = sorted(set(item_ids))
        if not ids:
            return {}
        newest = newest.where(review_decisions.c.item_id.in_(ids))
    rows = conn.execute(select(review_decisions).where(review_decisions.c.id.in_(newest))
                        ).mappings().all()
    return {row["item_id"]: dict(row) for row in rows}


def latest_human_rows(conn: Connection, item_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The latest decision a reviewer (not reconciliation) made on each of `item_ids`."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    newest = (select(func.max(review_decisions.c.id))
              .where(review_decisions.c.item_id.in_(ids),
                     review_decisions.c.decided_by != SYSTEM_USER)
              .group_by(review_decisions.c.item_id))
    rows = conn.execute(select(review_decisions).where(review_decisions.c.id.in_(newest))
                        ).mappings().all()
    return {row["item_id"]: dict(row) for row in rows}


def status_of(latest: dict[str, Any] | None, implementers: int) -> tuple[str, bool]:
    """(status, grown_since_decision) of an item from its latest audit row and how many
    implementers sent it so far."""
    if latest is None:
        return "open", False
    status = latest["status"]
    grown = implementers > int(latest["implementers"])
    if status == "deferred" and grown:
        return "open", False
    return status, status == "rejected" and grown


def stored_item(row: dict[str, Any]) -> Item:
    """An item that the warehouse no longer holds (rebuilt from events that retention had
    deleted), from the evidence its latest decision saw."""
    extra = json.loads(row["evidence"])
    return Item(
        item_id=row["item_id"], kind=row["kind"], concept_uri=row["concept_uri"],
        concept_type=row["concept_type"], language=row["language"], label=row["label"],
        label_norm=row["label_norm"], implementers=int(row["implementers"]),
        events=int(row["events"]), first_seen=_day(extra.get("first_seen")),
        last_seen=_day(extra.get("last_seen")), spellings=int(extra.get("spellings", 1)),
        countries=int(extra.get("countries", 0)), usage=int(extra.get("usage", 0)),
        broader_uris=list(extra.get("broader_uris") or []),
        current_label=extra.get("current_label"))


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _copy(item: Item) -> Item:
    """A shallow copy of an item."""
    copy = Item.__new__(Item)
    copy.__dict__.update(item.__dict__)
    return copy


def apply_status(item: Item, latest: dict[str, Any] | None) -> Item:
    """Fill in an item's status, growth flag and release from its latest audit row."""
    item.status, item.grown_since_decision = status_of(latest, item.implementers)
    if latest is not None and item.status in _FINAL:
        item.in_release = latest["in_release"]
        item.released_as = latest["released_as"]
    return item


def decided_items(settings: Settings, table: pa.Table, latest: dict[str, dict[str, Any]],
                  kind: str | None = None, language: str | None = None) -> list[Item]:
    """The items of `table` (an evidence_table of `kind` and `language`) that a decision
    names, and those the warehouse no longer holds, rebuilt from their latest decision: each
    with its status by the audit trail's rules. Every other item of the table is open."""
    named = pc.is_in(table.column("item_id"), value_set=pa.array(list(latest), pa.string()))
    items = evidence(settings, table=table.filter(named))
    present = {i.item_id for i in items}
    items = [apply_status(i, latest[i.item_id]) for i in items]
    items += [apply_status(stored_item(row), row) for item_id, row in latest.items()
              if item_id not in present and (kind is None or row["kind"] == kind)
              and (language is None or row["language"] == language)]
    return items


def open_rows(table: pa.Table, decided: Iterable[str]) -> pa.Table:
    """The rows of an evidence_table that no decision names (`decided`: item ids): open items,
    but for a label its concept's catalogue labels have already, which is no candidate."""
    named = pc.is_in(table.column("item_id"), value_set=pa.array(list(decided), pa.string()))
    return table.filter(pc.and_(pc.invert(named), pc.invert(table.column("in_catalogue"))))


@dataclass(frozen=True)
class Queue:
    """Review items with their statuses, in order (implementers, then events, then id), as
    columns: Items are made only for the ones asked for (a page shows 1,000 of 100,000).

    `evidence` is the evidence_table the queue was made from, `order` the queue's item_id,
    concept_type and row (its row in `evidence`, null for an item the warehouse no longer
    holds) in order, `decided` the items a decision names (statuses filled in)."""

    evidence: pa.Table
    order: pa.Table
    decided: dict[str, Item]

    def __len__(self) -> int:
        return self.order.num_rows

    def ids(self) -> list[str]:
        return self.order.column("item_id").to_pylist()

    def where(self, mask: pa.Array) -> Queue:
        """The queue of the items where `mask` (over `order`) is true, in the same order."""
        return Queue(self.evidence, self.order.filter(mask), self.decided)

    def head(self, count: int | None) -> Queue:
        """The queue of its first `count` items (all when None)."""
        return self if count is None else Queue(self.evidence, self.order.slice(0, count),
                                                self.decided)

    def items(self, ids: Sequence[str] | None = None) -> list[Item]:
        """The Items of `ids` (default: the whole queue), in that order; ids not in the queue
        are left out. Undecided items are made afresh, decided ones shared: not to be changed.
        The whole queue's evidence rows are taken by their place (`order`'s row), not by
        looking each id up (21 ms against 85 for a page's 1,000 of 115,000)."""
        if ids is None:
            ids = self.ids()
            # an undecided item is always one of the evidence's rows
            places = [row for i, row in zip(ids, self.order.column("row").to_pylist(),
                                            strict=True) if i not in self.decided]
        else:
            ids = [i for i in ids if i in self._members]
            places = pc.index_in(pa.array([i for i in ids if i not in self.decided],
                                          pa.string()), value_set=self.evidence.column("item_id")
                                 ).to_pylist()
        made = iter(evidence_items(self.evidence.take(pa.array(places, pa.int64()))))
        return [self.decided[i] if i in self.decided else next(made) for i in ids]

    @cached_property
    def _members(self) -> set[str]:
        return set(self.ids())


def queue(settings: Settings, engine: Engine, *, kind: str | None = None,
          status: str | None = None, language: str | None = None,
          known: pa.Table | None = None) -> Queue:
    """The review queue (see Queue) for a kind, status and language (None: all).

    A label already among its concept's catalogue labels is no candidate, unless a decision
    names it (it was a candidate once, and a release took it in). `known`: the evidence_table
    of every kind and language when the caller keeps it (as the dashboard does between runs).
    """
    _check_filters(kind, status, language)
    table = evidence_table(settings, kind, language) if known is None else filtered(
        known, kind, language)
    with engine.connect() as conn:
        latest = latest_rows(conn)
    decided = {i.item_id: i for i in decided_items(settings, table, latest, kind, language)}
    columns = ["item_id", "concept_type", "implementers", "events"]
    # the columns the order needs, before the rows are filtered: a copy of four columns of
    # 155,000 items instead of all seventeen, and each row's place in the evidence (the
    # queue's table takes its rows by it instead of looking up every item id)
    undecided = open_rows(
        table.select([*columns, "in_catalogue"]).append_column(
            "row", pa.array(np.arange(table.num_rows, dtype=np.int64))),
        decided).select([*columns, "row"])
    if status not in (None, "open"):
        undecided = undecided.slice(0, 0)
    shown = [i for i in decided.values() if status is None or i.status == status]
    held = pc.index_in(pa.array([i.item_id for i in shown], pa.string()),
                       value_set=table.column("item_id")).cast(pa.int64())
    rows = pa.concat_tables([
        undecided,
        pa.table({**{c: [getattr(i, c) for i in shown] for c in columns}, "row": held},
                 schema=undecided.schema),
    ])
    order = rows.sort_by([("implementers", "descending"), ("events", "descending"),
                          ("item_id", "ascending")]).select(["item_id", "concept_type", "row"])
    return Queue(table, order, decided)


def list_items(settings: Settings, engine: Engine, *, kind: str | None = None,
               status: str | None = None, language: str | None = None) -> list[Item]:
    """Review items with their statuses, by evidence (implementers, then events): every Item
    of the queue (see queue)."""
    return queue(settings, engine, kind=kind, status=status, language=language).items()


def _check_filters(kind: str | None, status: str | None, language: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ReviewError(f"kind must be one of: {', '.join(KINDS)}; got {kind!r}")
    if status is not None and status not in STATUSES:
        raise ReviewError(f"status must be one of: {', '.join(STATUSES)}; got {status!r}")
    if language is not None and language not in LANGUAGES:
        raise ReviewError(f"language must be one of: {', '.join(LANGUAGES)}; got {language!r}")


def audit_row(item: Item, decision: str, status: str, by: str, at: datetime, *,
              reason: str | None = None, note: str | None = None,
              in_release: str | None = None, released_as: str | None = None
              ) -> dict[str, Any]:
    """The values of one audit row: the decision and the evidence it saw."""
    return {
        "item_id": item.item_id, "kind": item.kind, "decision": decision, "status": status,
        "decided_by": by, "decided_at": at, "reason": reason, "note": note,
        "in_release": in_release, "released_as": released_as,
        "concept_uri": item.concept_uri, "concept_type": item.concept_type,
        "language": item.language, "label_norm": item.label_norm, "label": item.label,
        "implementers": item.implementers, "events": item.events,
        "evidence": json.dumps(item.evidence(), sort_keys=True, ensure_ascii=False),
    }


def _check_reviewer(engine: Engine, by: str) -> None:
    if by == SYSTEM_USER:
        raise ReviewError(f"the user name {SYSTEM_USER!r} is kept for reconciliation")
    role = user_role(engine, by)
    if role is None:
        raise ReviewError(f"no user named {by!r}; add one with `esco-kpi user add {by} "
                          f"--role reviewer`")
    if role != "reviewer":
        raise ReviewError(f"user {by!r} is a {role}, not a reviewer: only reviewers decide")


def _check_decision(decision: str, reason: str | None, note: str | None) -> None:
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of: {', '.join(DECISIONS)}; got {decision!r}")
    if decision == "reject":
        if not reason:
            raise ReviewError(f"a rejection needs a reason: one of {', '.join(REASONS)}")
        if reason not in REASONS:
            raise ReviewError(f"reason must be one of: {', '.join(REASONS)}; got {reason!r}")
    elif reason:
        raise ReviewError("a reason is given with --decision reject only (use --note)")
    if note is not None and len(note) > MAX_NOTE:
        raise ReviewError(f"a note has at most {MAX_NOTE} characters")


def _refusal(item: Item, current: str, decision: str) -> str | None:
    """Why `decision` cannot follow `current`, or None."""
    target = DECISIONS[decision]
    if current == target:
        return f"{item.item_id} is already {current}"
    if current in _FINAL and decision != "reopen":
        return f"{item.item_id} is {current}; reopen it first"
    return None


def decide(settings: Settings, engine: Engine, item_ids: Sequence[str], decision: str, by: str,
           *, reason: str | None = None, note: str | None = None,
           items: Sequence[Item] | None = None, decided_at: datetime | None = None
           ) -> list[Item]:
    """Record one decision on each of `item_ids` by the reviewer `by`, all or none.

    The evidence is read first (or taken from `items`, a list_items answer of the caller that
    decides many batches: reading it costs seconds on a large warehouse); each item's current
    status is read again under the audit trail's write lock, and the rows (decision and
    evidence) are written in that transaction. Returns copies of the items with their new
    status.

    `decided_at` (default now) records a decision taken earlier, for instance when decisions
    made elsewhere are brought in; it can be neither in the future nor before the day an item
    was first seen. The trail stays in the order rows were written.
    """
    _check_decision(decision, reason, note)
    _check_reviewer(engine, by)
    wanted = list(dict.fromkeys(item_ids))
    if not wanted:
        raise ReviewError("name at least one item id")
    found = list_items(settings, engine) if items is None else items
    known = {i.item_id: i for i in found}
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise ReviewError(f"no review item {unknown[0]!r} (see `esco-kpi review list`)")
    note = note.strip() if note and note.strip() else None
    now = utcnow()
    if decided_at is not None:
        if decided_at.tzinfo is None:
            raise ReviewError("decided_at needs a time zone")
        if decided_at > now:
            raise ReviewError(f"decided_at {decided_at.isoformat()} is in the future")
        early = [i for i in wanted if known[i].first_seen
                 and decided_at.date() < known[i].first_seen]
        if early:
            raise ReviewError(f"decided_at {decided_at.date()} is before item {early[0]} was "
                              f"first seen ({known[early[0]].first_seen})")
        now = decided_at
    decided = []
    with writing(engine) as conn:
        latest = latest_rows(conn, wanted)
        rows = []
        for item_id in wanted:
            item = _copy(known[item_id])  # the caller's items (perhaps kept) stay as they were
            current, _ = status_of(latest.get(item_id), item.implementers)
            refusal = _refusal(item, current, decision)
            if refusal:
                raise ReviewError(refusal)
            status = DECISIONS[decision]
            rows.append(audit_row(item, decision, status, by, now, reason=reason, note=note))
            item.status, item.grown_since_decision = status, False
            item.in_release = item.released_as = None
            decided.append(item)
        conn.execute(insert(review_decisions), rows)
    return decided


def trail(engine: Engine, item_id: str | None = None) -> list[dict[str, Any]]:
    """The audit rows (of one item, or all), oldest first."""
    query = select(review_decisions).order_by(review_decisions.c.id)
    if item_id is not None:
        query = query.where(review_decisions.c.item_id == item_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings().all()]
