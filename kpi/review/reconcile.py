"""Reconciliation: which review items the newest loaded ESCO release holds.

Against the newest release in the ingest store (not the warehouse, which learns of a release
only at the next aggregation):

- a label item is held when its label_norm is among the concept's labels (preferred,
  alternative or hidden) in that language;
- a proposal is held when its label_norm is the label of a concept of its type in that
  language (released_as names that concept; a preferred label wins, then the smallest URI);
- a translation suggestion is held when it is the concept's preferred label in that language.

A held item that was accepted becomes `released`; one that is open or deferred becomes
`covered`; each change is an audit row by the user `system`, naming the release.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, select

from kpi.catalogue.labels import normalise_label
from kpi.catalogue.load import current_version
from kpi.review.decisions import (
    SYSTEM_DECISIONS,
    SYSTEM_USER,
    apply_status,
    audit_row,
    latest_rows,
    list_items,
    utcnow,
    writing,
)
from kpi.review.items import Item
from kpi.settings import Settings
from kpi.store.db import concept_labels, concepts, review_decisions

_CHUNK = 500


@dataclass(frozen=True)
class ReconcileSummary:
    """What one reconciliation found in `release` (None when no catalogue is loaded)."""

    release: str | None
    released: int
    covered: int

    def sentence(self) -> str:
        if self.release is None:
            return "No ESCO release is loaded: nothing to reconcile."
        accepted = "suggestion is" if self.released == 1 else "suggestions are"
        ones = "one was" if self.covered == 1 else "ones were"
        return (f"{self.released} accepted {accepted} in {self.release}, "
                f"{self.covered} open {ones} covered.")


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _concept_labels(conn: Connection, release: str, uris: Iterable[str]
                    ) -> dict[tuple[str, str], dict[str, str]]:
    """(uri, language) -> {label_norm: kind} of the release's labels of those concepts."""
    found: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for chunk in _chunks(sorted(set(uris))):
        rows = conn.execute(select(concept_labels.c.uri, concept_labels.c.language,
                                   concept_labels.c.kind, concept_labels.c.label)
                            .where(concept_labels.c.version == release,
                                   concept_labels.c.uri.in_(chunk)))
        for uri, language, kind, label in rows:
            norms = found[(uri, language)]
            norm = normalise_label(label)
            if norms.get(norm) != "preferred":
                norms[norm] = kind
    return found


def _proposal_holders(conn: Connection, release: str, wanted: set[tuple[str, str, str]]
                      ) -> dict[tuple[str, str, str], str]:
    """(concept_type, language, label_norm) -> the URI of the release's concept holding it."""
    if not wanted:
        return {}
    types = sorted({t for t, _, _ in wanted})
    languages = sorted({lang for _, lang, _ in wanted})
    rows = conn.execute(
        select(concepts.c.concept_type, concept_labels.c.language, concept_labels.c.kind,
               concept_labels.c.label, concepts.c.uri)
        .join(concepts, (concepts.c.version == concept_labels.c.version)
              & (concepts.c.uri == concept_labels.c.uri))
        .where(concept_labels.c.version == release, concepts.c.concept_type.in_(types),
               concept_labels.c.language.in_(languages)))
    best: dict[tuple[str, str, str], tuple[int, str]] = {}
    for concept_type, language, kind, label, uri in rows:
        key = (concept_type, language, normalise_label(label))
        if key not in wanted:
            continue
        rank = (0 if kind == "preferred" else 1, uri)
        if key not in best or rank < best[key]:
            best[key] = rank
    return {key: uri for key, (_, uri) in best.items()}


def held_by(conn: Connection, release: str, items: list[Item]) -> dict[str, str | None]:
    """item_id -> released_as (a concept URI for proposals, None otherwise) of the items that
    `release` holds."""
    labels = _concept_labels(conn, release, [i.concept_uri for i in items
                                             if i.kind != "proposal" and i.concept_uri])
    proposals = _proposal_holders(conn, release, {
        (i.concept_type, i.language, i.label_norm) for i in items
        if i.kind == "proposal" and i.concept_type})
    held: dict[str, str | None] = {}
    for item in items:
        if item.kind == "proposal":
            uri = proposals.get((item.concept_type, item.language, item.label_norm))
            if uri:
                held[item.item_id] = uri
            continue
        kind = labels.get((item.concept_uri, item.language), {}).get(item.label_norm)
        if kind is not None and (item.kind == "label" or kind == "preferred"):
            held[item.item_id] = None
    return held


def reconcile(settings: Settings, engine: Engine) -> ReconcileSummary:
    """Check every accepted, open and deferred item against the newest loaded release and
    record what it holds (see the module's docstring)."""
    release = current_version(engine)
    if release is None:
        return ReconcileSummary(None, 0, 0)
    pending = [i for i in list_items(settings, engine)
               if i.status in ("accepted", "open", "deferred")]
    if not pending:
        return ReconcileSummary(release, 0, 0)
    with engine.connect() as conn:
        held = held_by(conn, release, pending)
    released = covered = 0
    now = utcnow()
    by_id = {i.item_id: i for i in pending if i.item_id in held}
    with writing(engine) as conn:
        # statuses again, under the lock: a reviewer may have decided meanwhile
        latest = latest_rows(conn, by_id)
        rows = []
        for item_id, item in by_id.items():
            apply_status(item, latest.get(item_id))
            if item.status == "accepted":
                decision = "release"
                released += 1
            elif item.status in ("open", "deferred"):
                decision = "cover"
                covered += 1
            else:
                continue
            rows.append(audit_row(item, decision, SYSTEM_DECISIONS[decision], SYSTEM_USER, now,
                                  in_release=release, released_as=held[item_id]))
        if rows:
            conn.execute(insert(review_decisions), rows)
    return ReconcileSummary(release, released, covered)
