"""Where the dashboard gets its numbers: kpi.warehouse.indicators, memoised per period fingerprint.

Two levels of memo, both keyed by kpi.warehouse.reader.period_fingerprint (the published files a
period can read), so a run that touched only today keeps last quarter's entries:

* indicator results (rows), bounded by CACHE_ROW_BUDGET rows: shared by the pages and the CSV
  downloads of the same period and filters;
* rendered page bodies (SharedPageCache): a page seen before is served without rebuilding
  its charts and grids, however many result rows other views pushed out since, and whichever
  worker process rendered it.

Indicator results are also kept on disk for the other workers of the host (SharedResults): the
pages of one period and filters share most of their indicators, and the next page a user opens
often lands on another worker.

The keys name the data they were computed from, so nothing goes stale: entries leave only to
make room (least recently used first).

`Warmer` fills both for the default views each time a run published, so the first visitor
after an aggregation does not wait for the indicators.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import logging
import pickle
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from flask_caching import Cache
from flask_caching.backends.base import BaseCache
from plotly.io import json as plotly_json
from plotly.io.json import to_json_plotly
from sqlalchemy import Engine, func, select

from dashboard.state import FilterState, to_query, today
from kpi.settings import Settings
from kpi.store.db import make_engine, review_decisions
from kpi.warehouse import indicators
from kpi.warehouse.indicators import Period, Result, run_support_query
from kpi.warehouse.published import SCHEMAS
from kpi.warehouse.reader import period_fingerprint, shared_reader, snapshot_id
from kpi.warehouse.spans import next_month

log = logging.getLogger("esco_kpi.dashboard")

# The cache's budget, in result rows, per worker process (the collector shares the worker:
# 150k rows of indicator dicts are some 150 MB at worst, usually far less).
CACHE_ROW_BUDGET = 150_000
# Queries of one page run at the same time (Data.prefetch): one per core of the benchmark
# machine; DuckDB gives each query its own threads too.
PREFETCH_THREADS = 2
# Review page states whose rows are kept per worker (Data.review_view).
REVIEW_VIEWS = 16
# Names of the review loop's answers kept per worker (Data.loop): the evidence, and a list of
# references into it per kind, status and language asked for.
LOOP_NAMES = 128
# No expiry: a key names the published files its answer came from (see Data.fingerprint), so
# an entry is never stale; the budgets below bound memory and disk instead.
CACHE_SECONDS = 0
# Rendered pages kept on disk for all workers of the host (files of some 20-400 kB).
PAGE_FILES = 300
# Rendered page bodies kept per worker process, counted in grid rows (+1 per page): a shown
# row is some hundreds of bytes, a grid at most 1,000 rows.
PAGE_ROW_BUDGET = 40_000
# Indicator results kept on disk for all workers of the host, compressed: a few kB for most,
# some 3 MB for 50,000 candidate labels (reading that back costs a fifth of computing it).
RESULT_FILES = 400


# What an answer, a page or a download kept on disk depends on: the dashboard's code, the SQL
# of the indicators and the Python that runs them (kpi: the warehouse's readers, the review).
CODE_ROOTS = ("dashboard", "kpi", "sql")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def code_version(root: Path = PROJECT_ROOT, folders: Iterable[str] = CODE_ROOTS) -> str:
    """A digest of the code that shapes what the dashboard keeps: part of the key of every
    rendered page, download and shared indicator result, so that what an earlier version
    kept on disk (other markup, other SQL, other rows) is not served after an upgrade."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".py", ".sql") and path.is_file():
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = code_version()
# What reads the data-quality counters (the quality_daily table): see Data.fingerprint.
QUALITY_INDICATORS = frozenset({"data_quality"})
QUALITY_PAGE = "quality"
# The memoised pages that show review statuses: their memo also keys on the audit trail.
REVIEW_PAGES = frozenset({"overview", "labels", "proposals", "translations"})

# The views Warmer computes after each run: every page, unfiltered, for these presets.
WARM_PRESETS = ("last30", "last_quarter", "this_quarter")
# What the list of loaded releases does not read: every published table but its own.
NOT_RELEASES = tuple(t for t in SCHEMAS if t != "catalogue_versions")


