"""`esco-kpi demo`: the whole loop on the embedded default, through the real HTTP API.

Initialise the stores, register the demo implementers, start the server, send two quarters of
synthetic events (some invalid, so the data-quality view has something to show), aggregate,
and keep serving. Event ids are stable, so a second run stores nothing twice.
"""

from __future__ import annotations

import gzip
import os
import secrets
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import orjson
import requests
from sqlalchemy import select

from esco_kpi.server import spawn_serve, wait_until_up
from kpi.catalogue.load import load_bundled
from kpi.settings import Settings
from kpi.store.db import implementers, init_store, make_engine
from kpi.store.registry import RegistryError, add_implementer, add_user, rotate_key, set_password
from kpi.synthetic import DEMO_IMPLEMENTERS, TrafficGenerator, split_volume

DEMO_USER = "demo"
BATCH = 1000
Progress = Callable[[str, int, int], None]


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
        add_user(engine, DEMO_USER, password)
    except RegistryError:
        set_password(engine, DEMO_USER, password)
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


def send(url: str, key: str, batch: list[dict], session: requests.Session) -> dict:
    """POST one batch the way the README's client does: retry 429, 503 and network errors."""
    body = gzip.compress(orjson.dumps({"events": batch}), compresslevel=1)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    for attempt in range(8):
        try:
            response = session.post(f"{url}/v1/events", data=body, headers=headers, timeout=60)
        except requests.RequestException:
            time.sleep(min(2 ** attempt, 10))
            continue
        if response.status_code in (429, 503):
            time.sleep(min(float(response.headers.get("Retry-After", 1)), 10))
            continue
        return response.json()
    raise RuntimeError("the server kept refusing a batch; see its log")


def send_traffic(url: str, keys: list[str], generator: TrafficGenerator, total: int,
                 progress: Progress | None = None) -> Counter:
    """Send `total` synthetic events over HTTP, spread over the implementers."""
    outcome: Counter = Counter()
    work = [(key, batch) for i, (key, profile, n) in enumerate(
        zip(keys, DEMO_IMPLEMENTERS, split_volume(total), strict=True))
        for batch in _batches(generator.events(i, profile, n))]
    done = 0
    sessions: dict[int, requests.Session] = {}

    def one(item: tuple[str, list[dict]]) -> dict:
        import threading

        session = sessions.setdefault(threading.get_ident(), requests.Session())
        return send(url, item[0], item[1], session)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for (_, batch), result in zip(work, pool.map(one, work), strict=True):
            for name in ("accepted", "duplicates", "quarantined", "rejected"):
                outcome[name] += result.get(name, 0)
            done += len(batch)
            if progress:
                progress("sending events", done, sum(len(b) for _, b in work))
    return outcome


def run_demo(settings: Settings, config: str | None, events: int, port: int | None,
             keep_serving: bool, progress: Progress | None = None,
             echo: Callable[[str], None] = print) -> int:
    """The demo from start to finish; returns the exit code."""
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
    server = spawn_serve(config, port, log)
    try:
        wait_until_up(url, server, log)
        end = datetime.now(UTC).date()
        generator = TrafficGenerator.from_catalogue(engine, end - timedelta(days=181), end)
        outcome = send_traffic(url, keys, generator, events, progress)
        echo("Sent {total} events: {accepted} accepted, {duplicates} duplicates, "
             "{quarantined} quarantined, {rejected} rejected.".format(
                 total=sum(outcome.values()), **outcome))
        _aggregate(settings, echo)
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
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


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


def _has_dashboard() -> bool:
    try:
        import dashboard.app  # noqa: F401
    except ImportError:
        return False
    return True
