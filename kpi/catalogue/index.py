"""Looking the catalogue up: which URIs are ESCO concepts, which loaded release holds each (the
collector checks every event against an in-memory index) and what their preferred labels are.

A URI that a loaded release states it replaced (table concept_successors, e.g. ESCO's old
code-style skill-group URI .../skill/S2.9.0) is known too: events naming it are counted under
its successor. Which successor, and whether the replaced URI counts at all, follows the
warehouse's rule (sql/private/concept_info.sql, successor_of) so that the collector, quarantine
replay and the indicators agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import Engine, select

from kpi.catalogue.load import catalogue_token
from kpi.catalogue.versions import version_key
from kpi.store.db import concept_labels, concept_successors, concepts


@lru_cache(maxsize=1024)
def _padded(version: str) -> tuple[int, ...]:
    """The version's numbers with a missing patch number as 0: "1.2" and "1.2.0" are one."""
    key = version_key(version)
    return key + (0,) * (3 - len(key))


class CatalogueIndex:
    """In-memory snapshot of the catalogue's URIs, for per-event checks by the collector.

    Per URI, one integer whose bit i says whether the i-th loaded release (oldest first) holds
    it: a few dict look-ups per event, and a small footprint for ~17,000 concepts × releases.
    """

    def __init__(self, loaded: Iterable[str], held: dict[str, int], types: dict[str, str],
                 successors: dict[str, str], token: tuple) -> None:
        self.versions: tuple[str, ...] = tuple(sorted(loaded, key=version_key))
        self.current_version: str | None = self.versions[-1] if self.versions else None
        self.token = token
        self._slots = {_padded(v): i for i, v in enumerate(self.versions)}
        self._held = held  # uri -> bit mask of the releases holding it (replaced URIs too)
        self._types = types  # concept uri -> type in the newest release holding it
        self._successors = successors  # replaced uri -> the concept counting its events

    catalogue_token = staticmethod(catalogue_token)

    @classmethod
    def load(cls, engine: Engine) -> CatalogueIndex:
        """Read every concept and every replaced URI of every loaded release."""
        token = catalogue_token(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                select(concepts.c.version, concepts.c.uri, concepts.c.concept_type)
            ).all()
            stated = conn.execute(
                select(concept_successors.c.version, concept_successors.c.uri,
                       concept_successors.c.successor_uri)
            ).all()
        # A release loaded between the token and the rows is taken in too: the token then
        # differs from the store's on the next check, which reloads.
        loaded = sorted({v for v, _ in token} | {r[0] for r in rows} | {r[0] for r in stated},
                        key=version_key)
        slot = {v: i for i, v in enumerate(loaded)}
        held: dict[str, int] = {}
        types: dict[str, str] = {}
        for version, uri, kind in rows:
            bit = 1 << slot[version]
            mask = held.get(uri, 0)
            if mask < bit:  # no newer release seen yet: this one says the type
                types[uri] = kind
            held[uri] = mask | bit
        successors, stated_by = _successors(stated, held, slot, len(loaded))
        replaced = {uri: held.get(uri, 0) | stated_by[uri] | held[successor]
                    for uri, successor in successors.items()}
        held.update(replaced)
        return cls(loaded, held, types, successors, token)

    def knows(self, uri: str) -> bool:
        """Whether a loaded release holds this concept URI, or states that it replaced it."""
        return uri in self._held

    def successor(self, uri: str) -> str | None:
        """The concept that a replaced URI's events are counted under; None for any other
        URI."""
        return self._successors.get(uri)

    def concept_type(self, uri: str) -> str | None:
        """occupation | skill | isco | skill_group in the newest release holding the concept
        (a replaced URI: its successor's), or None for an unknown URI."""
        return self._types.get(self._successors.get(uri, uri))

    def is_loaded(self, version: str) -> bool:
        """Whether this release is loaded ("1.2" and "1.2.0" are the same release)."""
        return _padded(version) in self._slots

    def holds(self, version: str, uri: str) -> bool:
        """Whether loaded release `version` holds the concept. A replaced URI is held by a
        release that holds its successor or that states the replacement. False for a release
        that is not loaded."""
        slot = self._slots.get(_padded(version))
        return slot is not None and bool(self._held.get(uri, 0) >> slot & 1)

    def newest_holding(self, uri: str) -> str | None:
        """The newest loaded release that holds the concept (see `holds`), or None."""
        mask = self._held.get(uri, 0)
        return self.versions[mask.bit_length() - 1] if mask else None

    def __len__(self) -> int:
        """How many URIs are known (concepts and replaced URIs)."""
        return len(self._held)


def _successors(stated: list, held: dict[str, int], slot: dict[str, int], releases: int
                ) -> tuple[dict[str, str], dict[str, int]]:
    """(replaced uri -> successor, replaced uri -> bit mask of the releases stating it).

    The warehouse's rule (sql/private/concept_info.sql): a URI the newest release holds itself
    is no replaced URI; the newest release stating a replacement wins; a successor that was
    replaced in turn is followed one step further; a successor no loaded release holds
    leaves the URI unknown.
    """
    newest = 1 << (releases - 1) if releases else 0
    latest: dict[str, tuple[int, str]] = {}
    stated_by: dict[str, int] = {}
    for version, uri, successor in stated:
        if held.get(uri, 0) & newest:
            continue
        rank = slot[version]
        stated_by[uri] = stated_by.get(uri, 0) | 1 << rank
        if uri not in latest or rank > latest[uri][0]:
            latest[uri] = (rank, successor)
    found: dict[str, str] = {}
    for uri, (_, successor) in latest.items():
        final = latest[successor][1] if successor in latest else successor
        if final in held:
            found[uri] = final
    return found, {uri: stated_by[uri] for uri in found}


def preferred_labels(
    engine: Engine, uris: Iterable[str], language: str, version: str | None = None
) -> dict[str, str]:
    """Preferred label of each known URI in `language`, else in English.

    With a version, only that version is read. Without, the newest version having a label in
    `language` for the concept wins, else the newest one having an English label: concepts
    that a newer release dropped still get their label.
    """
    wanted = sorted(set(uris))
    langs = sorted({language, "en"})
    found: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            query = select(
                concept_labels.c.version, concept_labels.c.uri,
                concept_labels.c.language, concept_labels.c.label,
            ).where(
                concept_labels.c.kind == "preferred",
                concept_labels.c.language.in_(langs),
                concept_labels.c.uri.in_(wanted[start:start + 500]),
            )
            if version is not None:
                query = query.where(concept_labels.c.version == version)
            for ver, uri, lang, label in conn.execute(query):
                # Own language before English, then newer before older.
                key = ((1,) if lang == language else (0,), version_key(ver), label)
                if uri not in found or key > found[uri]:
                    found[uri] = key
    return {uri: key[2] for uri, key in found.items()}
