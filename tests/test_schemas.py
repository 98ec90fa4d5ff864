"""Property tests of collector.schemas.EventSchema: it returns a row or a ValidationError."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from collector.schemas import EventSchema
from kpi.vocabulary import CONTEXTS, EVENT_CONCEPT_TYPES, EVENT_TYPES, LANGUAGES

TODAY = datetime.now(UTC).date()
FIELDS = ("event_id", "type", "occurred_at", "concept_uri", "esco_version", "language",
          "context", "count", "label", "concept_type", "comment")
ROW_KEYS = {"event_id", "type", "day", "concept_uri", "esco_version", "language", "context",
            "count", "label", "concept_type", "comment"}
FAST = settings(max_examples=400, deadline=None, database=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)
# Plausible values, so that generated dicts get past the type checks into the deeper rules.
# Years stay inside 1000-8999: the edges of the calendar are test_calendar_edges below.
timestamps = st.builds(
    lambda d, h, m, frac, tz: f"{d}T{h:02}:{m:02}:00{frac}{tz}",
    st.dates(min_value=date(1000, 1, 1), max_value=date(8999, 12, 31)),
    st.integers(0, 23), st.integers(0, 59),
    st.sampled_from(["", ".5", ".123456789", ".1234567891"]),
    st.sampled_from(["Z", "z", "+00:00", "-05:00", "+14:00", "+24:00", "-12:30", ""]),
)
plausible = {
    "event_id": st.from_regex(r"[A-Za-z0-9._:-]{0,66}", fullmatch=True),
    "type": st.sampled_from(EVENT_TYPES),
    "occurred_at": timestamps | st.dates(min_value=TODAY - timedelta(days=500),
                                         max_value=TODAY + timedelta(days=3)).map(str),
    "concept_uri": st.from_regex(
        r"https?://data\.europa\.eu/esco/(skill|occupation|isco|qualification|foo)/"
        r"[A-Za-z0-9._-]{0,101}/?", fullmatch=True),
    "esco_version": st.from_regex(r"\d{1,4}\.\d{1,3}(\.\d{1,3})?", fullmatch=True),
    "language": st.sampled_from(LANGUAGES + ("zh", "EN-us", "pt_BR", "", "-")),
    "context": st.sampled_from(CONTEXTS + ("web",)),
    "count": st.integers(-2, 2_000_000),
    "label": st.text(max_size=210),
    "concept_type": st.sampled_from(EVENT_CONCEPT_TYPES + ("isco",)),
    "comment": st.text(max_size=1010),
}
any_event = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=10),
    json_values, max_size=12,
).flatmap(lambda base: st.fixed_dictionaries(
    {}, optional={name: plausible[name] | json_values for name in FIELDS}
).map(lambda extra: {**base, **extra}))

safe_text = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzäöüßéçñ ABCXYZ-&'"),
                    min_size=1, max_size=150).filter(lambda t: t.strip())
padding = st.text(" \t\u00a0\u2003", max_size=5)


@st.composite
def valid_events(draw) -> dict:
    kind = draw(st.sampled_from(EVENT_TYPES))
    day = draw(st.dates(min_value=TODAY - timedelta(days=398), max_value=TODAY - timedelta(1)))
    item = {
        "event_id": draw(st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)),
        "type": kind,
        "occurred_at": draw(st.sampled_from([day.isoformat(), f"{day}T12:00:00Z",
                                             f"{day}T12:00:00.123456789+11:00",
                                             f"{day}t01:00:00-09:30"])),
        "language": draw(st.sampled_from(LANGUAGES).flatmap(
            lambda lang: st.sampled_from([lang, lang.upper(), f"{lang}-XX", f"{lang}_yy"]))),
    }
    if kind != "concept_proposed" or draw(st.booleans()):
        kind_path = draw(st.sampled_from(["skill", "occupation", "isco", "qualification"]))
        concept_id = draw(st.from_regex(r"[A-Za-z0-9._-]{1,100}", fullmatch=True))
        scheme = draw(st.sampled_from(["http", "https"]))
        slash = draw(st.sampled_from(["", "/"]))
        item["concept_uri"] = f"{scheme}://data.europa.eu/esco/{kind_path}/{concept_id}{slash}"
    if kind != "concept_used":
        item["label"] = draw(padding) + draw(safe_text) + draw(padding)
    if kind == "concept_proposed":
        item["concept_type"] = draw(st.sampled_from(EVENT_CONCEPT_TYPES))
    if kind in ("concept_proposed", "translation_feedback") and draw(st.booleans()):
        item["comment"] = draw(safe_text) + "\n" + draw(safe_text)
    for name, strategy in (("context", st.sampled_from(CONTEXTS)),
                           ("count", st.integers(1, 1_000_000)),
                           ("esco_version", st.sampled_from(["1.1.1", "1.2.0", "1.2"]))):
        if draw(st.booleans()):
            item[name] = draw(strategy)
    return item


@given(any_event)
@FAST
def test_load_returns_a_row_or_a_validation_error(item):
    try:
        row = EventSchema(today=TODAY).load(item)
    except ValidationError as exc:
        assert isinstance(exc.messages, dict)
        return
    assert set(row) <= ROW_KEYS
    assert isinstance(row["day"], date)
    assert TODAY - timedelta(days=400) <= row["day"] <= TODAY + timedelta(days=1)
    if "label" in item and isinstance(item["label"], str):
        assert row.get("label") == item["label"].strip()


@given(valid_events())
@FAST
def test_valid_events_load_with_known_keys_only(item):
    row = EventSchema(today=TODAY).load(item)
    assert set(row) <= ROW_KEYS
    assert {"event_id", "type", "day", "language", "context", "count"} <= set(row)
    assert row["language"] in LANGUAGES
    assert row["day"] < TODAY
    if "concept_uri" in item:
        assert row["concept_uri"].startswith("http://data.europa.eu/esco/")
        assert not row["concept_uri"].endswith("/")
    if "label" in item:
        assert row["label"] == item["label"].strip()
    if "comment" in item:
        assert row["comment"] == item["comment"]
    if item["type"] != "concept_proposed":
        assert "concept_type" not in row


@given(valid_events(), st.text(min_size=1, max_size=20), json_values)
@FAST
def test_an_unknown_field_rejects_the_event(item, name, value):
    if name in FIELDS:
        return
    with pytest.raises(ValidationError) as info:
        EventSchema(today=TODAY).load({**item, name: value})
    assert info.value.messages == {name: ["Unknown field."]}


@pytest.mark.parametrize("value", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_calendar_edges_are_validation_errors(value):
    item = {"event_id": "e", "type": "concept_used", "occurred_at": value, "language": "en",
            "concept_uri": "http://data.europa.eu/esco/skill/x"}
    with pytest.raises(ValidationError):
        EventSchema(today=TODAY).load(item)
