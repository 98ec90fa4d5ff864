"""The bad-input corpus (docs/RELIABILITY.md): every case over HTTP against a real server.

Each case is one row of a table: the body bytes, extra headers, the status the contract (the
ingestion API that README.md documents) prescribes and what the answer must say. After every
case the server must still answer /v1/health, and the store must hold exactly the rows the
case should have added (none for every case that is refused). Labels that merely look
dangerous (HTML, SQL, formulas, right-to-left text, combining characters) are data: accepted
and stored byte-for-byte.

One server per backend serves the whole module (starting one takes seconds): each test sends
as an implementer of its own and counts what the store gains while it runs.
"""

from __future__ import annotations

import gzip
import importlib
import json
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy import func, select

from kpi.store.db import events
from tests.conftest import Portal, Server, SharedServer, shared_server
from tests.helpers import SKILL, event

MB = 1 << 20
TODAY = datetime.now(UTC).date()
D = {n: (TODAY + timedelta(days=n)).isoformat() for n in (-400, -401, -1, 0, 1, 2)}
SKILL_ID = SKILL.rsplit("/", 1)[1]


def dumps(value: Any) -> bytes:
    """JSON bytes; the standard library writes the integers orjson refuses (2**70)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False).encode()


def body(*items: Any) -> bytes:
    return dumps({"events": list(items)})


def raw(*parts: bytes) -> bytes:
    """A JSON body assembled from raw bytes, for what orjson would never write."""
    return b'{"events": [' + b"".join(parts) + b"]}"


def ndjson(*lines: bytes, sep: bytes = b"\n") -> bytes:
    return sep.join(lines) + sep


def line(event_id: str, **fields: Any) -> bytes:
    return orjson.dumps(event(event_id, **fields))


def labelled(event_id: str, label: str, **fields: Any) -> dict:
    return event(event_id, type="label_added", label=label, **fields)


def gzip_bomb(inflated_mb: int = 1024) -> bytes:
    """A valid gzip member of `{"events": [` + `inflated_mb` MiB of spaces, about 1 KB per MiB.

    Built from independent deflate blocks (full flush) repeated, so it costs a CRC pass,
    not a compression pass, over the inflated size.
    """
    prefix, spaces = b'{"events": [', b" " * MB

    def block(data: bytes) -> bytes:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        return deflater.compress(data) + deflater.flush(zlib.Z_FULL_FLUSH)

    crc = zlib.crc32(prefix + spaces)
    for _ in range(inflated_mb - 1):
        crc = zlib.crc32(spaces, crc)
    size = len(prefix) + inflated_mb * MB
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + block(prefix + spaces)
            + block(spaces) * (inflated_mb - 1) + b"\x03\x00"
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


@dataclass
class Case:
    """One bad (or tricky) input and what the contract says about it.

    `error`: a substring of `{"error": ...}`. `summary`: (accepted, duplicates, quarantined,
    rejected) of the outcome summary. `reasons`: index -> (field, substring of its first
    reason). `rows`: event_id -> columns the stored row must have, read back from the store.
    Rows stored = accepted + quarantined of `summary`; every other case stores nothing.
    """

    name: str
    body: bytes
    status: int
    error: str | None = None
    summary: tuple[int, int, int, int] | None = None
    reasons: dict[int, tuple[str, str]] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    auth: str | None = "key"  # "key": a valid bearer key; None: no header; else the header

    @property
    def stores(self) -> int:
        return self.summary[0] + self.summary[2] if self.summary else 0


def rejected(name: str, item: Any, field_name: str, reason: str, **kw: Any) -> Case:
    """A single event that must be rejected: 400 with the summary naming the field."""
    return Case(name, body(item), 400, summary=(0, 0, 0, 1), reasons={0: (field_name, reason)},
                **kw)


def accepted(name: str, item: dict, row: dict[str, Any] | None = None, **kw: Any) -> Case:
    """A single event that must be accepted (and, with `row`, stored with those columns)."""
    return Case(name, body(item), 202, summary=(1, 0, 0, 0),
                rows={item["event_id"]: row} if row else {}, **kw)


NOT_JSON = "not valid JSON"
NOT_UTF8 = "not valid UTF-8"
SHAPE = 'must be a JSON object {"events"'
NOT_LIST = '"events" must be a list'
NOT_OBJECT = "Each event must be a JSON object"
NOT_STR = "Not a valid string"
NOT_INT = "Not a valid integer"
NULL = "may not be null"
BAD_URI = "Not an ESCO concept URI"
TOO_LATE = "Must not be more than 1 day after today"
DEEP = 10_000

ODD_LABELS = {
    "html": "<script>alert(1)</script>",
    "html-attr": '<img src=x onerror="alert(1)">',
    "sql": "'); drop table events; --",
    "sql-quote": "Robert'); DROP TABLE students;--",
    "formula": '=HYPERLINK("#Sheet2!A1","click me")',
    "formula-plus": "+cmd|' /C calc'!A0",
    "formula-at": "@SUM(A1:A9)",
    "rtl-arabic": "مهارات التواصل",
    "rtl-hebrew": "ניהול פרויקטים",
    "rtl-override": "\u202edegats\u202c skill",
    "combining-nfd": "e\u0301cole maternelle",
    "combining-zalgo": "Z\u0324\u0354\u0367\u0311a\u0308\u0356\u032dl\u036e\u0312g\u030co",
    "emoji": "teamwork \U0001f91d",
    "backslashes": "C:\\temp\\x and \\u0000 as text",
    "quotes": "\"quoted\" 'single' `back`",
}

CASES: list[Case] = [
    # -- bodies that are not JSON, or not of the contract's shape ---------------------------
    Case("malformed-json", b'{"events": [', 400, error=NOT_JSON),
    Case("trailing-garbage", body(event("tg")) + b" x", 400, error=NOT_JSON),
    Case("empty-body", b"", 400, error=NOT_JSON),
    Case("whitespace-body", b"  \n ", 400, error=NOT_JSON),
    Case("single-quotes", b"{'events': []}", 400, error=NOT_JSON),
    Case("top-list", orjson.dumps([event("tl")]), 400, error=SHAPE),
    Case("top-string", b'"events"', 400, error=SHAPE),
    Case("top-number", b"42", 400, error=SHAPE),
    Case("top-null", b"null", 400, error=SHAPE),
    Case("top-true", b"true", 400, error=SHAPE),
    Case("top-empty-object", b"{}", 400, error=SHAPE),
    Case("top-extra-field", orjson.dumps({"events": [event("te")], "implementer": 2}), 400,
         error="unknown top-level field: implementer"),
    Case("events-object", b'{"events": {"event_id": "x"}}', 400, error=NOT_LIST),
    Case("events-string", b'{"events": "x"}', 400, error=NOT_LIST),
    Case("events-null", b'{"events": null}', 400, error=NOT_LIST),
    Case("events-number", b'{"events": 3}', 400, error=NOT_LIST),
    Case("events-empty", b'{"events": []}', 400, error="no events"),
    Case("event-number", body(1), 400, summary=(0, 0, 0, 1), reasons={0: ("_schema", NOT_OBJECT)}),
    Case("event-string", body("e"), 400, summary=(0, 0, 0, 1),
         reasons={0: ("_schema", NOT_OBJECT)}),
    Case("event-null", body(None), 400, summary=(0, 0, 0, 1),
         reasons={0: ("_schema", NOT_OBJECT)}),
    Case("event-list", body([event("el")]), 400, summary=(0, 0, 0, 1),
         reasons={0: ("_schema", NOT_OBJECT)}),
    Case("event-bad-and-good", body(True, event("bg-1")), 202, summary=(1, 0, 0, 1),
         reasons={0: ("_schema", NOT_OBJECT)}),
    # -- wrong field types --------------------------------------------------------------------
    rejected("event_id-number", event(123), "event_id", NOT_STR),
    rejected("event_id-null", {**event("x"), "event_id": None}, "event_id", NULL),
    rejected("event_id-list", {**event("x"), "event_id": ["a"]}, "event_id", NOT_STR),
    rejected("type-object", event("wt-1", type={"a": 1}), "type", NOT_STR),
    rejected("occurred_at-number", event("wt-2", occurred_at=20261125), "occurred_at",
             "Not a valid RFC 3339"),
    rejected("occurred_at-null", {**event("wt-3"), "occurred_at": None}, "occurred_at", NULL),
    rejected("concept_uri-list", event("wt-4", concept_uri=[SKILL]), "concept_uri", NOT_STR),
    rejected("language-number", event("wt-5", language=1), "language", NOT_STR),
    rejected("count-string", event("wt-6", count="5"), "count", NOT_INT),
    rejected("count-null", {**event("wt-7"), "count": None}, "count", NULL),
    rejected("count-list", event("wt-8", count=[1]), "count", NOT_INT),
    rejected("label-object", labelled("wt-9", {"text": "x"}), "label", NOT_STR),
    rejected("label-null", {**labelled("wt-10", "x"), "label": None}, "label", NULL),
    rejected("context-null", {**event("wt-11"), "context": None}, "context", NULL),
    rejected("esco_version-number", event("wt-12", esco_version=1.2), "esco_version", NOT_STR),
    rejected("unknown-field", event("wt-13", ip="10.0.0.1"), "ip", "Unknown field"),
    # -- huge numbers, NaN and Infinity ---------------------------------------------------------
    Case("count-1e400", raw(line("hn-1")[:-1] + b', "count": 1e400}'), 400, error=NOT_JSON),
    rejected("count-2**70", event("hn-2", count=2**70), "count", NOT_INT),
    rejected("count--1", event("hn-3", count=-1), "count", "greater than or equal to 1"),
    rejected("event_id-2**70", event(2**70), "event_id", NOT_STR),
    Case("count-NaN", raw(line("nan-1")[:-1] + b', "count": NaN}'), 400, error=NOT_JSON),
    Case("count-Infinity", raw(line("nan-2")[:-1] + b', "count": Infinity}'), 400,
         error=NOT_JSON),
    Case("count--Infinity", raw(line("nan-3")[:-1] + b', "count": -Infinity}'), 400,
         error=NOT_JSON),
    # -- deep nesting -------------------------------------------------------------------------
    Case("deep-arrays", b'{"events": ' + b"[" * DEEP + b"]" * DEEP + b"}", 400, error=NOT_JSON),
    Case("deep-objects-in-label", raw(line("dn-1")[:-1] + b', "label": '
                                      + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}"),
         400, error=NOT_JSON),
    # -- NUL bytes, invalid UTF-8, lone surrogates -------------------------------------------
    rejected("nul-escape-label", labelled("nul-1", "skill\u0000name"), "label",
             "Must not contain control characters"),
    rejected("nul-escape-comment", event("nul-2", type="translation_feedback", label="Pflege",
                                         comment="a\u0000b"), "comment", "control characters"),
    rejected("nul-escape-event_id", event("nul\u00003"), "event_id", "Must be 1 to 64"),
    rejected("c1-control-label", labelled("nul-4", "next\u0085line"), "label",
             "control characters"),
    Case("nul-raw-byte-label", raw(line("nul-5", type="label_added", label="skillXname")
                                   .replace(b"skillXname", b"skill\x00name")), 400,
         error=NOT_JSON),
    Case("invalid-utf8-label", raw(line("u8-1", type="label_added", label="caf\u00e9")
                                   .replace("caf\u00e9".encode(), b"caf\xe9")), 400,
         error=NOT_UTF8),
    Case("invalid-utf8-0xff", b'{"events": [\xff]}', 400, error=NOT_UTF8),
    Case("overlong-utf8", raw(b'{"event_id": "\xc0\xaf"}'), 400, error=NOT_UTF8),
    Case("utf8-encoded-surrogate", raw(b'{"event_id": "\xed\xa0\x80"}'), 400, error=NOT_UTF8),
    Case("utf8-bom", b"\xef\xbb\xbf" + body(event("bom")), 400),
    Case("lone-high-surrogate", raw(line("ls-1", type="label_added", label="X")
                                    .replace(b'"X"', b'"a\\ud800b"')), 400, error="not valid"),
    Case("lone-low-surrogate", raw(line("ls-2", type="label_added", label="X")
                                   .replace(b'"X"', b'"\\udc00"')), 400, error="not valid"),
    Case("surrogate-pair-escape", raw(line("ls-3", type="label_added", label="X")
                                      .replace(b'"X"', b'"ok \\ud83d\\ude00"')), 202,
         summary=(1, 0, 0, 0), rows={"ls-3": {"label": "ok \U0001f600"}}),
    # -- gzip (the bomb is timed in its own test) -----------------------------------------------
    Case("gzip-truncated", gzip.compress(body(event("gz-1")))[:-12], 400, error="gzip",
         headers={"Content-Encoding": "gzip"}),
    Case("gzip-trailer-missing", gzip.compress(body(event("gz-2")))[:-4], 400, error="gzip",
         headers={"Content-Encoding": "gzip"}),
    Case("gzip-garbage", b"\x1f\x8b\x08\x00garbage-garbage", 400, error="gzip",
         headers={"Content-Encoding": "gzip"}),
    Case("gzip-not-announced", gzip.compress(body(event("gz-3"))), 400, error=NOT_UTF8),
    Case("gzip-ok", gzip.compress(body(event("gz-4"))), 202, summary=(1, 0, 0, 0),
         headers={"Content-Encoding": "gzip"}),
    # -- NDJSON -------------------------------------------------------------------------------
    Case("ndjson-blank-lines", b"\n\n" + line("nd-1") + b"\n\n   \n\t\n" + line("nd-2") + b"\n\n",
         202, summary=(2, 0, 0, 0), content_type="application/x-ndjson"),
    Case("ndjson-crlf", ndjson(line("nd-3"), line("nd-4"), sep=b"\r\n"), 202,
         summary=(2, 0, 0, 0), content_type="application/x-ndjson"),
    Case("ndjson-broken-line", ndjson(line("nd-5"), b'{"event_id": "nd-6", "type":', line("nd-7")),
         202, summary=(2, 0, 0, 1), reasons={1: ("_line", "line 2: body is not valid JSON")},
         content_type="application/x-ndjson"),
    Case("ndjson-invalid-utf8-line", ndjson(line("nd-8"), b'{"event_id": "\xff"}'), 202,
         summary=(1, 0, 0, 1), reasons={1: ("_line", NOT_UTF8)},
         content_type="application/x-ndjson"),
    Case("ndjson-nan-line", ndjson(line("nd-9")[:-1] + b', "count": NaN}', line("nd-10")), 202,
         summary=(1, 0, 0, 1), reasons={0: ("_line", NOT_JSON)},
         content_type="application/x-ndjson"),
    Case("ndjson-array-line", ndjson(b"[1, 2]", line("nd-11")), 202, summary=(1, 0, 0, 1),
         reasons={0: ("_schema", NOT_OBJECT)}, content_type="application/x-ndjson"),
    Case("ndjson-deep-line", ndjson(b"[" * DEEP + b"]" * DEEP, line("nd-12")), 202,
         summary=(1, 0, 0, 1), reasons={0: ("_line", NOT_JSON)},
         content_type="application/x-ndjson"),
    Case("ndjson-only-blank", b"\n \n\r\n", 400, error="no events",
         content_type="application/x-ndjson"),
    Case("ndjson-all-broken", ndjson(b"{", b"}"), 400, summary=(0, 0, 0, 2),
         reasons={0: ("_line", "line 1"), 1: ("_line", "line 2")},
         content_type="application/x-ndjson"),
    # -- lengths ------------------------------------------------------------------------------
    rejected("label-300", labelled("len-1", "a" * 300), "label", "Length"),
    rejected("label-201", labelled("len-2", "a" * 201), "label", "Length"),
    accepted("label-200", labelled("len-3", "b" * 200), {"label": "b" * 200}),
    accepted("label-200-padded", labelled("len-4", "  " + "c" * 200 + "\t "), {"label": "c" * 200}),
    rejected("label-spaces", labelled("len-5", "     "), "label", "Length"),
    rejected("label-empty", labelled("len-6", ""), "label", "Length"),
    rejected("label-nbsp-tabs", labelled("len-7", "\u00a0\t\u2003 "), "label", "Length"),
    rejected("comment-1001", event("len-8", type="concept_proposed", concept_uri=None,
                                   concept_type="skill", label="x", comment="y" * 1001),
             "comment", "Length"),
    accepted("comment-line-breaks", event("len-9", type="concept_proposed", concept_uri=None,
                                          concept_type="skill", label="prompt design",
                                          comment="line one\nline two\r\nend"),
             {"comment": "line one\nline two\r\nend"}),
    # -- labels that look dangerous are data, stored byte-for-byte ----------------------------
    *[accepted(f"label-{name}", labelled(f"odd-{name}", text), {"label": text})
      for name, text in ODD_LABELS.items()],
    accepted("comment-html-sql", event("odd-comment", type="translation_feedback", label="ok",
                                       comment="<b>x</b>'; delete from events; --"),
             {"comment": "<b>x</b>'; delete from events; --"}),
    # -- duplicates in one request ----------------------------------------------------------
    Case("duplicate-in-request", body(event("dup-1"), event("dup-1")), 202, summary=(1, 1, 0, 0)),
    Case("duplicate-in-request-differs", body(event("dup-2"), event("dup-2", language="de")), 202,
         summary=(1, 1, 0, 0), rows={"dup-2": {"language": "en"}}),
    # -- occurred_at ------------------------------------------------------------------------
    accepted("occurred-tomorrow", event("oa-1", occurred_at=D[1]), {"day": D[1]}),
    rejected("occurred-in-2-days", event("oa-2", occurred_at=D[2]), "occurred_at", TOO_LATE),
    accepted("occurred-offset-next-utc-day", event("oa-3", occurred_at=f"{D[0]}T23:30:00-05:00"),
             {"day": D[1]}),
    rejected("occurred-offset-2-utc-days", event("oa-4", occurred_at=f"{D[1]}T23:30:00-05:00"),
             "occurred_at", TOO_LATE),
    accepted("occurred-offset-+14", event("oa-5", occurred_at=f"{D[0]}T00:30:00+14:00"),
             {"day": D[-1]}),
    accepted("occurred-offset-+14-tomorrow", event("oa-6", occurred_at=f"{D[1]}T09:59:00+14:00"),
             {"day": D[0]}),
    accepted("occurred-9-fraction-digits", event("oa-7", occurred_at=f"{D[0]}T10:30:00.123456789Z"),
             {"day": D[0]}),
    rejected("occurred-10-fraction-digits",
             event("oa-8", occurred_at=f"{D[0]}T10:30:00.1234567891Z"), "occurred_at",
             "Not a valid RFC 3339"),
    accepted("occurred-lower-t-z", event("oa-9", occurred_at=f"{D[0]}t10:30:00z"), {"day": D[0]}),
    accepted("occurred-space", event("oa-10", occurred_at=f"{D[0]} 10:30:00+02:00")),
    accepted("occurred-400-days", event("oa-11", occurred_at=D[-400]), {"day": D[-400]}),
    rejected("occurred-401-days", event("oa-12", occurred_at=D[-401]), "occurred_at",
             "older than 400 days"),
    rejected("occurred-no-offset", event("oa-13", occurred_at=f"{D[0]}T10:30:00"),
             "occurred_at", "Not a valid RFC 3339"),
    rejected("occurred-feb-30", event("oa-14", occurred_at="2026-02-30"), "occurred_at",
             "Not a valid RFC 3339"),
    rejected("occurred-offset-24h", event("oa-15", occurred_at=f"{D[0]}T10:30:00+24:00"),
             "occurred_at", "Not a valid RFC 3339"),
    # -- event_id -------------------------------------------------------------------------------
    accepted("event_id-64", event("i" * 64)),
    rejected("event_id-65", event("j" * 65), "event_id", "Must be 1 to 64"),
    rejected("event_id-empty", event(""), "event_id", "Must be 1 to 64"),
    rejected("event_id-space", event("a b"), "event_id", "Must be 1 to 64"),
    rejected("event_id-unicode", event("caf\u00e9"), "event_id", "Must be 1 to 64"),
    rejected("event_id-newline", event("id-1\n"), "event_id", "Must be 1 to 64"),
    # -- concept URIs --------------------------------------------------------------------------
    accepted("uri-https", event("cu-1", concept_uri=SKILL.replace("http:", "https:")),
             {"concept_uri": SKILL}),
    accepted("uri-trailing-slash", event("cu-2", concept_uri=SKILL + "/"), {"concept_uri": SKILL}),
    accepted("uri-https-slash", event("cu-3", concept_uri=SKILL.replace("http:", "https:") + "/"),
             {"concept_uri": SKILL}),
    rejected("uri-uppercase-host", event("cu-4", concept_uri=SKILL.replace("data.europa.eu",
                                                                          "DATA.EUROPA.EU")),
             "concept_uri", BAD_URI),
    rejected("uri-foo-kind", event("cu-5", concept_uri="http://data.europa.eu/esco/foo/"
                                   + SKILL_ID), "concept_uri", BAD_URI),
    rejected("uri-101-id", event("cu-6", concept_uri="http://data.europa.eu/esco/skill/"
                                 + "a" * 101), "concept_uri", BAD_URI),
    Case("uri-100-id-quarantined", body(event("cu-7", concept_uri="http://data.europa.eu/esco/"
                                              "skill/" + "a" * 100)), 202,
         summary=(0, 0, 1, 0),
         reasons={0: ("concept_uri", "Not in any loaded ESCO release (newest 1.2.0)")},
         rows={"cu-7": {"status": "quarantined", "quarantine_reason": "unknown_concept"}}),
    rejected("uri-double-slash", event("cu-8", concept_uri=SKILL + "//"), "concept_uri", BAD_URI),
    rejected("uri-query", event("cu-9", concept_uri=SKILL + "?x=1"), "concept_uri", BAD_URI),
    rejected("uri-dot-dot", event("cu-10", concept_uri="http://data.europa.eu/esco/skill/../"
                                  "occupation/x"), "concept_uri", BAD_URI),
    rejected("uri-empty-id", event("cu-11", concept_uri="http://data.europa.eu/esco/skill/"),
             "concept_uri", BAD_URI),
    # -- language -------------------------------------------------------------------------------
    accepted("language-EN-us", event("la-1", language="EN-us"), {"language": "en"}),
    accepted("language-pt_BR", event("la-2", language="pt_BR"), {"language": "pt"}),
    rejected("language-zh", event("la-3", language="zh"), "language", "Must be one of: bg, cs"),
    rejected("language-empty", event("la-4", language=""), "language", "Must be one of"),
    rejected("language-zh-en", event("la-5", language="zh-EN"), "language", "Must be one of"),
    # -- count ------------------------------------------------------------------------------
    rejected("count-true", event("co-1", count=True), "count", NOT_INT),
    rejected("count-1.0", event("co-2", count=1.0), "count", NOT_INT),
    rejected("count-1.5", event("co-3", count=1.5), "count", NOT_INT),
    rejected("count-1000001", event("co-4", count=1_000_001), "count", "less than or equal to"),
    rejected("count-0", event("co-5", count=0), "count", "greater than or equal to 1"),
    accepted("count-1000000", event("co-6", count=1_000_000), {"count": 1_000_000}),
    # -- fields a type does not take ------------------------------------------------------------
    rejected("label-on-concept_used", event("ft-1", label="x"), "label",
             "Not used by type concept_used"),
    rejected("comment-on-label_added", labelled("ft-2", "x", comment="y"), "comment",
             "Not used by type label_added"),
    # -- authorization: 401 before anything is read or stored --------------------------------
    Case("auth-missing", body(event("au-1")), 401, error="missing API key", auth=None),
    Case("auth-bearer-empty", body(event("au-2")), 401, error="missing API key", auth="Bearer "),
    Case("auth-bearer-blank", body(event("au-3")), 401, error="missing API key",
         auth="Bearer    "),
    Case("auth-basic", body(event("au-4")), 401, error="missing API key",
         auth="Basic dXNlcjpwYXNzd29yZA=="),
    Case("auth-unknown-esk", body(event("au-5")), 401, error="unknown or revoked",
         auth="Bearer esk_" + "0" * 40),
    Case("auth-key-in-body", orjson.dumps({"events": [event("au-6")], "api_key": "x"}), 401,
         auth=None),
    # -- content type and query -------------------------------------------------------------------
    Case("content-type-text", body(event("ct-1")), 415, error="Content-Type",
         content_type="text/plain"),
    Case("content-type-charset", body(event("ct-2")), 202, summary=(1, 0, 0, 0),
         content_type="application/json; charset=utf-8"),
    Case("content-encoding-br", body(event("ct-3")), 415, error="Content-Encoding",
         headers={"Content-Encoding": "br"}),
]

BIG_CASES: list[Case] = [
    Case("events-10000", body(*[event(f"big-a-{i}") for i in range(10_000)]), 413,
         error="10000 events in one request"),
    Case("events-1001", body(*[event(f"big-b-{i}") for i in range(1001)]), 413,
         error="1001 events in one request"),
    Case("ndjson-1001-lines", ndjson(*[line(f"big-c-{i}") for i in range(1001)]), 413,
         error="1001 events", content_type="application/x-ndjson"),
    Case("events-1000", body(*[event(f"big-d-{i}") for i in range(1000)]), 202,
         summary=(1000, 0, 0, 0)),
    Case("field-10MB", body(labelled("big-e", "x" * (10 * MB))), 413, error="body larger than"),
    Case("body-over-limit", b'{"events": [' + b" " * 5_000_000 + b"]}", 413,
         error="body larger than"),
    Case("ndjson-over-limit", ndjson(line("big-f"), b" " * 5_000_001),
         413, error="body larger than", content_type="application/x-ndjson"),
    Case("gzip-over-limit-after-inflating", gzip.compress(body(labelled("big-g", "x" * 6_000_000))),
         413, error="after decompression", headers={"Content-Encoding": "gzip"}),
]


def stored_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def stored_row(portal: Portal, event_id: str) -> dict | None:
    with portal.engine.connect() as conn:
        row = conn.execute(select(events).where(
            events.c.implementer_id == portal.implementer.id, events.c.event_id == event_id
        )).mappings().first()
    return dict(row) if row else None


def send(url: str, key: str, case: Case, data: Any = None) -> requests.Response:
    headers = {"Content-Type": case.content_type, **case.headers}
    if case.auth == "key":
        headers["Authorization"] = f"Bearer {key}"
    elif case.auth is not None:
        headers["Authorization"] = case.auth
    return requests.post(f"{url}/v1/events", data=case.body if data is None else data,
                         headers=headers, timeout=30)


def problems_with(case: Case, response: requests.Response, portal: Portal, added: int
                  ) -> list[str]:
    """What is wrong with the answer to `case` (empty when all is as the contract says)."""
    found = []
    if response.status_code != case.status:
        found.append(f"status {response.status_code}, expected {case.status}")
    try:
        answer = response.json()
    except ValueError:
        return [*found, f"not JSON: {response.text[:200]!r}"]
    if case.error is not None and case.error not in str(answer.get("error")):
        found.append(f"error {answer.get('error')!r} lacks {case.error!r}")
    if case.summary is not None:
        got = tuple(answer.get(k) for k in ("accepted", "duplicates", "quarantined", "rejected"))
        if got != case.summary:
            found.append(f"summary {got}, expected {case.summary}")
        errors = {e["index"]: e for e in answer.get("errors", [])}
        for index, (name, text) in case.reasons.items():
            first = (errors.get(index, {}).get("reasons", {}).get(name) or [""])[0]
            if text not in first:
                found.append(f"reason of event {index} for {name!r} is {first!r}, not {text!r}")
    if added != case.stores:
        found.append(f"stored {added} rows, expected {case.stores}")
    for event_id, columns in case.rows.items():
        row = stored_row(portal, event_id)
        if row is None:
            found.append(f"{event_id} not stored")
            continue
        for name, value in columns.items():
            got = row[name].isoformat() if name == "day" else row[name]
            if got != value:
                found.append(f"{event_id}.{name} stored as {got!r}, expected {value!r}")
    return found


def run_cases(server, engine, portal: Portal, cases: list[Case]) -> None:
    failures = []
    expected_total = stored_count(engine)
    for case in cases:
        before = stored_count(engine)
        response = send(server.url, portal.key, case)
        added = stored_count(engine) - before
        expected_total += case.stores
        problems = problems_with(case, response, portal, added)
        health = requests.get(f"{server.url}/v1/health", timeout=5)
        if health.status_code != 200:
            problems.append(f"server down afterwards: /v1/health {health.status_code}")
        if problems:
            failures.append(f"{case.name}: " + "; ".join(problems))
    assert not failures, "\n".join(failures)
    assert stored_count(engine) == expected_total
    assert server.process.poll() is None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Module-scoped here, so that the shared server below is started once per backend."""
    return request.param


