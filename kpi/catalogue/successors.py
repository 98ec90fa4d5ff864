"""URIs that a release replaced, and by what (table concept_successors).

ESCO's skill groups once had code-style URIs (`http://data.europa.eu/esco/skill/S2.9.0`);
today they have opaque ones, and the `code` column of skillGroups_<lang>.csv keeps the code.
Events that still name the old URI are about the concept that replaced it: a URI that a loaded
release lists as replaced counts as known.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from sqlalchemy import Engine, select

from kpi.catalogue.versions import version_key
from kpi.store.db import concept_successors

SKILL_BASE = "http://data.europa.eu/esco/skill/"
# S2.9.0, S2.9, T3, L1, K1.2: a letter and dot-separated numbers; also the bare top-level
# letters, which were URIs of their own in older releases (.../skill/K, .../skill/S).
SKILL_GROUP_CODE = re.compile(r"^[A-Z](\d+(\.\d+)*)?$")


def code_successors(codes: Mapping[str, str], concepts: Collection[str]) -> dict[str, str]:
    """Replaced code-style URI -> its successor, for a release's concepts and their codes.

    A concept under /esco/skill/ whose code looks like a skill-group code replaced
    .../skill/<code>, unless that URI is itself a concept of the release (or the concept's own).
    """
    found: dict[str, str] = {}
    for uri in sorted(codes):
        code = codes[uri]
        if not SKILL_GROUP_CODE.match(code) or not uri.startswith(SKILL_BASE):
            continue
        old = SKILL_BASE + code
        if old != uri and old not in concepts:
            found.setdefault(old, uri)  # two concepts with one code: the first URI keeps it
    return found


def load_successors(engine: Engine) -> dict[str, str]:
    """Replaced URI -> successor URI over every loaded release; the newest stating release
    wins."""
    with engine.connect() as conn:
        rows = conn.execute(select(concept_successors.c.version, concept_successors.c.uri,
                                   concept_successors.c.successor_uri)).all()
    found: dict[str, str] = {}
    for _, uri, successor in sorted(rows, key=lambda r: version_key(r[0])):
        found[uri] = successor
    return found