class LatestAnswers:
    """One answer per name, for the newest key (state) it was set with, the least recently
    used names first out beyond `names`.

    For what the review loop computes over every published day: its evidence alone is some
    100,000 items, more than the indicator results' row budget (ResultCache), where it would
    push out every page's results and itself at each view. An answer for an older state is
    replaced, never kept beside the new one."""

    def __init__(self, names: int) -> None:
        self.names = names
        self._answers: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, key: str) -> Any:
        with self._lock:
            held = self._answers.get(name)
            if held is None or held[0] != key:
                return None
            self._answers.move_to_end(name)
            return held[1]

    def set(self, name: str, key: str, value: Any) -> None:
        with self._lock:
            self._answers[name] = (key, value)
            self._answers.move_to_end(name)
            while len(self._answers) > self.names:
                self._answers.popitem(last=False)


class ResultCache(BaseCache):
    """Flask-Caching's in-process memory cache, minus the pickling, bounded by rows.

    SimpleCache pickles every value: some 100 ms per hit for a 50k-row indicator result at
    10 M events, a third of the page budget. Results are never mutated after a query, so
    they are kept as they are, least recently used first out once over the row budget.
    """

    def __init__(self, default_timeout: int = 300, row_budget: int = CACHE_ROW_BUDGET,
                 size: Callable[[Any], int] | None = None, **_: Any) -> None:
        super().__init__(default_timeout)
        self.row_budget = row_budget
        self.size = size or result_rows
        self._items: OrderedDict[str, tuple[float, int, Any]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    @classmethod
    def factory(cls, app, config, args, kwargs) -> ResultCache:  # Flask-Caching's hook
        return cls(*args, **kwargs)

    def get(self, key: str) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] and item[0] < time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return item[2]

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        timeout = self.default_timeout if timeout is None else timeout
        size = max(1, self.size(value))
        with self._lock:
            self._drop(key)
            self._items[key] = (time.monotonic() + timeout if timeout else 0.0, size, value)
            self._rows += size
            while self._rows > self.row_budget and len(self._items) > 1:
                self._drop(next(iter(self._items)))
        return True

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return False if self.has(key) else self.set(key, value, timeout)

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._drop(key)

    def clear(self) -> bool:
        with self._lock:
            self._items.clear()
            self._rows = 0
        return True

    def _drop(self, key: str) -> bool:
        item = self._items.pop(key, None)
        if item is not None:
            self._rows -= item[1]
        return item is not None


class SharedPageCache:
    """Rendered page bodies shared by the worker processes of one host.

    An in-process LRU (bounded by grid rows shown) in front of cachelib's FileSystemCache in
    <data_dir>/cache/pages: a view rendered by one gunicorn worker is not rendered again by
    the next worker that gets the request. cachelib writes each entry to a temporary file and
    renames it, so readers never see half an entry; its files are readable by this user only.
    A disk that is full or unwritable only costs the sharing: errors are logged, not raised.
    """

    def __init__(self, folder: Path, row_budget: int, files: int = PAGE_FILES) -> None:
        from cachelib import FileSystemCache

        self.memory = ResultCache(row_budget=row_budget, size=shown_rows)
        self.disk = FileSystemCache(str(folder), threshold=files, default_timeout=0,
                                    mode=0o600)
        # CSV downloads: on the same disk, written in the background (Data.download)
        self.downloads = BackgroundWrites(self.disk)

    def get(self, key: str) -> Any:
        hit = self.memory.get(key)
        if hit is None:
            hit = self.disk.get(key)
            if hit is not None:
                self.memory.set(key, hit, timeout=0)
        return hit

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        self.memory.set(key, value, timeout=0)
        return bool(self.disk.set(key, value, timeout=0))


class BackgroundWrites:
    """A FileSystemCache whose entries are written by a background thread: a CSV download of
    megabytes goes out without waiting for its copy on disk (the review queue's 28 MB took some
    60 ms to write). Until its copy is written, an entry is served from memory in this
    process. Errors writing only cost the sharing."""

    def __init__(self, disk: Any) -> None:
        self.disk = disk
        self._pending: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dashboard-downloads")

    def get(self, key: str) -> Any:
        with self._lock:
            hit = self._pending.get(key)
        return hit if hit is not None else self.disk.get(key)

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        with self._lock:
            self._pending[key] = value
        # RuntimeError: the interpreter is shutting down, and only the sharing is lost
        with suppress(RuntimeError):
            self._writer.submit(self._write, key, value)
        return True

    def flush(self) -> None:
        """Wait for the writes submitted so far (for tests)."""
        self._writer.submit(lambda: None).result()

    def _write(self, key: str, value: Any) -> None:
        try:
            if not self.disk.set(key, value, timeout=0):
                log.warning("dashboard download not kept on disk")
        except Exception:  # noqa: BLE001 - only the sharing is lost
            log.warning("dashboard download not kept on disk", exc_info=True)
        finally:
            with self._lock:
                self._pending.pop(key, None)


