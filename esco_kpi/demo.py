"""`esco-kpi demo`: the whole loop on the embedded default, through the real HTTP API.

Initialise the stores, register the demo implementers, start the server, send two quarters of
synthetic events (some invalid, so the data-quality view has something to show), aggregate,
decide a share of the suggestions as two reviewers (so that every review status has something
to show), and keep serving. Event ids are stable and decided items are skipped, so a second run
stores nothing twice.

Ctrl-C (SIGINT), SIGTERM (a service manager, `timeout`) and SIGHUP (a closed terminal) all stop
the demo at once, whatever it is doing, and its server with it: the server runs in a session of
its own (so that a Ctrl-C reaches only the demo, which stops it in order), and nothing else
would stop it.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import requests
from sqlalchemy import select

from esco_kpi.server import spawn_serve, wait_until_up
from kpi.catalogue.load import load_bundled
from kpi.review.decisions import decide, latest_rows, list_items
from kpi.review.items import Item
from kpi.settings import Settings
from kpi.store.db import implementers, init_store, make_engine
from kpi.store.registry import (
    RegistryError,
    add_implementer,
    add_user,
    rotate_key,
    set_password,
    set_role,
)
from kpi.synthetic import DEMO_IMPLEMENTERS, DEMO_TRENDS, TrafficGenerator, split_volume

DEMO_USER = "demo"
# The second reviewer, who decides alongside the demo user (it never logs in: no password).
DEMO_REVIEWER = "demo-editor"
# The demo's decisions: drawn from this seed, so every run (and every machine) decides alike.
REVIEW_SEED = 2026
# How many label and proposal items the demo decides, drawn from the best-evidenced
# DECIDE_POOL times as many of each kind: most items stay open, as in a real review backlog.
DECIDE_QUOTA = {"label": 28, "proposal": 12}
DECIDE_POOL = 3
# The demo's decisions are spread over this many weeks before today.
DECISION_WEEKS = 6
# Shares of the decided items: accepted, rejected, deferred (the rest).
ACCEPT_SHARE, REJECT_SHARE = 0.45, 0.30
REJECT_REASONS = {
    "label": (("too_specific", "only one portal's wording"),
              ("brand_or_product", "a product name, not a label"),
              ("not_a_label", None), ("duplicate", "already a spelling variant")),
    "proposal": (("too_specific", "a specialisation of an existing concept"),
                 ("out_of_scope", "not an occupation or skill"),
                 ("duplicate", None)),
}
ACCEPT_NOTES = ("common in job ads", None, "several portals use it")
DEFER_NOTE = "wait for more portals"
BATCH = 1000
Progress = Callable[[str, int, int], None]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Once a stop signal came, the process ends within this many seconds, even if the main thread
# is stuck in a call that does not return.
STOP_DEADLINE_SECONDS = 20
SERVER_STOP_SECONDS = 10


class Interrupted(RuntimeError):
    """The demo is stopping: raised in the threads that send events."""


class StopSignals:
    """While active, SIGINT, SIGTERM and SIGHUP stop the demo the same way, as Ctrl-C does.

    A stop signal raises KeyboardInterrupt in the main thread, whatever it is doing, and sets
    `stopping` for the other threads; once the demo is cleaning up (`cleaning_up`), further
    signals cannot cut that short. A signal inherited as ignored (SIGINT in a script's
    background job, SIGHUP under nohup) stays ignored; SIGTERM never is. Should the process
    still be alive STOP_DEADLINE_SECONDS after the first signal, a watchdog SIGKILLs the
    server's process group and ends the process.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.stopping = threading.Event()
        self.server: subprocess.Popen | None = None
        self._deferred = False
        self._cleaning = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for number in STOP_SIGNALS:
            current = signal.getsignal(number)
            if current == signal.SIG_IGN and number != signal.SIGTERM:
                continue
            self._previous[number] = current
            signal.signal(number, self._handle)
        return self

    def __exit__(self, *_exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, _frame) -> None:
        if self.received is None:
            self.received = number
            self.stopping.set()
            threading.Thread(target=self._watchdog, name="demo-stop-watchdog",
                             daemon=True).start()
        if not (self._deferred or self._cleaning):
            raise KeyboardInterrupt

    def check(self) -> None:
        """Raise KeyboardInterrupt if a stop signal came (a call may have swallowed it)."""
        if self.received is not None and not self._cleaning:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A signal that comes inside raises nothing: `check()` after it does (while a child
        process starts, so that it is known to the code that stops it)."""
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False

    def cleaning_up(self) -> None:
        self._cleaning = True

    def _watchdog(self) -> None:
        time.sleep(STOP_DEADLINE_SECONDS)
        if self.server is not None:
            _kill_group(self.server.pid, signal.SIGKILL)
        os._exit(1)


def _demo_keys(engine) -> list[str]:
    """A fresh key for each demo implementer (registered on the first run)."""
    keys = []
    with engine.connect() as conn:
        existing = dict(conn.execute(select(implementers.c.name, implementers.c.id)).all())
    for profile in DEMO_IMPLEMENTERS:
        if profile.name in existing:
            # The old demo key stops at once: the demo never leaves spare keys behind.
            keys.append(rotate_key(engine, existing[profile.name], timedelta(0)))
        else:
            keys.append(add_implementer(engine, profile.name, profile.country, profile.sector)[1])
    return keys


def _demo_password(engine) -> str:
    password = secrets.token_urlsafe(9)
    try:
        add_user(engine, DEMO_USER, password, role="reviewer")
    except RegistryError:
        set_password(engine, DEMO_USER, password)
        set_role(engine, DEMO_USER, "reviewer")  # a store from before the review loop
    return password


def _batches(events: Iterator[dict]) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for event in events:
        batch.append(event)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def send(url: str, key: str, batch: list[dict], session: requests.Session,
         stopping: threading.Event | None = None) -> dict:
    """POST one batch the way the README's client does: retry 429, 503 and network errors.

    Once `stopping` is set, no further attempt is made (Interrupted).
    """
    stopping = stopping or threading.Event()
    body = gzip.compress(orjson.dumps({"events": batch}), compresslevel=1)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    for attempt in range(8):
        if stopping.is_set():
            raise Interrupted("the demo is stopping")
        try:
            response = session.post(f"{url}/v1/events", data=body, headers=headers, timeout=60)
        except requests.RequestException:
            stopping.wait(min(2 ** attempt, 10))
            continue
        if response.status_code in (429, 503):
            stopping.wait(min(float(response.headers.get("Retry-After", 1)), 10))
            continue
        return response.json()
    raise RuntimeError("the server kept refusing a batch; see its log")


def send_traffic(url: str, keys: list[str], generator: TrafficGenerator, total: int,
                 progress: Progress | None = None,
                 stopping: threading.Event | None = None) -> Counter:
    """Send `total` synthetic events over HTTP, spread over the implementers.

    Interrupted (KeyboardInterrupt in the calling thread), it returns at once: the batches not
    sent yet are dropped, and those in flight give up at their next attempt.
    """
    stopping = stopping or threading.Event()
    outcome: Counter = Counter()
    work = [(key, batch) for i, (key, profile, n) in enumerate(
        zip(keys, DEMO_IMPLEMENTERS, split_volume(total), strict=True))
        for batch in _batches(generator.events(i, profile, n))]
    done = 0
    sessions: dict[int, requests.Session] = {}

    def one(item: tuple[str, list[dict]]) -> dict:
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        return send(url, item[0], item[1], session, stopping)

    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo-send")
    try:
        for (_, batch), result in zip(work, pool.map(one, work), strict=True):
            for name in ("accepted", "duplicates", "quarantined", "rejected"):
                outcome[name] += result.get(name, 0)
            done += len(batch)
            if progress:
                progress("sending events", done, sum(len(b) for _, b in work))
    except BaseException:
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return outcome


def run_demo(settings: Settings, config: str | None, events: int, port: int | None,
             keep_serving: bool, progress: Progress | None = None,
             echo: Callable[[str], None] = print) -> int:
    """The demo from start to finish; returns the exit code.

    Stopped by SIGINT, SIGTERM or SIGHUP once its server runs, it stops the server and returns
    0; before, the KeyboardInterrupt propagates.
    """
    with StopSignals() as stop:
        return _run_demo(settings, config, events, port, keep_serving, progress, echo, stop)


def _run_demo(settings: Settings, config: str | None, events: int, port: int | None,
              keep_serving: bool, progress: Progress | None, echo: Callable[[str], None],
              stop: StopSignals) -> int:
    engine = make_engine(settings)
    init_store(engine)
    loaded = load_bundled(engine, progress=progress)
    echo("Loaded the bundled ESCO catalogue." if loaded else "ESCO catalogue already loaded.")
    keys = _demo_keys(engine)
    password = _demo_password(engine)
    countries = len({p.country for p in DEMO_IMPLEMENTERS})
    echo(f"Registered {len(keys)} demo implementers in {countries} countries.")
    port = port or settings["server.port"]
    host = settings["server.host"]
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = settings.data_dir / "demo-server.log"
    stop.check()
    with stop.deferred():
        server = stop.server = spawn_serve(config, port, log)
    try:
        stop.check()
        wait_until_up(url, server, log)
        end = datetime.now(UTC).date()
        generator = TrafficGenerator.from_catalogue(engine, end - timedelta(days=181), end,
                                                      planted=DEMO_TRENDS)
        outcome = send_traffic(url, keys, generator, events, progress, stop.stopping)
        echo("Sent {total} events: {accepted} accepted, {duplicates} duplicates, "
             "{quarantined} quarantined, {rejected} rejected.".format(
                 total=sum(outcome.values()), **outcome))
        _aggregate(settings, echo)
        stop.check()
        _decide_suggestions(settings, engine, echo)
        stop.check()
        echo("")
        echo(f"Collector API:  {url}/v1/  (OpenAPI: {url}/v1/openapi.json)")
        echo(f"Metrics:        {url}/metrics")
        if _has_dashboard():
            echo(f"Dashboard:      {url}/dashboard/   login: {DEMO_USER} / {password}")
        if not keep_serving:
            return 0
        echo("Serving; press Ctrl-C to stop.")
        return server.wait()
    except KeyboardInterrupt:
        return 0
    except Exception:
        if stop.received is None:
            raise
        return 0  # a call turned the interrupt into an error of its own (DuckDB does)
    finally:
        stop.cleaning_up()
        stop_server(server)


def stop_server(server: subprocess.Popen) -> None:
    """Stop a server started by spawn_serve, completely: SIGTERM to its process group (the
    master, its workers and the scheduler all stop at once), SIGKILL to whatever of the group
    is left after SERVER_STOP_SECONDS or once the master is gone."""
    if server.poll() is None:
        _kill_group(server.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=SERVER_STOP_SECONDS)
    _kill_group(server.pid, signal.SIGKILL)
    server.wait()


def _kill_group(pgid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, number)


def _aggregate(settings: Settings, echo: Callable[[str], None]) -> None:
    """Aggregate what was sent, waiting for a scheduled run of the server if one is going."""
    from kpi.warehouse.aggregate import AggregationBusy, run_aggregation

    deadline = time.monotonic() + 600
    while True:
        try:
            summary = run_aggregation(settings)
            break
        except AggregationBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    echo(f"Aggregated {summary.events_read} new events into the warehouse "
         f"({summary.days_recomputed} days) in {summary.duration_seconds:.1f} s.")


def _demo_reviewer(engine) -> None:
    """The second reviewer: a user with an unusable random password, for the audit trail."""
    try:
        add_user(engine, DEMO_REVIEWER, secrets.token_urlsafe(24), role="reviewer")
    except RegistryError:
        set_role(engine, DEMO_REVIEWER, "reviewer")


def plan_decisions(items: list[Item], seed: int = REVIEW_SEED
                   ) -> list[tuple[str, str, str | None, str | None, str, int]]:
    """What the demo decides: (decision, reviewer, reason, note, item_id, days_ago) for some of
    the best-evidenced label and proposal items; days_ago spreads the decisions over the last
    DECISION_WEEKS weeks, never before the item was first seen.

    Deterministic: the same items (in list_items' order, best evidence first) give the same
    plan, whatever was decided already, so a second run plans the items the first one decided.
    """
    rng = random.Random(seed)
    chosen: list[Item] = []
    for kind, quota in DECIDE_QUOTA.items():
        pool = [i for i in items if i.kind == kind][:quota * DECIDE_POOL]
        pool.sort(key=lambda i: i.item_id)  # then shuffled: independent of evidence ties
        rng.shuffle(pool)
        chosen += pool[:quota]
    rng.shuffle(chosen)
    accept = round(len(chosen) * ACCEPT_SHARE)
    reject = round(len(chosen) * REJECT_SHARE)
    plan = []
    today = date.today()
    for n, item in enumerate(chosen):
        reviewer = DEMO_USER if n % 2 == 0 else DEMO_REVIEWER
        seen_for = (today - item.first_seen).days if item.first_seen else 0
        days_ago = rng.randint(0, max(0, min(DECISION_WEEKS * 7, seen_for)))
        if n < accept:
            plan.append(("accept", reviewer, None, rng.choice(ACCEPT_NOTES), item.item_id,
                         days_ago))
        elif n < accept + reject:
            reason, note = rng.choice(REJECT_REASONS[item.kind])
            plan.append(("reject", reviewer, reason, note, item.item_id, days_ago))
        else:
            plan.append(("defer", reviewer, None, DEFER_NOTE, item.item_id, days_ago))
    return plan


def _decide_suggestions(settings: Settings, engine, echo: Callable[[str], None]) -> None:
    """Decide a share of the suggestions as two reviewers (kpi.review.decisions.decide), so
    that the review views have accepted, rejected, deferred and open items to show.

    Planned items that a decision already names are skipped, so a second run adds nothing.
    Decisions are dated over the last weeks, as a team working through its queue would have
    taken them (oldest first in the audit trail).
    """
    _demo_reviewer(engine)
    items = list_items(settings, engine)  # read once, handed to every decide() below
    with engine.connect() as conn:
        decided = set(latest_rows(conn))
    plan = [step for step in plan_decisions(items) if step[4] not in decided]
    if not plan:
        echo("No new suggestions to decide (decided on an earlier run, or none sent).")
        return
    # One decide() per day, decision, reviewer, reason and note, each in one transaction.
    batches: dict[tuple[int, str, str, str | None, str | None], list[str]] = {}
    for decision, reviewer, reason, note, item_id, days_ago in plan:
        batches.setdefault((days_ago, decision, reviewer, reason, note), []).append(item_id)
    counts: Counter = Counter()
    now = datetime.now(UTC)
    for (days_ago, decision, reviewer, reason, note), ids in sorted(
            batches.items(), key=lambda b: (-b[0][0], *(part or "" for part in b[0][1:]))):
        decide(settings, engine, ids, decision, reviewer, reason=reason, note=note, items=items,
               decided_at=now - timedelta(days=days_ago))
        counts[decision] += len(ids)
    echo(f"Decided {len(plan)} suggestions as two reviewers: {counts['accept']} accepted, "
         f"{counts['reject']} rejected, {counts['defer']} deferred.")


def _has_dashboard() -> bool:
    try:
        import dashboard.app  # noqa: F401
    except ImportError:
        return False
    return True
