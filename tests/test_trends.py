"""concept_trends: the statistics checked against values computed here independently (exact
binomial sums, Benjamini-Hochberg by hand), on a small store with known trends,
a one-portal surge, labels ESCO already has and the global filters."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date

import numpy as np
import pytest

from kpi.warehouse.indicators import Period, query
from kpi.warehouse.statistics import fold_change_p_values
from tests.kpi_fixtures import O1, O2, S1, S2, S3, S4, standard_store

Q3 = Period.quarter("2026-Q3")
PREVIOUS, CURRENT = "2026-05-15", "2026-08-15"  # a day in Q2 and in Q3


def pmf(n: int, q: float) -> list[float]:
    """Binomial probabilities of 0..n (through log-gamma, so that large n do not overflow)."""
    return [math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                     + i * math.log(q) + (n - i) * math.log1p(-q)) for i in range(n + 1)]


def exact_two_sided(k: int, n: int, q_up: float, q_down: float) -> float:
    """P(X >= k) at q_up or P(X <= k) at q_down, the smaller doubled: sums of exact terms."""
    return min(1.0, 2 * min(sum(pmf(n, q_up)[k:]), sum(pmf(n, q_down)[:k + 1])))


def fold_test(before: int, after: int, volume_before: int, volume_after: int) -> float:
    """The p-value of "the share changed less than 1.25-fold", computed here."""
    q_up = 1.25 * volume_after / (volume_before + 1.25 * volume_after)
    q_down = volume_after / (1.25 * volume_before + volume_after)
    return exact_two_sided(after, before + after, q_up, q_down)


def benjamini_hochberg(p_values: dict[str, float]) -> dict[str, float]:
    order = sorted(p_values, key=lambda item: p_values[item])
    m = len(order)
    adjusted, running = {}, 1.0
    for rank in range(m, 0, -1):
        item = order[rank - 1]
        running = min(running, p_values[item] * m / rank)
        adjusted[item] = running
    return adjusted


@pytest.mark.parametrize("k, n, q_up, q_down", [
    (0, 10, 0.5, 0.5), (18, 20, 0.5, 0.5), (3, 40, 0.3, 0.3), (15, 15, 0.573, 0.573),
    (7, 9, 0.9, 0.9), (50, 120, 0.41, 0.41), (0, 0, 0.5, 0.5),  # the plain two-sided test
    (18, 20, 0.6, 0.4), (2, 20, 0.6, 0.4), (10, 20, 0.6, 0.4), (60, 70, 0.75, 0.57),
])
def test_fold_change_p_values_match_exact_sums(k, n, q_up, q_down):
    got = fold_change_p_values(np.array([k]), np.array([n]), np.array([q_up]),
                               np.array([q_down]))[0]
    expected = 1.0 if n == 0 else exact_two_sided(k, n, q_up, q_down)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_fold_change_p_values_of_every_k_match_exact_sums():
    """Every k of small n, at rates whose means fall on whole numbers too: between the two
    means the p-value is 1 without its tails being computed (each tail holds the median), and
    elsewhere, the edges included, the exact sums."""
    rates = [(0.5, 0.5), (0.25, 0.2), (0.6, 0.4), (0.75, 0.5), (0.3, 0.1), (0.9, 0.05)]
    ks, ns, ups, downs = [], [], [], []
    for n in (1, 2, 3, 4, 5, 7, 8, 10, 12, 20, 40):
        for q_up, q_down in rates:
            for k in range(n + 1):
                ks.append(k), ns.append(n), ups.append(q_up), downs.append(q_down)
    got = fold_change_p_values(np.array(ks), np.array(ns), np.array(ups), np.array(downs))
    ones = 0
    for value, k, n, q_up, q_down in zip(got, ks, ns, ups, downs, strict=True):
        expected = exact_two_sided(k, n, q_up, q_down)
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-15), (k, n, q_up, q_down)
        ones += n * q_down < k < n * q_up
    assert ones > 100  # many a k between the means


# Each item: {implementer: (events in Q2, events in Q3)}. Kinds: ("concept", uri),
# ("label", uri, language, label), ("proposal", label).
ITEMS: dict[tuple, dict[int, tuple[int, int]]] = {
    ("concept", O1): {1: (10, 45), 2: (10, 45), 3: (10, 45)},  # rises, three portals
    ("concept", S1): {1: (25, 25), 2: (25, 25), 3: (25, 25), 4: (25, 25)},  # steady
    ("concept", S2): {1: (20, 2), 2: (20, 2), 3: (20, 2)},  # falls
    ("concept", S3): {1: (3, 40), 2: (3, 3), 3: (3, 3)},  # one portal's surge
    ("concept", S4): {1: (0, 10), 2: (0, 10), 3: (0, 10)},  # new: emerging
    ("concept", O2): {1: (2, 3)},  # too few to test
    ("label", O1, "de", "Softwareentwicklerin"): {1: (0, 15), 2: (0, 15), 3: (0, 15)},
    ("label", O1, "de", "Entwickler"): {1: (10, 10), 2: (10, 10)},
    ("label", O1, "de", "PROGRAMMIERER"): {1: (0, 30), 2: (0, 30), 3: (0, 30)},  # ESCO has it
    ("proposal", "prompt engineering"): {1: (2, 10), 2: (0, 10), 3: (0, 10), 4: (0, 10)},
    ("proposal", "AI literacy"): {1: (30, 30), 2: (30, 30), 3: (30, 30)},
}


def seed(store) -> None:
    store.implementer(4, "ES", "pes")
    rows = []
    for item, by_implementer in ITEMS.items():
        for implementer, counts in by_implementer.items():
            for day, n in zip((PREVIOUS, CURRENT), counts, strict=True):
                base = {"implementer_id": implementer, "day": day, "esco_version": "1.10.0"}
                if item[0] == "concept":
                    base.update(concept_uri=item[1])
                elif item[0] == "label":
                    base.update(type="label_added", concept_uri=item[1], language=item[2],
                                label=item[3])
                else:
                    base.update(type="concept_proposed", concept_uri=None, label=item[1],
                                concept_type="skill")
                rows += [dict(base)] * n
    store.events(*rows)
    store.aggregate()


def expected_tests() -> tuple[dict[tuple, float], dict[tuple, float]]:
    """p-values and adjusted p-values of every tested item, computed from ITEMS."""
    volume: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    totals: dict[tuple, list[int]] = {}
    for item, by_implementer in ITEMS.items():
        if item[-1] == "PROGRAMMIERER":  # a label ESCO already has is no candidate
            continue
        before = sum(c[0] for c in by_implementer.values())
        after = sum(c[1] for c in by_implementer.values())
        totals[item] = [before, after]
        volume[item[0]][0] += before
        volume[item[0]][1] += after
    p_values = {}
    for item, (before, after) in totals.items():
        if before + after >= 10:
            p_values[item] = fold_test(before, after, *volume[item[0]])
    return p_values, benjamini_hochberg(p_values)


@pytest.fixture
def store(tmp_path):
    store = standard_store(tmp_path)
    seed(store)
    yield store
    store.engine.dispose()


def key(row: dict) -> tuple:
    if row["kind"] == "concept":
        return ("concept", row["concept_uri"])
    if row["kind"] == "label":
        return ("label", row["concept_uri"], row["language"], row["label"])
    return ("proposal", row["label"])


def test_trends_match_independent_statistics(store):
    result = query(store.settings, "concept_trends", Q3)
    p_values, adjusted = expected_tests()
    found = {key(row): row for row in result.rows}
    assert {k: row["trend"] for k, row in found.items()} == {
        ("concept", O1): "rising",
        ("concept", S2): "falling",
        ("concept", S4): "emerging",
        ("label", O1, "de", "Softwareentwicklerin"): "emerging",
        ("proposal", "prompt engineering"): "rising",
    }
    for item, row in found.items():
        assert row["p_value"] == pytest.approx(p_values[item], rel=1e-9), item
        assert row["p_adjusted"] == pytest.approx(adjusted[item], rel=1e-9), item
        assert row["tested"] == len(p_values) == 9
    o1 = found[("concept", O1)]
    assert (o1["previous_events"], o1["current_events"]) == (30, 135)
    assert (o1["previous_implementers"], o1["current_implementers"]) == (3, 3)
    assert o1["label"] == o1["label_en"] == "software developer"
    assert o1["concept_type"] == "occupation"
    # shares: 30 of 201 concept events before, 135 of 320 now (untested O2 counts in the volume)
    assert o1["share_ratio"] == pytest.approx(round((135 / 320) / (30 / 201), 3))
    assert found[("concept", S4)]["share_ratio"] is None
    proposal = found[("proposal", "prompt engineering")]
    assert (proposal["concept_type"], proposal["language"], proposal["label_norm"]) == (
        "skill", "en", "prompt engineering")
    # rising first, then falling
    assert [row["trend"] for row in result.rows][-1] == "falling"


def test_one_portals_surge_is_significant_but_not_a_trend(store):
    p_values, adjusted = expected_tests()
    surge = ("concept", S3)
    assert adjusted[surge] <= 0.05  # the test alone would flag it
    rows = query(store.settings, "concept_trends", Q3).rows
    assert surge not in {key(row) for row in rows}


def test_trends_need_enough_implementers_and_follow_the_filters(store):
    # Implementer 2 is the only one in France: nothing it carries alone is a trend
    assert query(store.settings, "concept_trends", Q3, country="FR").rows == []
    german = query(store.settings, "concept_trends", Q3, country="DE").rows
    assert german == []  # two German implementers: below the three a trend needs
    skills = query(store.settings, "concept_trends", Q3, concept_type="skill").rows
    assert {key(row) for row in skills} >= {("concept", S2), ("concept", S4)}
    assert ("concept", O1) not in {key(row) for row in skills}
    assert query(store.settings, "concept_trends", Q3, language="fr").rows == []


def test_the_implementer_threshold_comes_from_the_config(tmp_path):
    store = standard_store(tmp_path)
    store.settings = store.settings.replace(privacy__export_min_implementers=4)
    seed(store)
    rows = query(store.settings, "concept_trends", Q3).rows
    # only the proposal was carried by four implementers
    assert [key(row) for row in rows] == [("proposal", "prompt engineering")]
    store.engine.dispose()


def test_a_stationary_stream_flags_nothing(store):
    """Two periods drawn from the same shares, volume doubled: nothing rises or falls."""
    rng = np.random.default_rng(7)
    shares = 1 / np.arange(1, 6) ** 1.1
    shares /= shares.sum()
    counts = Counter()
    for period, volume in ((PREVIOUS, 400), (CURRENT, 800)):
        for implementer in (1, 2, 3):
            for concept in rng.choice(5, size=volume // 3, p=shares):
                counts[(period, implementer, concept)] += 1
    uris = (O1, S1, S2, S3, S4)
    fresh = standard_store(store.settings.base_dir / "stationary")
    fresh.events(*[{"implementer_id": implementer, "day": day, "concept_uri": uris[concept],
                    "esco_version": "1.10.0"}
                   for (day, implementer, concept), n in counts.items() for _ in range(n)])
    fresh.aggregate()
    assert query(fresh.settings, "concept_trends", Q3).rows == []
    fresh.engine.dispose()


def test_quarterly_export_of_trends(store, tmp_path):
    from kpi.exports.quarterly import export_quarter

    export_quarter(store.settings, "2026-Q3", tmp_path / "out")
    text = (tmp_path / "out" / "2026-Q3" / "concept_trends.csv").read_text(encoding="utf-8")
    assert text == (
        "kind,trend,concept_uri,label_en,concept_type,language,label,previous_events,"
        "current_events,previous_usage,current_usage,share_ratio,p_value,p_adjusted,"
        "previous_implementers,current_implementers\n"
        # counts below 5 are hidden, and so is everything worked from them
        "proposal,rising,,,skill,en,prompt engineering,<5,40,<5,40,,,,<3,4\n"
        "concept,emerging,http://data.europa.eu/esco/skill/s4,use spreadsheets,skill,,"
        "use spreadsheets,0,30,0,30,,9.92e-06,2.98e-05,0,3\n"
        "concept,rising,http://data.europa.eu/esco/occupation/o1,software developer,occupation,,"
        "software developer,30,135,30,135,2.827,1.92e-05,4.32e-05,3,3\n"
        "label,emerging,http://data.europa.eu/esco/occupation/o1,software developer,occupation,"
        "de,Softwareentwicklerin,0,45,0,45,,0.0001,0.00018,0,3\n"
        "concept,falling,http://data.europa.eu/esco/skill/s2,manage budgets,skill,,"
        "manage budgets,60,6,60,6,0.063,2.4e-15,2.16e-14,3,3\n"
    )


def test_one_portals_growth_with_its_own_taste_is_not_a_trend(tmp_path):
    """A portal that uses O1 much more than the others grows tenfold: O1's share of all use
    rises twofold and S1's falls, significantly, but without that portal nothing changed."""
    store = standard_store(tmp_path)
    store.implementer(4, "ES", "pes")
    counts = {(1, O1): (60, 600), (1, S1): (20, 200)}
    for implementer in (2, 3, 4):
        counts[(implementer, O1)] = (5, 5)
        counts[(implementer, S1)] = (50, 50)
    store.events(*[{"implementer_id": implementer, "day": day, "concept_uri": uri,
                    "esco_version": "1.10.0"}
                   for (implementer, uri), pair in counts.items()
                   for day, n in zip((PREVIOUS, CURRENT), pair, strict=True) for _ in range(n)])
    store.aggregate()
    # both are discoveries: Benjamini-Hochberg over the two accepts p-values up to 0.025
    assert fold_test(75, 615, 245, 965) < 0.025 and fold_test(170, 350, 245, 965) < 0.025
    assert query(store.settings, "concept_trends", Q3).rows == []
    store.engine.dispose()


