"""The hand-over to ESCO's editors: the items of one status (accepted by default) as
changes.csv, changes.ttl (SKOS in Turtle) and manifest.json.

changes.csv: one row per item, the item's fields (kpi.review.items.PUBLIC_FIELDS), the action
(`add_alt_label`, `add_concept`, `review_translation`) and the latest reviewer's decision,
reviewer, date (UTC), reason and note; text cells follow the formula rule of
kpi.exports.csvfile. Counts only: no implementer is named.

changes.ttl, for accepted and released items (empty for the other statuses):

- a label: `<concept> skos:altLabel "label"@lang`;
- a proposal: a new `skos:Concept` named `urn:esco-kpi:proposal:<item id>`, with
  `skos:prefLabel "label"@lang`, `skos:broader` each broader concept the proposals named,
  `skos:inScheme <urn:esco-kpi:proposals>` (a `skos:ConceptScheme`) and an English
  `skos:editorialNote` giving the proposed type;
- a translation: an English `skos:editorialNote` on the concept suggesting the label as its
  preferred label in that language (a note rather than a second `skos:prefLabel`, which SKOS
  allows only once per language).

manifest.json: the status, the newest loaded release, and each file's rows (or triples) and
SHA-256. The same items and decisions give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from rdflib import RDF, SKOS, Graph, Literal, URIRef
from sqlalchemy import Engine

from kpi.catalogue.load import current_version
from kpi.exports.csvfile import cell, render_csv
from kpi.review import ReviewError
from kpi.review.decisions import STATUSES, latest_human_rows, list_items
from kpi.review.items import PUBLIC_FIELDS, Item
from kpi.settings import Settings

ACTIONS = {"label": "add_alt_label", "proposal": "add_concept",
           "translation": "review_translation"}
CSV_COLUMNS: tuple[str, ...] = (*PUBLIC_FIELDS, "action", "decision", "reviewer", "date",
                                "reason", "note")
PROPOSALS_SCHEME = URIRef("urn:esco-kpi:proposals")
PROPOSAL_PREFIX = "urn:esco-kpi:proposal:"
FILES = ("changes.csv", "changes.ttl", "manifest.json")


@dataclass(frozen=True)
class HandoverSummary:
    """What one hand-over wrote."""

    folder: Path
    status: str
    items: int
    triples: int


def proposal_uri(item_id: str) -> URIRef:
    """The URI that changes.ttl gives an accepted proposal."""
    return URIRef(PROPOSAL_PREFIX + item_id)


def changes_graph(items: list[Item]) -> Graph:
    """The SKOS triples of the items (see the module's docstring)."""
    graph = Graph()
    graph.bind("skos", SKOS)
    if any(i.kind == "proposal" for i in items):
        graph.add((PROPOSALS_SCHEME, RDF.type, SKOS.ConceptScheme))
        graph.add((PROPOSALS_SCHEME, SKOS.prefLabel,
                   Literal("Concepts proposed by implementers", lang="en")))
    for item in items:
        label = Literal(item.label, lang=item.language)
        if item.kind == "label" and item.concept_uri:
            graph.add((URIRef(item.concept_uri), SKOS.altLabel, label))
        elif item.kind == "proposal":
            uri = proposal_uri(item.item_id)
            graph.add((uri, RDF.type, SKOS.Concept))
            graph.add((uri, SKOS.prefLabel, label))
            graph.add((uri, SKOS.inScheme, PROPOSALS_SCHEME))
            graph.add((uri, SKOS.editorialNote, Literal(
                f"proposed {item.concept_type or 'concept'} (review item {item.item_id})",
                lang="en")))
            for broader in item.broader_uris:
                graph.add((uri, SKOS.broader, URIRef(broader)))
        elif item.kind == "translation" and item.concept_uri:
            graph.add((URIRef(item.concept_uri), SKOS.editorialNote, Literal(
                f"suggested preferred label in {item.language}: {item.label} "
                f"(review item {item.item_id})", lang="en")))
    return graph


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_changes(settings: Settings, engine: Engine, out: Path, status: str = "accepted"
                   ) -> HandoverSummary:
    """Write changes.csv, changes.ttl and manifest.json for the items of `status` into `out`."""
    if status not in STATUSES:
        raise ReviewError(f"status must be one of: {', '.join(STATUSES)}; got {status!r}")
    items = list_items(settings, engine, status=status)
    with engine.connect() as conn:
        decided = latest_human_rows(conn, [i.item_id for i in items])
    rows = []
    for item in items:
        public = item.public()
        row = [cell(public[name]) for name in PUBLIC_FIELDS]
        human = decided.get(item.item_id) or {}
        at = human.get("decided_at")
        row += [cell(ACTIONS[item.kind]), cell(human.get("decision")),
                cell(human.get("decided_by")), at.date().isoformat() if at else "",
                cell(human.get("reason")), cell(human.get("note"))]
        rows.append(row)
    graph = changes_graph(items if status in ("accepted", "released") else [])
    csv_bytes = render_csv(CSV_COLUMNS, rows).encode("utf-8")
    ttl_bytes = graph.serialize(format="turtle").encode("utf-8")
    manifest = {
        "status": status,
        "catalogue_version": current_version(engine),
        "items": len(items),
        "files": {
            "changes.csv": {"rows": len(rows), "sha256": _sha256(csv_bytes)},
            "changes.ttl": {"triples": len(graph), "sha256": _sha256(ttl_bytes)},
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in (("changes.csv", csv_bytes), ("changes.ttl", ttl_bytes)):
        _write(out / name, data)
    _write(out / "manifest.json",
           (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return HandoverSummary(out, status, len(items), len(graph))


def _write(path: Path, data: bytes) -> None:
    """Write a file whole, or leave the one before it in place."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