class SharedResults:
    """Indicator results shared by the worker processes of one host, on disk.

    Files of cachelib's FileSystemCache in <data_dir>/cache/results (atomic writes, this user
    only), each a result pickled and compressed, keyed by the code version too: a result kept
    by an earlier version is not read after an upgrade. Results are written by a background
    thread: the request that computed one does not wait for its copy. Any error reading or
    writing only costs the sharing, as for the pages.
    """

    def __init__(self, folder: Path, files: int = RESULT_FILES,
                 version: str = CODE_VERSION) -> None:
        from cachelib import FileSystemCache

        self.disk = FileSystemCache(str(folder), threshold=files, default_timeout=0,
                                    mode=0o600)
        self.version = version
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="dashboard-results")

    def get(self, key: str) -> Any:
        try:
            packed = self.disk.get(f"{self.version} {key}")
            return None if packed is None else _unpack(packed)
        except Exception:  # noqa: BLE001 - a damaged or foreign file: compute instead
            log.warning("shared dashboard result unreadable", exc_info=True)
            return None

    def set(self, key: str, value: Any) -> None:
        # RuntimeError: the interpreter is shutting down (a worker stopping mid-render), and
        # only the sharing of this one result is lost
        with suppress(RuntimeError):
            self._writer.submit(self._write, key, value)

    def flush(self) -> None:
        """Wait for the writes submitted so far (for tests)."""
        self._writer.submit(lambda: None).result()

    def _write(self, key: str, value: Any) -> None:
        try:
            self.disk.set(f"{self.version} {key}", _pack(value), timeout=0)
        except Exception:  # noqa: BLE001 - only the sharing is lost
            log.warning("shared dashboard result not written", exc_info=True)


# How a shared result is packed: pickled (protocol 5) with its large buffers, Arrow's and
# numpy's, out of band, each compressed by LZ4, after the pickle, which zstd compresses (all
# through pyarrow). The review evidence (155,000 items at 10 M events, 44 MB of buffers and a
# pickle of 9 kB) takes 22 MB and is read back in 30 ms, the file's read included (median of
# 9), against 41 ms with its buffers stored as they are (45 MB) and 100 ms as one pickle
# compressed by zstd (13 MB: 64 ms to decompress one block, 37 to unpickle). Lists and dicts
# (a few rows) are compressed by zstd as before.
_PACKED = b"lz4b"
_HEADER = struct.Struct("<QQQ")  # the pickle's size, its compressed size, the buffers' count


def _pack(value: Any) -> bytes:
    buffers: list[pickle.PickleBuffer] = []
    raw = pickle.dumps(value, 5, buffer_callback=buffers.append)
    blocks = [(view.nbytes, pa.compress(view, codec="lz4", asbytes=True))
              for view in (b.raw() for b in buffers)]
    stream = pa.compress(raw, codec="zstd", asbytes=True)
    sizes = [n for size, block in blocks for n in (size, len(block))]
    return b"".join([_PACKED, _HEADER.pack(len(raw), len(stream), len(blocks)),
                     struct.pack(f"<{len(sizes)}Q", *sizes), stream,
                     *(block for _, block in blocks)])


def _unpack(packed: bytes) -> Any:
    if not packed.startswith(_PACKED):
        raise ValueError("not a packed dashboard result")
    whole = memoryview(packed)
    at = len(_PACKED)
    try:
        size, compressed, count = _HEADER.unpack_from(whole, at)
        at += _HEADER.size
        sizes = struct.unpack_from(f"<{2 * count}Q", whole, at)
    except struct.error as exc:
        raise ValueError("a packed dashboard result cut short") from exc
    at += 16 * count
    if at + compressed + sum(sizes[1::2]) != len(packed):
        raise ValueError("a packed dashboard result of the wrong length")
    raw = pa.decompress(whole[at:at + compressed], decompressed_size=size, codec="zstd",
                        asbytes=True)
    at += compressed
    buffers = []
    for length, stored in zip(sizes[::2], sizes[1::2], strict=True):
        buffers.append(pa.decompress(whole[at:at + stored], decompressed_size=length,
                                     codec="lz4"))
        at += stored
    return pickle.loads(raw, buffers=buffers)


