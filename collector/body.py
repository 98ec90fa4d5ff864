"""Reading a request body: size caps, gzip inflated in bounded steps, JSON or NDJSON.

A gzip bomb is refused as soon as the inflated size passes the cap, without inflating the rest.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import IO, Any

import orjson

JSON_TYPES = {"application/json"}
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl"}
_CHUNK = 64 * 1024


class BodyError(Exception):
    """A body the API refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ParsedBody:
    """The events of a request: each item is a parsed object, or a BodyError for a bad line."""

    items: list[Any]


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_content_type(content_type: str | None, encoding: str | None) -> tuple[str, bool]:
    """The body's kind ("json" or "ndjson") and whether it is gzipped, or a 415."""
    kind = media_type(content_type)
    if kind in JSON_TYPES:
        form = "json"
    elif kind in NDJSON_TYPES:
        form = "ndjson"
    else:
        shown = kind or "none"
        raise BodyError(415, f"Content-Type must be application/json or application/x-ndjson, "
                             f"not {shown}")
    coding = (encoding or "identity").strip().lower()
    if coding not in ("identity", "gzip", "x-gzip"):
        raise BodyError(415, f"Content-Encoding must be gzip or absent, not {coding}")
    return form, coding != "identity"


def read_body(stream: IO[bytes], content_length: int | None, gzipped: bool,
              max_bytes: int) -> bytes:
    """The decompressed body, at most `max_bytes`; 413 past that, 400 for broken gzip."""
    if content_length is not None and content_length > max_bytes:
        raise BodyError(413, f"body larger than {max_bytes} bytes")
    raw = _read_capped(stream, max_bytes)
    if not gzipped:
        return raw
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        data = raw
        while data:
            # Never inflate more than one byte past the cap: that byte proves the excess.
            out += inflater.decompress(data, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise BodyError(413, f"body larger than {max_bytes} bytes after decompression")
            data = inflater.unconsumed_tail
        out += inflater.flush()
        if len(out) > max_bytes:
            raise BodyError(413, f"body larger than {max_bytes} bytes after decompression")
    except zlib.error:
        raise BodyError(400, "body is not valid gzip data") from None
    if not inflater.eof:
        raise BodyError(400, "body is not valid gzip data (truncated)")
    return bytes(out)


def _read_capped(stream: IO[bytes], max_bytes: int) -> bytes:
    chunks = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise BodyError(413, f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_error(exc: Exception) -> str:
    text = str(exc)
    if "utf-8" in text.lower() or "unicode" in text.lower() or "surrogate" in text.lower():
        return "body is not valid UTF-8"
    return f"body is not valid JSON: {text}"


def parse_events(body: bytes, form: str, max_events: int) -> ParsedBody:
    """Split a body into event objects; 400 for a body that is not of the contract's shape."""
    if form == "json":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BodyError(400, _decode_error(exc)) from None
        if not isinstance(doc, dict) or "events" not in doc:
            raise BodyError(400, 'body must be a JSON object {"events": [...]}')
        extra = sorted(set(doc) - {"events"})
        if extra:
            raise BodyError(400, f"unknown top-level field: {extra[0]}")
        items = doc["events"]
        if not isinstance(items, list):
            raise BodyError(400, '"events" must be a list of event objects')
    else:
        # Blank lines (and a trailing newline) separate nothing; a broken line rejects
        # only its own event, as one bad line of a log file spoils only itself.
        lines = [(n, line) for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()]
        if len(lines) > max_events:
            raise BodyError(413, f"{len(lines)} events in one request; the limit is {max_events}")
        items = []
        for number, line in lines:
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                items.append(BodyError(400, f"line {number}: " + _decode_error(exc)))
    if not items:
        raise BodyError(400, "no events in the body")
    if len(items) > max_events:
        raise BodyError(413, f"{len(items)} events in one request; the limit is {max_events}")
    return ParsedBody(items)

