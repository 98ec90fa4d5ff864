"""The synthetic traffic speaks the shared vocabulary: its demo implementers and weights use
only the countries, sectors, languages and contexts that kpi.vocabulary defines."""

from __future__ import annotations

import pytest

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


def test_planted_trends_follow_their_schedule():
    from collections import Counter
    from datetime import date

    from kpi.synthetic import DEMO_TRENDS, TrafficGenerator

    riser, fader = (p.uri for p in DEMO_TRENDS.concepts)
    uris = [f"http://data.europa.eu/esco/skill/s{i}" for i in range(20_000)] + [riser, fader]
    start, end = date(2026, 6, 1), date(2026, 11, 29)
    planted = TrafficGenerator(uris, {}, start, end, seed=3, planted=DEMO_TRENDS)
    plain = TrafficGenerator(uris, {}, start, end, seed=3)
    adopter = next(p for p in DEMO_IMPLEMENTERS if p.name == "Jobbörse Nord")
    never = next(p for p in DEMO_IMPLEMENTERS if p.name == "Praca Demo")

    def shares(events: list[dict]) -> dict[str, Counter]:
        """Counts in the first and the last 30 days."""
        out: dict[str, Counter] = {"early": Counter(), "late": Counter(), "between": Counter()}
        for e in events:
            month = "early" if e["occurred_at"] < "2026-07-01" else (
                "late" if e["occurred_at"] >= "2026-10-31" else "between")
            out[month][e.get("concept_uri") or e["label"]] += 1
            out[month]["all"] += 1
        return out

    seen = shares(list(planted.events(0, adopter, 60_000)))
    early, late = seen["early"], seen["late"]
    assert late[riser] / late["all"] > 4 * early[riser] / early["all"]
    assert late[fader] / late["all"] < early[fader] / early["all"] / 2
    # the proposal: this portal adopts it late in the period, Praca Demo never
    assert early["green hydrogen systems"] == 0 < late["green hydrogen systems"]
    assert not any(e.get("label") == "green hydrogen systems"
                   for e in planted.events(8, never, 20_000))
    # without planted trends the traffic is as it always was
    assert list(plain.events(8, never, 2_000)) == list(
        TrafficGenerator(uris, {}, start, end, seed=3).events(8, never, 2_000))
    with pytest.raises(ValueError, match="planted concepts not in the catalogue"):
        TrafficGenerator(uris[:10], {}, start, end, planted=DEMO_TRENDS)