def _view(state: FilterState, period: Period) -> tuple:
    """What a view's key holds: the resolved period, not the preset ("last quarter" and its
    dates are one view), the label language, the concept and the filters."""
    return (period.start, period.end, state.label_language, state.concept,
            sorted(state.filters().items()))


def result_rows(value: Any) -> int:
    """The size of a cached indicator result: its rows (of a list, such as the review items:
    its length)."""
    if isinstance(value, list):
        return len(value)
    return len(getattr(value, "rows", ()))


# Dash encodes its answers with plotly's encoder, which picks orjson when it is installed
# ("auto"); RenderedBody's kept JSON needs it (orjson.Fragment), so it is asked for by name.
plotly_json.config.default_engine = "orjson"


class RenderedBody(list):
    """A page body as rendered: its components (the list itself) and, made once, each
    top-level component's JSON as Dash sends it.

    A repeat view sends the kept JSON (for_dash) instead of walking and encoding the
    components again: 17-37 ms a page at 10 M events, more than half of a repeat view. The
    other workers get the JSON alone (pickled without the components, which also makes the
    shared copy quicker to read): a body read back from disk is an empty list.
    """

    def __init__(self, components: Iterable[Any], parts: tuple[bytes, ...] | None = None,
                 rows: int | None = None) -> None:
        super().__init__(components)
        self.parts = parts if parts is not None else tuple(
            to_json_plotly(c).encode() for c in self)
        self.rows = shown_rows(list(self)) if rows is None else rows

    def __reduce__(self) -> tuple[Any, ...]:
        return (RenderedBody, ((), self.parts, self.rows))

    def for_dash(self) -> list[orjson.Fragment]:
        """The components as Dash's JSON encoder (orjson) writes them out unchanged."""
        return [orjson.Fragment(part) for part in self.parts]


def shown_rows(body: Any) -> int:
    """The size of a rendered page body: the rows of its grids, plus one."""
    if isinstance(body, RenderedBody):
        return body.rows

    def walk(node: Any) -> int:
        if isinstance(node, list | tuple):
            return sum(walk(child) for child in node)
        rows = getattr(node, "rowData", None)
        own = len(rows) if isinstance(rows, list) else 0
        return own + walk(getattr(node, "children", None) or [])

    return 1 + walk(body)


_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _prefetch_pool() -> ThreadPoolExecutor:
    """The worker process's threads for Data.prefetch, made on first use (after gunicorn's
    fork: threads do not survive one)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="prefetch"))
        return _POOL[0]


def run_extra(settings: Settings, name: str, params: dict[str, Any]) -> Result:
    """Run a support query of kpi.warehouse.indicators on this process's shared reader."""
    cur = shared_reader(settings)
    try:
        return run_support_query(cur, name, params)
    finally:
        cur.close()


def grain_for(period: Period) -> str:
    """Days for a month or two, weeks up to a year and a bit, months beyond."""
    if period.days <= 62:
        return "day"
    return "week" if period.days <= 400 else "month"


