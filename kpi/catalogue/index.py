"""Looking the catalogue up: which URIs are ESCO concepts (the collector checks every event
against an in-memory index) and what their preferred labels are."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, select

from kpi.catalogue.load import catalogue_token
from kpi.catalogue.versions import version_key
from kpi.store.db import concept_labels, concepts


class CatalogueIndex:
    """In-memory snapshot of the catalogue's URIs, for per-event checks by the collector."""

    def __init__(self, types: dict[str, str], loaded: Iterable[str], token: tuple) -> None:
        self._types = types
        self.versions: tuple[str, ...] = tuple(sorted(loaded, key=version_key))
        self.current_version: str | None = self.versions[-1] if self.versions else None
        self.token = token

    catalogue_token = staticmethod(catalogue_token)

    @classmethod
    def load(cls, engine: Engine) -> CatalogueIndex:
        """Read every concept of every loaded version."""
        token = catalogue_token(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                select(concepts.c.version, concepts.c.uri, concepts.c.concept_type)
            ).all()
        # The newest version that has a concept says its type.
        types: dict[str, str] = {}
        for _, uri, kind in sorted(rows, key=lambda r: version_key(r[0])):
            types[uri] = kind
        return cls(types, [v for v, _ in token], token)

    def knows(self, uri: str) -> bool:
        """Whether any loaded version holds this concept URI."""
        return uri in self._types

    def concept_type(self, uri: str) -> str | None:
        """occupation | skill | isco | skill_group, or None for an unknown URI."""
        return self._types.get(uri)

    def __len__(self) -> int:
        return len(self._types)


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