def test_a_significant_change_under_one_and_a_half_fold_is_no_trend(tmp_path):
    store = standard_store(tmp_path)
    store.implementer(4, "ES", "pes")
    counts = {}
    for implementer in (1, 2, 3, 4):
        counts[(implementer, S1)] = (1000, 1000)
        counts[(implementer, S3)] = (200, 320)
    store.events(*[{"implementer_id": implementer, "day": day, "concept_uri": uri,
                    "esco_version": "1.10.0"}
                   for (implementer, uri), pair in counts.items()
                   for day, n in zip((PREVIOUS, CURRENT), pair, strict=True) for _ in range(n)])
    store.aggregate()
    # S3's share rose 1.45-fold (800 of 4,800 events, then 1,280 of 5,280): significant beyond
    # 1.25-fold (Benjamini-Hochberg over the two items doubles the p-value at most)...
    assert 2 * fold_test(800, 1280, 4800, 5280) < 0.05
    # ...but less than the 1.5-fold a trend needs
    assert query(store.settings, "concept_trends", Q3).rows == []
    store.engine.dispose()


def test_a_label_trend_shows_its_most_used_spelling_within_the_periods(tmp_path):
    """September against 2-31 August, which is read as August's sums less 1 August: a spelling
    sent only on 1 August, however often, is no spelling of the periods."""
    store = standard_store(tmp_path)
    september = Period.month("2026-09")
    assert september.previous() == Period(date(2026, 8, 2), date(2026, 8, 31))
    rows = []
    for implementer in (1, 2, 3):
        base = {"implementer_id": implementer, "type": "label_added", "concept_uri": O1,
                "language": "de", "esco_version": "1.10.0"}
        rows += [{**base, "day": "2026-08-01", "label": "SOFTWAREENTWICKLERIN"}] * 40
        rows += [{**base, "day": "2026-09-10", "label": "Softwareentwicklerin"}] * 15
        rows += [{**base, "day": "2026-09-11", "label": "softwareentwicklerin"}] * 5
        # a steady label: the volume the new one's share is taken of
        rows += [{**base, "day": day, "label": "Entwickler"} for day in (
            "2026-08-01", "2026-08-20", "2026-09-20")] * 10
    store.events(*rows)
    store.aggregate()
    found = {(r["kind"], r["label_norm"]): r
             for r in query(store.settings, "concept_trends", september).rows}
    label = found[("label", "softwareentwicklerin")]
    assert (label["trend"], label["label"]) == ("emerging", "Softwareentwicklerin")
    assert (label["previous_events"], label["current_events"]) == (0, 60)
    store.engine.dispose()
