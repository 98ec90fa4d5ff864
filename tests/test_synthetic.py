"""The synthetic traffic speaks the shared vocabulary: its demo implementers and weights use
only the countries, sectors, languages and contexts that kpi.vocabulary defines."""

from __future__ import annotations

from kpi.synthetic import (
    CONTEXT_WEIGHTS,
    DEMO_IMPLEMENTERS,
    LABEL_SUFFIXES,
    PROPOSALS,
    UNKNOWN_CONCEPT,
)
from kpi.vocabulary import CONCEPT_URI, CONTEXTS, COUNTRIES, LANGUAGES, SECTORS


def test_synthetic_traffic_uses_the_vocabulary():
    # Every context gets some traffic, in the vocabulary's order (the seeded events depend on it).
    assert tuple(CONTEXT_WEIGHTS) == CONTEXTS
    for profile in DEMO_IMPLEMENTERS:
        assert profile.country in COUNTRIES
        assert profile.sector in SECTORS
        assert set(profile.languages) <= set(LANGUAGES)
    assert set(LABEL_SUFFIXES) <= set(LANGUAGES) and set(PROPOSALS) <= set(LANGUAGES)
    # Well-formed, so that it is quarantined as unknown rather than rejected.
    assert CONCEPT_URI.fullmatch(UNKNOWN_CONCEPT)