@pytest.fixture(scope="module")
def shared(request, backend, tmp_path_factory) -> Iterator[SharedServer]:
    with shared_server(request, backend, tmp_path_factory.mktemp("bad-input")) as shared:
        yield shared


@pytest.fixture
def server(shared) -> Server:
    return shared.server


@pytest.fixture
def engine(shared):
    """An engine on the shared store: counts are taken before and after each request."""
    return shared.engine


@pytest.fixture
def portal(shared) -> Portal:
    return shared.portal()


def test_case_names_are_unique():
    names = [case.name for case in CASES + BIG_CASES]
    assert len(names) == len(set(names))


def test_bad_input_corpus(server, engine, portal):
    cases = CASES
    if datetime.now(UTC).date() != TODAY:
        # Midnight (UTC) passed since the cases were built: build them again for the new day.
        cases = importlib.reload(sys.modules[__name__]).CASES
    run_cases(server, engine, portal, cases)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_big_bodies_and_event_counts(server, engine, portal):
    run_cases(server, engine, portal, BIG_CASES)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_chunked_bodies_without_content_length(server, engine, portal):
    """No Content-Length (chunked transfer): the cap is enforced while reading."""

    def chunks(data: bytes, size: int = 64 * 1024):
        for start in range(0, len(data), size):
            yield data[start:start + size]

    before = stored_count(engine)
    small = Case("chunked-ok", body(event("ch-1"), event("ch-2")), 202, summary=(2, 0, 0, 0))
    response = send(server.url, portal.key, small, data=chunks(small.body))
    assert problems_with(small, response, portal, stored_count(engine) - before) == []
    big = Case("chunked-over-limit", b'{"events": [' + b" " * 6_000_000 + b"]}", 413,
               error="body larger than")
    response = send(server.url, portal.key, big, data=chunks(big.body))
    assert response.status_code == 413
    assert big.error in response.json()["error"]
    assert requests.get(f"{server.url}/v1/health", timeout=5).status_code == 200
    assert stored_count(engine) - before == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_gzip_bomb_is_refused_quickly(server, engine, portal):
    bomb = gzip_bomb(1024)
    assert len(bomb) < 2 * MB  # a 1 GiB (and a bit) body in about 1 MB
    case = Case("gzip-bomb", bomb, 413, error="after decompression",
                headers={"Content-Encoding": "gzip"})
    before = stored_count(engine)
    started = time.perf_counter()
    response = send(server.url, portal.key, case)
    elapsed = time.perf_counter() - started
    assert problems_with(case, response, portal, 0) == []
    assert elapsed < 2.0, f"the bomb took {elapsed:.2f} s to refuse"
    assert requests.get(f"{server.url}/v1/health", timeout=5).status_code == 200
    assert stored_count(engine) == before


def test_gzip_bomb_helper_builds_valid_gzip():
    inflated = gzip.decompress(gzip_bomb(3))
    assert inflated.startswith(b'{"events": [ ') and len(inflated) == 12 + 3 * MB
    assert set(inflated[12:]) == {ord(" ")}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_very_long_key_is_401(server, engine, portal):
    case = Case("auth-key-10000", body(event("au-long")), 401, error="unknown or revoked",
                auth="Bearer esk_" + "k" * 10_000)
    response = send(server.url, portal.key, case)
    assert problems_with(case, response, portal, 0) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_occurred_at_at_the_edge_of_the_calendar_is_rejected_not_500(server, engine, portal):
    cases = [
        rejected("occurred-year-10000-utc", event("oa-x1", occurred_at="9999-12-31T23:00:00-05:00"),
                 "occurred_at", "Not a valid RFC 3339"),
        rejected("occurred-year-0-utc", event("oa-x2", occurred_at="0001-01-01T00:30:00+01:00"),
                 "occurred_at", "Not a valid RFC 3339"),
    ]
    run_cases(server, engine, portal, cases)
