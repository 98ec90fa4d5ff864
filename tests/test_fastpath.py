"""The fast loader gives exactly marshmallow's answer, or leaves the event to marshmallow."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from collector.fastpath import FastLoader
from collector.schemas import EventSchema
from kpi.synthetic import DEMO_IMPLEMENTERS, TrafficGenerator
from kpi.vocabulary import CONTEXTS, EVENT_CONCEPT_TYPES, EVENT_TYPES

TODAY = date(2026, 11, 25)
SCHEMA = EventSchema(today=TODAY, max_age_days=400)
FAST = FastLoader(TODAY, 400)

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "en", "EN-us", "pt_BR", "de", "xx", "2026-11-24", "2026-11-27",
                     "2025-10-01", "2026-11-24T23:30:00-05:00", "2026-11-24T10:00:00.123456789Z",
                     "1.2.0", "9.9.9", "1.2", "e-1", "e 1", "skill", "other", "job_vacancy",
                     "a@b.eu", "  Pflege  ", "x" * 201, "line\nbreak", "tab\there",
                     "http://data.europa.eu/esco/skill/abc",
                     "https://data.europa.eu/esco/occupation/abc/",
                     "http://data.europa.eu/esco/skill/abc\n",
                     "http://data.europa.eu/esco/foo/abc", *EVENT_TYPES, *CONTEXTS,
                     *EVENT_CONCEPT_TYPES]),
)
values = st.one_of(texts, st.integers(-3, 2_000_000), st.booleans(), st.none(), st.floats(),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                        st.integers(), max_size=2))
field_names = st.sampled_from(["event_id", "type", "occurred_at", "concept_uri", "esco_version",
                               "language", "context", "count", "label", "concept_type",
                               "comment", "extra"])
events = st.dictionaries(field_names, values, max_size=12)


def marshmallow(item):
    try:
        return SCHEMA.load(item)
    except ValidationError:
        return None


@settings(max_examples=3000, deadline=None)
@given(events)
def test_fast_loader_agrees_with_marshmallow(item):
    fast = FAST.load(item)
    if fast is not None:
        assert fast == marshmallow(item)


@given(st.builds(dict, event_id=st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
                 type=st.sampled_from(["concept_used"]), occurred_at=st.just("2026-11-24"),
                 concept_uri=st.just("http://data.europa.eu/esco/skill/abc"),
                 language=st.sampled_from(["en", "de-AT", "fr"]),
                 count=st.integers(1, 1_000_000)))
def test_plain_valid_events_take_the_fast_path(item):
    fast = FAST.load(item)
    assert fast is not None
    assert fast == marshmallow(item)


def test_normalisations_match():
    item = {"event_id": "n", "type": "label_added", "occurred_at": "2026-11-24T23:30:00-05:00",
            "concept_uri": "https://data.europa.eu/esco/occupation/abc/", "language": "EN-us",
            "label": "  Pflege  ", "concept_type": "skill"}
    fast = FAST.load(item)
    assert fast == marshmallow(item)
    assert fast == {"event_id": "n", "type": "label_added", "day": date(2026, 11, 25),
                    "concept_uri": "http://data.europa.eu/esco/occupation/abc",
                    "language": "en", "context": "other", "count": 1, "label": "Pflege"}


def test_synthetic_traffic_mostly_takes_the_fast_path():
    uris = [f"http://data.europa.eu/esco/skill/s{i}" for i in range(50)]
    labels = {(u, "de"): ["Datenbank"] for u in uris}
    generator = TrafficGenerator(uris, labels, date(2026, 6, 1), TODAY)
    items = list(generator.events(0, DEMO_IMPLEMENTERS[0], 2000))
    fast = [FAST.load(i) for i in items]
    slow = [marshmallow(i) for i in items]
    assert all(f == s for f, s in zip(fast, slow, strict=True) if f is not None)
    assert sum(f is not None for f in fast) >= 0.97 * len(items)
