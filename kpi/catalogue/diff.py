"""What changed between two loaded ESCO releases: what release notes would say.

Concepts added, removed and re-typed; URIs that the newer release replaced; preferred labels
that changed; labels added and removed, per language and kind. A "concept in both releases" is
one with the same URI in both, or an old URI and the successor that release B states for it
(its labels are compared with its successor's, and the successor does not count as added).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, select

from kpi.catalogue.files import CatalogueError
from kpi.store.db import catalogue_versions, concept_labels, concept_successors, concepts

# ESCO's old skill-group URIs are their codes (.../skill/S2.9.0, .../skill/K); newer releases
# give the group a UUID URI and keep the old code in the `code` column.
SKILL_PREFIX = "http://data.europa.eu/esco/skill/"
OLD_SKILL_CODE = re.compile(r"[A-Z](\d+(\.\d+)*)?")

_TYPE_NAMES = {
    "occupation": ("occupation", "occupations"),
    "skill": ("skill", "skills"),
    "isco": ("ISCO group", "ISCO groups"),
    "skill_group": ("skill group", "skill groups"),
}
_KINDS = ("preferred", "alt", "hidden")


@dataclass(frozen=True)
class Concept:
    """A concept named in the report, with its English preferred label ("" if none)."""

    uri: str
    concept_type: str
    label: str


@dataclass(frozen=True)
class Retyped:
    """A URI in both releases whose concept type changed."""

    uri: str
    old_type: str
    new_type: str
    label: str


@dataclass(frozen=True)
class Replaced:
    """A URI of release A that B lacks and for which B states a successor."""

    uri: str
    successor: str
    source: str  # how B states it: code | ...
    concept_type: str
    label: str  # in A
    successor_label: str  # in B ("" when B lacks the successor too)


@dataclass(frozen=True)
class Renamed:
    """A preferred label that changed; `uri` is B's, `was` A's when B replaced it."""

    uri: str
    old: str
    new: str
    was: str | None = None


class LabelChange(NamedTuple):
    """One label added or removed; `uri` is B's URI of the concept."""

    uri: str
    kind: str  # preferred | alt | hidden
    label: str


