"""The synthetic traffic speaks the shared vocabulary: its demo implementers and weights use
only the countries, sectors, languages and contexts that kpi.vocabulary defines."""

from __future__ import annotations

import pytest

from kpi.synthetic import (
    CONTEXT_WEIGHTS,
    DEMO_IMPLEMENTERS,
    FEEDBACK_COMMENTS,
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
    assert set(FEEDBACK_COMMENTS) <= set(LANGUAGES) and set(PROPOSALS) <= set(LANGUAGES)
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


def test_demo_free_text_is_real_wording(sqlite_template, tmp_path):
    """The demo's labels are real ESCO wordings: those it sends as new are not among the
    concept's labels in that language in the bundled catalogue, the rest (a form of a gendered
    label, a label written otherwise) are; translation feedback is a real label too."""
    import shutil
    from datetime import date

    from kpi.catalogue.labels import gendered_forms, normalise_label
    from kpi.settings import Settings
    from kpi.store.db import make_engine
    from kpi.synthetic import DemoWordings, TrafficGenerator

    shutil.copy(sqlite_template, tmp_path / "ingest.sqlite3")
    engine = make_engine(Settings({"storage.data_dir": str(tmp_path)}))
    generator = TrafficGenerator.from_catalogue(engine, date(2026, 6, 1), date(2026, 11, 29))
    wordings = DemoWordings.bundled()
    assert {len(wordings.labels[lang]) for lang in ("en", "de", "fr")} == {124, 427, 661}
    real = {(w.uri, w.language, normalise_label(w.label))
            for pool in wordings.labels.values() for w in pool}

    def catalogue_norms(uri: str, language: str) -> set[str]:
        norms = set()
        for label in generator.labels.get((uri, language), []):
            norms.add(normalise_label(label))
            norms.update(gendered_forms(label) or ())
        return norms

    sent = new = 0
    profile = next(p for p in DEMO_IMPLEMENTERS if p.name == "EU Skills Academy")
    for event in generator.events(3, profile, 40_000, bad_share=0):
        if event["type"] == "label_added":
            sent += 1
            key = (event["concept_uri"], event["language"], normalise_label(event["label"]))
            known = catalogue_norms(*key[:2])
            if key in real:
                new += 1
                assert key[2] not in known, event
            elif known:
                assert key[2] in known, event
        elif event["type"] == "translation_feedback":
            assert event["label"].strip() and event["comment"]
            assert "(neu)" not in event["label"]
    assert sent > 1000 and new > sent / 10