def bucket_starts(period: Period, grain: str) -> list[date]:
    """Every bucket of the period, so that buckets without usage show as zero."""
    if grain == "day":
        return [period.start + timedelta(days=i) for i in range(period.days)]
    if grain == "week":
        first = period.start - timedelta(days=period.start.weekday())
        return [first + timedelta(weeks=i) for i in range((period.end - first).days // 7 + 1)]
    out, d = [], period.start.replace(day=1)
    while d <= period.end:
        out.append(d)
        d = next_month(d)
    return out


@dataclass
class Data:
    """Memoised access to the indicators (and rendered pages) for one dashboard app."""

    settings: Settings
    cache: Cache | None = None
    pages: SharedPageCache | ResultCache | None = None
    # the ingest store (users, review decisions); made from the settings when not given
    store: Engine | None = None
    # indicator results shared with the other workers (when the pages are shared too)
    results: SharedResults | None = field(default=None, init=False, repr=False)
    # what covers every published day (the review loop's evidence, items and figures): one
    # answer per name, for the newest state it was asked in (see _until_changed)
    loop: LatestAnswers = field(default_factory=lambda: LatestAnswers(LOOP_NAMES),
                                init=False, repr=False)
    # the Review page's rows per state (Data.review_view): 1,000 rows each
    review_views: LatestAnswers = field(default_factory=lambda: LatestAnswers(REVIEW_VIEWS),
                                        init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.pages, SharedPageCache):
            self.results = SharedResults(self.settings.data_dir / "cache" / "results")

    def engine(self) -> Engine:
        """The ingest store's engine."""
        if self.store is None:
            self.store = make_engine(self.settings)
        return self.store

    def snapshot(self) -> int:
        return snapshot_id(self.settings)

    def fingerprint(self, period: Period, quality: bool = False) -> str:
        """The period's fingerprint (with the previous period of equal length, which
        most_used_concepts and the overview read too).

        The data-quality counters change with nearly every run (a rejection somewhere) and
        concept keys only grow, never change: neither can alter what the other queries answer
        for an unchanged period, so they are left out unless `quality`.
        """
        ignore = () if quality else ("quality_daily", "concept_keys")
        return period_fingerprint(self.settings, period.previous().start, period.end, ignore)

    def _cached(self, store: Any, key: tuple, period: Period, compute: Callable[[], Any],
                quality: bool = False, shared: SharedResults | None = None) -> Any:
        """compute(), memoised in `store` (None: not memoised) under the period's fingerprint;
        with `shared`, also looked up in and given to the other workers' copies."""
        if store is None:
            return compute()
        before = self.fingerprint(period, quality)
        full = repr((before, *key))
        hit = store.get(full)
        if hit is None and shared is not None:
            hit = shared.get(full)
            if hit is not None:
                store.set(full, hit, timeout=CACHE_SECONDS)
                return hit
        if hit is None:
            hit = compute()
            # A run published meanwhile: the answer may be of either state, so it is not kept.
            if self.fingerprint(period, quality) == before:
                store.set(full, hit, timeout=CACHE_SECONDS)
                if shared is not None:
                    shared.set(full, hit)
        return hit

    def page(self, path: str, state: FilterState, render: Callable[[], Any]) -> RenderedBody:
        """A page body, rendered by `render` unless the same view was rendered before (and,
        for a page showing review statuses, no decision was taken since)."""
        period = state.period()
        decisions = self.review_token() if path in REVIEW_PAGES else None
        return self._cached(self.pages,
                            ("page", CODE_VERSION, path, decisions, *_view(state, period)),
                            period, lambda: RenderedBody(render()),
                            quality=path == QUALITY_PAGE)

    def prefetch(self, *calls: Callable[[], Any]) -> None:
        """Run `calls` (this object's methods, with the arguments a page is about to ask them
        for) two at a time, so that the page then finds their answers memoised. DuckDB works
        outside the GIL and a page's queries are independent: a page of several queries takes
        about the time of its longest one plus half the rest, instead of all of them one after
        the other. Without memoising there is nothing to find, so nothing is run ahead; an
        error is left for the page's own call to raise."""
        if self.cache is None or len(calls) < 2:
            return
        for future in [_prefetch_pool().submit(call) for call in calls]:
            future.exception()  # waits; the page's own call raises it again

    def review_token(self) -> int:
        """Changes with every review decision: the audit trail's newest id (it only grows,
        nothing is deleted), one indexed lookup in the ingest store."""
        with self.engine().connect() as conn:
            return int(conn.execute(
                select(func.coalesce(func.max(review_decisions.c.id), 0))).scalar_one())

    def review_summary(self, **options: Any) -> list[dict[str, Any]]:
        """kpi.review.summary.review_summary (the review loop's figures over every item and all
        time), memoised until a run publishes or a reviewer decides: computing it reads every
        suggestion ever sent, while its answer is a few rows. From the whole evidence when this
        worker holds it (review_evidence_table, the Review page's: 0.07 s at 10 M events),
        else from the items' keys and the decided items' evidence: 0.18-0.28 s instead of
        0.51-0.58 s for the whole evidence, which the Overview, whose figures these are, has no
        other use for."""
        from kpi.review.summary import review_summary

        return self._until_changed(
            f"review_summary {sorted(options.items())}", decisions=True,
            compute=lambda: review_summary(self.settings, self.engine(),
                                           known=self._held_evidence(),
                                           **options))

    def _until_changed(self, name: str, compute: Callable[[], Any], decisions: bool = False,
                       shared: bool = True, kept: LatestAnswers | None = None) -> Any:
        """compute(), memoised until a run publishes (and, with `decisions`, until a reviewer
        decides), and with `shared` also given to the other workers: for what covers every
        published day, whatever the period. `kept`: where (default: the review loop's
        answers)."""
        if self.cache is None:
            return compute()
        kept = self.loop if kept is None else kept

        def state() -> tuple:
            return self._loop_state(decisions)

        before = state()
        key = repr((name, before))
        hit = kept.get(name, key)
        if hit is None:
            hit = self._shared(name, before, decisions, compute) if shared else compute()
            if state() == before:  # nothing published or decided meanwhile
                kept.set(name, key, hit)
        return hit

    def _shared(self, name: str, before: tuple, decisions: bool, compute: Callable[[], Any],
                token: str | None = None) -> Any:
        """compute(), also taken from and given to the other workers of the host, under
        `name`, the state `before` it is computed in (_loop_state, with `decisions` or not)
        and `token` (the evidence it is aligned with: _review_evidence); given only when
        nothing was published or decided meanwhile."""
        if self.results is None:
            return compute()
        key = repr((name, before, token))
        value = self.results.get(key)
        if value is None:
            value = compute()
            if self._loop_state(decisions) == before:
                self.results.set(key, value)
        return value

    def _loop_state(self, decisions: bool) -> tuple:
        """What an answer of _until_changed is kept under: the published files, and with
        `decisions` the audit trail."""
        return (period_fingerprint(self.settings, date.min, date.max),
                self.review_token() if decisions else None)

    def _held(self, name: str) -> Any:
        """The answer of _until_changed for `name` (one that no decision changes) that this
        worker holds for the current state, or None: never computed here."""
        if self.cache is None:
            return None
        return self.loop.get(name, repr((name, self._loop_state(False))))

    def _held_evidence(self) -> Any:
        """The review evidence this worker holds for the current state, or None."""
        held = self._held("review_evidence")
        return None if held is None else held[1]

    def review_view(self, state: FilterState, compute: Callable[[], Any]) -> Any:
        """What the Review page shows for a state (its queue's length and first rows),
        memoised until a run publishes or a reviewer decides, and given to the other workers
        (a few hundred ms to compute, a few ms to read back): the page itself is rendered at
        every request (it shows the user's role and carries the session's token), not its
        rows."""
        period = state.period()
        return self._until_changed(f"review_view {period} {to_query(state)}", compute,
                                   decisions=True, kept=self.review_views)

    def derived(self, name: str, source: Any, compute: Callable[[], Any],
                token: str | None = None) -> Any:
        """compute(), a value derived from `source` (an answer this worker keeps, such as the
        review evidence) and aligned with it, memoised with it until a run publishes: kept
        only while `source` is the very object it was computed from. With `token` (the
        evidence_token of `source`), also given to and taken from the other workers that hold
        the same table."""
        if self.cache is None:
            return compute()
        before = self._loop_state(False)
        key = repr((name, before))
        held = self.loop.get(name, key)
        if held is not None and held[0] is source:
            return held[1]
        value = self._shared(name, before, False, compute, token) if token else compute()
        self.loop.set(name, key, (source, value))
        return value

    def review_evidence_table(self) -> Any:
        """kpi.review.items.evidence_table for every kind and language (an Arrow table; a
        second or more at 10 M events), until a run publishes."""
        return self._review_evidence()[1]

    def _review_evidence(self) -> tuple[str, Any]:
        """(token, review_evidence_table). The token names that very table: the workers that
        read it back from the one that computed it hold the same, so what is derived from its
        rows by their place (a queue's order, its items' months) is shared with them too,
        while a worker that computed a table of its own (its rows in another order) gets
        nothing of another's."""
        from kpi.review.items import evidence_table

        return self._until_changed("review_evidence",
                                   lambda: (uuid.uuid4().hex, evidence_table(self.settings)))

    def evidence_token(self, table: Any) -> str | None:
        """The token of `table` when it is the review evidence this worker holds (see
        _review_evidence), else None."""
        held = self._held("review_evidence")
        return held[0] if held is not None and held[1] is table else None

    def review_items(self, kind: str | None, status: str | None, language: str | None
                     ) -> Any:
        """kpi.review.decisions.queue from the kept evidence table (a Queue: ids in order,
        Items made for the ones shown), memoised in this worker until a run publishes or a
        reviewer decides (statuses come from the audit trail, and a deferred item reopens when
        the evidence grows). Its order and decided items are given to the other workers that
        hold the same evidence (_review_evidence): ordering 115,000 items took 100 ms."""
        from kpi.review.decisions import Queue, queue
        from kpi.review.items import filtered

        def compute() -> Queue:
            token, evidence = self._review_evidence()
            made: list[Queue] = []

            def make() -> tuple[Any, dict[str, Any]]:
                made.append(queue(self.settings, self.engine(), kind=kind, status=status,
                                  language=language, known=evidence))
                return made[0].order, made[0].decided

            order, decided = self._shared(f"review_queue {kind} {status} {language}",
                                          self._loop_state(True), True, make, token)
            return made[0] if made else Queue(filtered(evidence, kind, language), order,
                                              decided)

        return self._until_changed(f"review_items {kind} {status} {language}",
                                   decisions=True, shared=False, compute=compute)

    def review_item_months_table(self, since: date) -> Any:
        """kpi.review.items.item_months_table from `since` on (an Arrow table of every item's
        months), kept until a run publishes."""
        from kpi.review.items import item_months_table

        return self._until_changed(f"review_item_months {since.isoformat()}",
                                   lambda: item_months_table(self.settings, since))

    def download(self, path: str, table: str, state: FilterState,
                 build: Callable[[], bytes | None], decisions: bool = False) -> bytes | None:
        """A CSV download of a page's table (the file `build` makes), made once per host: kept
        with the shared pages (on disk only, written in the background: a CSV can be
        megabytes), so the worker that gets the next click need not compute the page's
        indicators again, nor write the file. With `decisions` (the review queue's: the same
        for every user, its evidence over all time) it is kept until a run publishes anything
        or a reviewer decides, and per the page's own choices too (kind, status, item)."""
        period = state.period()
        own = (period_fingerprint(self.settings, date.min, date.max), self.review_token(),
               to_query(state)) if decisions else ()
        return self._cached(getattr(self.pages, "downloads", None),
                            ("csv", CODE_VERSION, path, table, *own, *_view(state, period)),
                            period, build, quality=path == QUALITY_PAGE)

    def indicator(self, name: str, period: Period, state: FilterState, **extra: Any) -> Result:
        """kpi.warehouse.indicators.query with the state's filters that the indicator can apply."""
        usable = set(indicators.applicable_filters(name))
        filters = {k: v for k, v in {**state.filters(), **extra}.items() if k in usable}
        key = (name, period.start, period.end, state.label_language, sorted(filters.items()))
        return self._cached(self.cache, key, period, lambda: indicators.query(
            self.settings, name, period, label_language=state.label_language,
            rows_on_demand=True, **filters),
            quality=name in QUALITY_INDICATORS, shared=self.results)

    def _support(self, name: str, period: Period, params: dict[str, Any]) -> Result:
        """A support query of kpi.warehouse.indicators (sql/<name>.sql) with these parameters,
        memoised and shared with the other workers like the indicators."""
        key = (name, sorted((k, str(v)) for k, v in params.items()))
        return self._cached(self.cache, key, period,
                            lambda: run_extra(self.settings, name, params),
                            shared=self.results)

    def trend(self, period: Period, state: FilterState, concept_uri: str | None = None
              ) -> tuple[str, list[dict[str, Any]]]:
        """Usage per bucket over the whole period, zero-filled: (grain, rows)."""
        grain = grain_for(period)
        params = {"start": period.start, "end": period.end, "grain": grain,
                  "concept_uri": concept_uri, **state.filters()}
        result = self._support("usage_trend", period, params)
        found = {row["bucket"]: row for row in result.rows}
        rows = [found.get(b, {"bucket": b, "usage": 0, "events": 0, "implementers": 0,
                              "concepts": 0}) for b in bucket_starts(period, grain)]
        return grain, rows

    def trend_usage(self, period: Period, state: FilterState) -> tuple[str, list[dict[str, Any]]]:
        """The usage alone of `trend` (no concept filter), zero-filled: (grain, rows of bucket
        and usage), from a query a fifth as costly (sql/usage_per_bucket.sql)."""
        grain = grain_for(period)
        params = {"start": period.start, "end": period.end, "grain": grain, **state.filters()}
        result = self._support("usage_per_bucket", period, params)
        found = {row["bucket"]: row["usage"] for row in result.rows}
        return grain, [{"bucket": b, "usage": found.get(b, 0)}
                       for b in bucket_starts(period, grain)]

    def usage_by_language(self, period: Period, state: FilterState) -> list[dict[str, Any]]:
        """The usage alone of language_usage (rows of language and usage, in its order), from
        a query a fifth as costly (sql/usage_per_language.sql)."""
        params = {"start": period.start, "end": period.end, **state.filters()}
        return list(self._support("usage_per_language", period, params).rows)

    def concept_detail(self, period: Period, state: FilterState, concept_uri: str) -> Result:
        params = {"start": period.start, "end": period.end, "concept_uri": concept_uri,
                  **{k: v for k, v in state.filters().items() if k != "concept_type"}}
        return self._support("concept_detail", period, params)

    def kpi_counts(self, period: Period, state: FilterState) -> dict[str, int]:
        """sql/kpi_counts.sql: the Overview cards' figures for the period and filters
        (candidate_labels, proposals, feedback_events, implementers, countries, concepts,
        used_concepts), what the lists and indicators they sum give, without computing them."""
        params = {"start": period.start, "end": period.end, **state.filters()}
        result = self._support("kpi_counts", period, params)
        return dict(result.rows[0])

    def releases(self) -> Result:
        """The loaded ESCO releases (the published catalogue_versions), oldest first: version,
        rank, loaded_at, concepts, labels, languages (comma-separated). Memoised under that
        dimension's file: the run that publishes a newly loaded release changes the answer."""
        def compute() -> Result:
            cur = shared_reader(self.settings)
            try:
                found = cur.table("catalogue_versions").order("rank")
                columns = tuple(found.columns)
                return Result(columns, [dict(zip(columns, row, strict=True))
                                        for row in found.fetchall()])
            finally:
                cur.close()

        if self.cache is None:
            return compute()
        before = period_fingerprint(self.settings, date.min, date.min, NOT_RELEASES)
        key = repr(("releases", before))
        hit = self.cache.get(key)
        if hit is None:
            hit = compute()
            if period_fingerprint(self.settings, date.min, date.min, NOT_RELEASES) == before:
                self.cache.set(key, hit, timeout=CACHE_SECONDS)
        return hit

    def current_release(self) -> str | None:
        """The newest loaded ESCO release (None before any is published)."""
        rows = self.releases().rows
        return rows[-1]["version"] if rows else None

    def release_uptake(self, period: Period, state: FilterState) -> Result:
        """sql/release_uptake.sql: the releases active implementers declare in the period."""
        params = {"start": period.start, "end": period.end, **state.filters()}
        return self._support("release_uptake", period, params)


class Warmer(threading.Thread):
    """Renders the default views of every page whenever a run has published new data.

    One per worker process. The workers of a host take turns (a lock file next to the shared
    pages): the first renders, the others then find the pages on disk and only load them into
    their own memo. A daemon thread: it dies with its worker. Views whose period the run did
    not touch keep their fingerprint and cost nothing.
    """

    def __init__(self, data: Data, render: Callable[[str, FilterState], Any],
                 paths: Iterable[str], interval: float = 5.0, lock: Path | None = None) -> None:
        super().__init__(name="dashboard-warmer", daemon=True)
        self.data, self.render, self.paths = data, render, tuple(paths)
        self.interval = interval
        self.lock = lock
        self.stopped = threading.Event()
        self.rounds = 0  # finished warm-ups, for tests

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the view it is rendering, and wait for it: a daemon
        thread killed at interpreter exit in the middle of a DuckDB query can abort the
        process, so every Warmer is stopped this way at exit."""
        self.stopped.set()
        if self.is_alive():
            self.join(timeout)

    def start(self) -> None:
        super().start()
        atexit.register(self.stop)

    def warm_once(self) -> int:
        """Render every default view now; returns how many were rendered."""
        done = 0
        for preset in WARM_PRESETS:
            state = FilterState(preset=preset)
            for path in self.paths:
                if self.stopped.is_set():
                    return done
                self.render(path, state)
                done += 1
        return done

    def run(self) -> None:
        seen = None
        while not self.stopped.is_set():
            try:
                # a new run, or a new day (the presets' periods moved)
                current = (self.data.snapshot(), today())
                if current != seen and current[0] > 0:
                    t0 = time.perf_counter()
                    with self._turn():
                        t1 = time.perf_counter()
                        views = self.warm_once()
                    seen = current
                    self.rounds += 1
                    log.info("dashboard views warmed", extra={
                        "views": views, "seconds": round(time.perf_counter() - t1, 3),
                        "waited_seconds": round(t1 - t0, 3), "snapshot": current[0]})
            except Exception:  # noqa: BLE001 - try again at the next interval
                log.warning("dashboard warm-up failed", exc_info=True)
            self.stopped.wait(self.interval)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """Wait for the other workers' warm-up to finish (no lock file: no waiting)."""
        if self.lock is None:
            yield
            return
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            yield