@dataclass
class ReleaseDiff:
    """Release B against release A."""

    a: str
    b: str
    languages_a: tuple[str, ...]
    languages_b: tuple[str, ...]
    added: list[Concept] = field(default_factory=list)
    removed: list[Concept] = field(default_factory=list)
    retyped: list[Retyped] = field(default_factory=list)
    replaced: list[Replaced] = field(default_factory=list)
    renamed: dict[str, list[Renamed]] = field(default_factory=dict)  # by language
    labels_added: dict[str, list[LabelChange]] = field(default_factory=dict)  # by language
    labels_removed: dict[str, list[LabelChange]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """Whether the two releases hold the same concepts, types and labels."""
        return not (self.added or self.removed or self.retyped or self.replaced
                    or self.renamed or self.labels_added or self.labels_removed)

    def label_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """language -> kind -> {"added": n, "removed": n}, kinds with no change left out."""
        counts: dict[str, dict[str, dict[str, int]]] = {}
        for side, changes in (("added", self.labels_added), ("removed", self.labels_removed)):
            for language, items in changes.items():
                for kind, n in Counter(c.kind for c in items).items():
                    slot = counts.setdefault(language, {}).setdefault(
                        kind, {"added": 0, "removed": 0})
                    slot[side] = n
        return {lang: {k: counts[lang][k] for k in _KINDS if k in counts[lang]}
                for lang in sorted(counts)}

    def to_json(self) -> dict[str, Any]:
        """Plain dicts and lists, sorted, the same for the same two releases."""
        def concept(c: Concept) -> dict[str, str]:
            return {"uri": c.uri, "type": c.concept_type, "label": c.label}

        def renamed(r: Renamed) -> dict[str, str]:
            item = {"uri": r.uri, "old": r.old, "new": r.new}
            if r.was:
                item["was"] = r.was
            return item

        def changes(by_language: dict[str, list[LabelChange]]) -> dict[str, list[dict]]:
            return {lang: [{"uri": c.uri, "kind": c.kind, "label": c.label} for c in items]
                    for lang, items in sorted(by_language.items())}

        return {
            "a": self.a,
            "b": self.b,
            "languages": {"a": list(self.languages_a), "b": list(self.languages_b)},
            "summary": {
                "added": dict(sorted(Counter(c.concept_type for c in self.added).items())),
                "removed": dict(sorted(Counter(c.concept_type for c in self.removed).items())),
                "retyped": len(self.retyped),
                "replaced": len(self.replaced),
                "renamed": {lang: len(items) for lang, items in sorted(self.renamed.items())},
                "labels": self.label_counts(),
            },
            "added": [concept(c) for c in self.added],
            "removed": [concept(c) for c in self.removed],
            "retyped": [{"uri": r.uri, "old_type": r.old_type, "new_type": r.new_type,
                         "label": r.label} for r in self.retyped],
            "replaced": [{"uri": r.uri, "successor": r.successor, "source": r.source,
                          "type": r.concept_type, "label": r.label,
                          "successor_label": r.successor_label} for r in self.replaced],
            "renamed": {lang: [renamed(r) for r in items]
                        for lang, items in sorted(self.renamed.items())},
            "labels_added": changes(self.labels_added),
            "labels_removed": changes(self.labels_removed),
        }

    def summary(self) -> str:
        """The one-line summary that opens the report."""
        head = f"{self.b} against {self.a}"
        if self.is_empty():
            return f"{head}: no differences"
        parts = [
            f"{len(self.added)} concepts added{_by_type(self.added)}",
            f"{len(self.removed)} removed{_by_type(self.removed)}",
            f"{len(self.retyped)} re-typed",
        ]
        renamed = ", ".join(f"{len(items)} renamed in {lang}"
                            for lang, items in sorted(self.renamed.items()))
        parts.append(renamed or "0 renamed")
        parts.append(f"{len(self.replaced)} URIs replaced")
        labels = ", ".join(
            f"{lang} +{sum(k['added'] for k in kinds.values())} "
            f"\u2212{sum(k['removed'] for k in kinds.values())}"
            for lang, kinds in self.label_counts().items()
        )
        return f"{head}: {', '.join(parts)}; labels: {labels or 'no changes'}"

    def lines(self, limit: int = 10) -> list[str]:
        """The human report: the summary, then sections of at most `limit` items each."""
        out = [self.summary()]
        if self.is_empty():
            return out
        only_a = sorted(set(self.languages_a) - set(self.languages_b))
        only_b = sorted(set(self.languages_b) - set(self.languages_a))
        if only_a:
            out.append(f"Languages in {self.a} only: {', '.join(only_a)}")
        if only_b:
            out.append(f"Languages in {self.b} only: {', '.join(only_b)}")

        def section(title: str, items: list[str]) -> None:
            if not items:
                return
            out.append("")
            out.append(f"{title} ({len(items)}):")
            out.extend(f"  {item}" for item in items[:limit])
            if len(items) > limit:
                out.append(f"  ... and {len(items) - limit} more")

        section("Added", [f"{_name(c.concept_type)}  {c.uri}  {c.label}" for c in self.added])
        section("Removed",
                [f"{_name(c.concept_type)}  {c.uri}  {c.label}" for c in self.removed])
        section("Re-typed", [f"{r.uri}  {r.label}: {_name(r.old_type)} -> {_name(r.new_type)}"
                             for r in self.retyped])
        section("URIs replaced", [
            f"{r.uri} -> {r.successor}  {r.successor_label or r.label}"
            + (f" (was: {r.label})" if r.label and r.successor_label
               and r.label != r.successor_label else "")
            for r in self.replaced
        ])
        for lang, items in sorted(self.renamed.items()):
            section(f"Renamed in {lang}", [f"{r.uri}  {r.old!r} -> {r.new!r}" for r in items])
        counts = self.label_counts()
        if counts:
            out.append("")
            out.append("Labels added and removed (with --json: the labels):")
            for lang, kinds in counts.items():
                out.append(f"  {lang}: " + ", ".join(
                    f"{kind} +{n['added']} \u2212{n['removed']}" for kind, n in kinds.items()))
        return out


def _name(concept_type: str, n: int = 1) -> str:
    singular, plural = _TYPE_NAMES.get(concept_type, (concept_type, concept_type))
    return singular if n == 1 else plural


def _by_type(items: list[Concept]) -> str:
    if not items:
        return ""
    counts = sorted(Counter(c.concept_type for c in items).items())
    return " (" + ", ".join(f"{n} {_name(t, n)}" for t, n in counts) + ")"


# ---------------------------------------------------------------------------------------------
# Reading the store


def _check_loaded(conn: Connection, *wanted: str) -> None:
    loaded = set(conn.execute(select(catalogue_versions.c.version)).scalars())
    for version in wanted:
        if version not in loaded:
            have = ", ".join(sorted(loaded)) or "none"
            raise CatalogueError(f"version {version!r} is not loaded (loaded: {have})")


def _concepts(conn: Connection, version: str) -> dict[str, tuple[str, str | None]]:
    query = select(concepts.c.uri, concepts.c.concept_type, concepts.c.code).where(
        concepts.c.version == version)
    return {uri: (kind, code) for uri, kind, code in conn.execute(query)}


def _labels(conn: Connection, version: str) -> list[tuple[str, str, str, str]]:
    query = select(concept_labels.c.uri, concept_labels.c.language, concept_labels.c.kind,
                   concept_labels.c.label).where(concept_labels.c.version == version)
    # A release has ~385,000 labels: the driver's own tuples, on this connection and in its
    # transaction, come about twice as fast as SQLAlchemy's result rows (plain strings, so
    # there is nothing for SQLAlchemy to convert).
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.params
    args: Any = (tuple(params[name] for name in compiled.positiontup or ())
                 if compiled.positional else params)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        return cursor.fetchall()
    finally:
        cursor.close()


def successors(
    conn: Connection, version: str, concepts_b: dict[str, tuple[str, str | None]]
) -> dict[str, tuple[str, str]]:
    """old URI -> (successor URI, source) as release `version` states them.

    From concept_successors; for a store loaded before that table was filled, from the `code`
    of the release's skill groups (code S2.9.0 names the old URI .../skill/S2.9.0).
    """
    query = select(concept_successors.c.uri, concept_successors.c.successor_uri,
                   concept_successors.c.source).where(concept_successors.c.version == version)
    stated = {uri: (successor, source) for uri, successor, source in conn.execute(query)}
    if stated:
        return stated
    found: dict[str, tuple[str, str]] = {}
    for uri, (_kind, code) in concepts_b.items():
        if code and uri.startswith(SKILL_PREFIX) and OLD_SKILL_CODE.fullmatch(code):
            old = SKILL_PREFIX + code
            if old != uri:
                found[old] = (uri, "code")
    return found


def diff_releases(engine: Engine, a: str, b: str) -> ReleaseDiff:
    """Release `b` against release `a`, both loaded; CatalogueError if one is not."""
    with engine.connect() as conn:
        _check_loaded(conn, a, b)
        concepts_a = _concepts(conn, a)
        concepts_b = _concepts(conn, b)
        stated = successors(conn, b, concepts_b)
        labels_a = _labels(conn, a)
        labels_b = _labels(conn, b) if b != a else labels_a

    # Which B concept each A concept is: the same URI, or the successor B states for it.
    replaced_uris = sorted(u for u in concepts_a if u not in concepts_b and u in stated)
    pairs = {u: u for u in concepts_a if u in concepts_b}
    for uri in replaced_uris:
        successor = stated[uri][0]
        # A successor that A already had is a merge: its own labels are compared, not these.
        if successor in concepts_b and successor not in concepts_a:
            pairs[uri] = successor
    successor_targets = set(pairs.values())

    pref_a = {(u, lang): label for u, lang, kind, label in labels_a if kind == "preferred"}
    pref_b = {(u, lang): label for u, lang, kind, label in labels_b if kind == "preferred"}

    def english(uri: str, pref: dict[tuple[str, str], str]) -> str:
        return pref.get((uri, "en"), "")

    result = ReleaseDiff(
        a=a, b=b,
        languages_a=tuple(sorted({lang for _, lang, _, _ in labels_a})),
        languages_b=tuple(sorted({lang for _, lang, _, _ in labels_b})),
    )
    result.added = sorted(
        (Concept(u, kind, english(u, pref_b)) for u, (kind, _) in concepts_b.items()
         if u not in concepts_a and u not in successor_targets),
        key=lambda c: (c.concept_type, c.uri),
    )
    result.removed = sorted(
        (Concept(u, kind, english(u, pref_a)) for u, (kind, _) in concepts_a.items()
         if u not in concepts_b and u not in stated),
        key=lambda c: (c.concept_type, c.uri),
    )
    result.retyped = [
        Retyped(u, concepts_a[u][0], concepts_b[u][0], english(u, pref_b))
        for u in sorted(concepts_a) if u in concepts_b and concepts_a[u][0] != concepts_b[u][0]
    ]
    result.replaced = [
        Replaced(u, stated[u][0], stated[u][1], concepts_a[u][0], english(u, pref_a),
                 english(stated[u][0], pref_b))
        for u in replaced_uris
    ]

    renamed: dict[str, list[Renamed]] = defaultdict(list)
    for (uri_a, lang), old in pref_a.items():
        uri_b = pairs.get(uri_a)
        if uri_b is None:
            continue
        new = pref_b.get((uri_b, lang))
        if new is not None and new != old:
            renamed[lang].append(Renamed(uri_b, old, new, uri_a if uri_a != uri_b else None))
    result.renamed = {lang: sorted(items, key=lambda r: (r.uri, r.was or ""))
                      for lang, items in sorted(renamed.items())}

    # Labels of the concepts in both releases, A's under B's URI.
    set_a = {(pairs[u], lang, kind, label) for u, lang, kind, label in labels_a if u in pairs}
    set_b = {row for row in labels_b if row[0] in successor_targets}
    result.labels_added = _by_language(set_b - set_a)
    result.labels_removed = _by_language(set_a - set_b)
    return result


def _by_language(rows: set[tuple[str, str, str, str]]) -> dict[str, list[LabelChange]]:
    # A language a release lacks makes every label of it a change: ~100,000 items, so plain
    # tuple sorting and tuples (not dataclasses) for the items.
    grouped: dict[str, list[LabelChange]] = defaultdict(list)
    for uri, lang, kind, label in sorted(rows, key=itemgetter(1, 0, 2, 3)):
        grouped[lang].append(LabelChange(uri, kind, label))
    return dict(sorted(grouped.items()))

