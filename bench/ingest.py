"""Ingestion benchmark (docs/ARCHITECTURE.md "Performance budget", first two rows), with baseline.

    python bench/ingest.py                  # SQLite ingest store, 20 s per phase
    python bench/ingest.py --quick          # about a minute: a sanity run
    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/esco_bench

It builds a temporary store (bundled catalogue, a few implementers, rate limit 10**9), starts
gunicorn with the options of `esco-kpi serve` serving the real collector and a bare endpoint
(bench/bare_app.py), drives it from N client processes sending pre-built gzip batches of
`concept_used` events over keep-alive connections, prints a table, appends it to
bench/RESULTS.md, then profiles the real endpoint in-process at batch 1,000.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import http.client
import io
import itertools
import multiprocessing as mp
import os
import platform
import pstats
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# The project's root first: bench/dashboard.py must not hide the dashboard package from
# scripts started in this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
import yaml

from esco_kpi.server import default_workers  # noqa: E402 - after the path above

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
TARGET_EPS = 50_000
TARGET_EPS_PG = 25_000
PACED = "events@1000 paced"
TARGET_RATIO = 0.3
TARGET_P99_MS = 100.0

LANGUAGES = {"en": 30, "de": 12, "fr": 10, "es": 8, "it": 6, "nl": 5, "pl": 5, "pt": 4,
             "sv": 3, "en-GB": 2, "de-AT": 1, "cs": 1, "da": 1, "fi": 1, "el": 1, "hu": 1,
             "ro": 1, "sk": 1, "sl": 1, "bg": 1, "hr": 1, "lt": 1, "lv": 1, "et": 1, "no": 1,
             "is": 1, "mt": 1, "ga": 1, "uk": 1, "ar": 1}
CONTEXTS = {"job_vacancy": 35, "cv": 25, "search": 20, "matching": 10, "training": 4,
            "statistics": 3, "other": 3, None: 10}


# ---------------------------------------------------------------------------------------------
# Machine and load


def loadavg() -> float:
    return os.getloadavg()[0]


def cpu_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live descendants."""
    total = 0.0
    stack = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while stack:
        p = stack.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            parts = stat[stat.rindex(")") + 2:].split()
            total += (int(parts[11]) + int(parts[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (OSError, ValueError):
            continue
    return total


def machine() -> dict:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        import duckdb
        duck = duckdb.__version__
    except ImportError:  # pragma: no cover
        duck = "absent"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=HERE.parent, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "collector", "kpi"],
                               capture_output=True, text=True, cwd=HERE.parent,
                               check=False).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
    except OSError:  # pragma: no cover
        head, dirty = "unknown", []
    return {"nproc": os.cpu_count(), "cpu": model, "git": head,
            "dirty": ", ".join(dirty) or "none", "python": platform.python_version(),
            "duckdb": duck, "sqlite": sqlite3.sqlite_version,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def worker_pids(server_pid: int) -> list[int]:
    """The gunicorn workers: the children of the master process."""
    found = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return sorted(found)


def connections_per_worker(server_pid: int, port: int) -> str:
    """How the clients' keep-alive connections are spread over the workers, e.g. "3+1": a
    connection stays with the worker that accepted it, and one worker's threads share one
    GIL, so an uneven spread makes one worker the bottleneck."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "01" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    counts = []
    try:
        for pid in worker_pids(server_pid):
            n = 0
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    n += os.readlink(fd) in inodes
                except OSError:
                    continue
            counts.append(n)
    except OSError:
        return "?"
    return "+".join(str(n) for n in sorted(counts, reverse=True)) or "?"


def ingest_commits(port: int) -> tuple[float, float] | None:
    """(transactions, requests) of the collector's ingest commits so far, from /metrics."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        for name in ("count", "sum"):
            if line.startswith(f"esco_kpi_ingest_commit_requests_{name} "):
                found[name] = float(line.split()[1])
    return (found["count"], found["sum"]) if len(found) == 2 else None


# ---------------------------------------------------------------------------------------------
# Events


def _weighted(table: dict) -> tuple[list, list[float]]:
    keys = list(table)
    return keys, list(itertools.accumulate(table[k] for k in keys))


class EventMaker:
    """Realistic concept_used events as JSON bytes: Zipf over the catalogue, mixed languages."""

    def __init__(self, uris: list[str], seed: int):
        self.rng = random.Random(seed)
        shuffled = list(uris)
        random.Random(1234).shuffle(shuffled)  # same popularity order in every client
        self.uris = [u.encode() for u in shuffled]
        self.uri_cum = list(itertools.accumulate(1.0 / (r ** 1.07)
                                                 for r in range(1, len(shuffled) + 1)))
        self.langs, self.lang_cum = _weighted(LANGUAGES)
        self.langs = [lang.encode() for lang in self.langs]
        self.contexts, self.context_cum = _weighted(CONTEXTS)
        self.contexts = [b"" if c is None else b',"context":"%s"' % c.encode()
                         for c in self.contexts]
        today = datetime.now(UTC).date()
        self.days = [(today - timedelta(days=n)).isoformat().encode() for n in range(0, 8)]

    def body(self, prefix: str, start: int, n: int) -> bytes:
        """`{"events": [...]}` with n events, ids prefix + hex(start..start+n), gzipped."""
        rng = self.rng
        uris = rng.choices(self.uris, cum_weights=self.uri_cum, k=n)
        langs = rng.choices(self.langs, cum_weights=self.lang_cum, k=n)
        ctxs = rng.choices(self.contexts, cum_weights=self.context_cum, k=n)
        pre = prefix.encode()
        parts = []
        for i in range(n):
            day = self.days[int(rng.random() * rng.random() * 8)]
            r = rng.random()
            when = day if r < 0.5 else b"%sT%02d:%02d:%02dZ" % (
                day, rng.randrange(24), rng.randrange(60), rng.randrange(60))
            extra = b""
            if r > 0.9:
                extra = b',"count":%d' % rng.randrange(2, 50)
            elif r > 0.75:
                extra = b',"esco_version":"1.2.0"'
            parts.append(
                b'{"event_id":"%s%x","type":"concept_used","occurred_at":"%s",'
                b'"concept_uri":"%s","language":"%s"%s%s}'
                % (pre, start + i, when, uris[i], langs[i], ctxs[i], extra))
        raw = b'{"events":[' + b",".join(parts) + b"]}"
        # Level 1 keeps body generation cheap; inflating costs the server the same.
        return gzip.compress(raw, compresslevel=1)


# ---------------------------------------------------------------------------------------------
# Load generator (client processes)


def client_main(cfg: dict, barrier, go, start_at, out) -> None:
    """One client: pre-build bodies, warm up, then send as fast as answers come back."""
    maker = EventMaker(cfg["uris"], cfg["seed"])
    batch, n_bodies = cfg["batch"], cfg["bodies"]
    prefix = cfg["prefix"]
    bodies = [maker.body(prefix, i * batch, batch) for i in range(n_bodies)]
    warm = [maker.body(prefix + "w", i * batch, batch) for i in range(cfg["warmup"])]
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
               "Authorization": f"Bearer {cfg['key']}", "Connection": "keep-alive"}
    conn = http.client.HTTPConnection("127.0.0.1", cfg["port"], timeout=120)

    def send(body: bytes) -> tuple[int, bytes]:
        conn.request("POST", cfg["path"], body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    for body in warm:
        send(body)
    barrier.wait()
    go.wait()
    while time.monotonic() < start_at.value:
        time.sleep(0.001)
    end = start_at.value + cfg["duration"]
    # Paced (open loop): each client sends on a fixed schedule, the clients' schedules
    # staggered; a request's latency counts from when it was due, so that a late answer also
    # delays the requests queued behind it in the figures (no coordinated omission).
    interval = cfg.get("interval")
    due = start_at.value + cfg.get("offset", 0.0)
    cpu0 = time.process_time()
    latencies: list[float] = []
    ok_events = bad = 0
    first_error = None
    exhausted = False
    i = 0
    cycle = cfg["cycle"]
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if i >= len(bodies):
            if not cycle:
                exhausted = True
                break
            i = 0
        if interval:
            if due >= end:
                break
            if due > now:
                time.sleep(due - now)
            t0, due = due, due + interval
            status, data = send(bodies[i])
            latencies.append(time.monotonic() - t0)
        else:
            t0 = time.perf_counter()
            status, data = send(bodies[i])
            latencies.append(time.perf_counter() - t0)
        i += 1
        if status == 202:
            ok_events += orjson.loads(data).get("accepted", 0)
        else:
            bad += 1
            first_error = first_error or f"{status} {data[:200]!r}"
    finished = time.monotonic()
    out.put({"latencies": latencies, "events": ok_events, "bad": bad, "error": first_error,
             "finished": finished, "exhausted": exhausted,
             "cpu": time.process_time() - cpu0})
    conn.close()


def run_phase(name: str, path: str, batch: int, args, port: int, key: str, uris: list[str],
              server_pid: int, cycle: bool, tag: str, rate: float | None = None) -> dict:
    """One timed phase: returns its figures. With `rate` (events/s offered by all clients
    together), the clients send on a schedule instead of as fast as answers come back."""
    ctx = mp.get_context("fork")
    cap = min(args.max_rate, 5_000 * batch)  # events/s a client set can be fed at most
    interval = batch * args.clients / rate if rate else None
    per_client = max(8, -(-int(cap * args.duration) // (batch * args.clients)))
    if interval:
        per_client = int(args.duration / interval) + 2  # what its schedule sends, and more
    if cycle:
        per_client = min(per_client, 32)
    barrier = ctx.Barrier(args.clients + 1)
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    out = ctx.Queue()
    procs = []
    for c in range(args.clients):
        cfg = {"uris": uris, "seed": hash((tag, c)) & 0xFFFF, "batch": batch,
               "bodies": per_client, "prefix": f"{tag}c{c}-", "warmup": 3, "key": key,
               "port": port, "path": path, "duration": args.duration, "cycle": cycle,
               "interval": interval, "offset": interval * c / args.clients if interval else 0.0}
        p = ctx.Process(target=client_main, args=(cfg, barrier, go, start_at, out))
        p.start()
        procs.append(p)
    barrier.wait(timeout=600)
    time.sleep(0.5)
    spread = connections_per_worker(server_pid, port)
    commits0 = ingest_commits(port)
    load0 = loadavg()
    busy0, ours0 = cpu_busy_seconds(), process_tree_cpu(server_pid)
    start_at.value = time.monotonic() + 0.1
    go.set()
    results = [out.get(timeout=args.duration + 300) for _ in procs]
    for p in procs:
        p.join()
    finished = max(r["finished"] for r in results)
    busy1, ours1 = cpu_busy_seconds(), process_tree_cpu(server_pid)
    load1 = loadavg()
    commits1 = ingest_commits(port)
    per_commit = None
    if commits0 and commits1 and commits1[0] > commits0[0]:
        per_commit = (commits1[1] - commits0[1]) / (commits1[0] - commits0[0])
    wall = finished - start_at.value
    lat = sorted(x for r in results for x in r["latencies"])
    events = sum(r["events"] for r in results)
    client_cpu = sum(r["cpu"] for r in results)
    server_cpu = ours1 - ours0
    foreign = max(0.0, (busy1 - busy0) - server_cpu - client_cpu)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    row = {"phase": name, "path": path, "batch": batch, "clients": args.clients,
           "seconds": round(wall, 1), "requests": len(lat), "events": events,
           "eps": events / wall if wall > 0 else 0.0, "p50": pct(0.50), "p95": pct(0.95),
           "p99": pct(0.99), "max": lat[-1] * 1000 if lat else float("nan"),
           "bad": sum(r["bad"] for r in results),
           "error": next((r["error"] for r in results if r["error"]), None),
           "exhausted": any(r["exhausted"] for r in results),
           "server_cores": server_cpu / wall, "client_cores": client_cpu / wall,
           "foreign_cores": foreign / wall, "load0": load0, "load1": load1,
           "spread": spread, "per_commit": per_commit, "offered": rate}
    print(f"  {name:<22} {row['eps']:>10,.0f} ev/s  p50 {row['p50']:7.1f}  p99 "
          f"{row['p99']:7.1f} ms  req {row['requests']}  non-202 {row['bad']}  "
          f"server {row['server_cores']:.2f} cores, others {row['foreign_cores']:.2f}  "
          f"load {load0:.2f}->{load1:.2f}  conns {spread}"
          + (f"  req/commit {per_commit:.2f}" if per_commit else "")
          + ("  [bodies exhausted]" if row["exhausted"] else ""), flush=True)
    if row["error"]:
        print(f"    first error: {row['error']}", flush=True)
    return row


# ---------------------------------------------------------------------------------------------
# Store and server


def setup_store(folder: Path, args) -> tuple[Path, list[str], list[str]]:
    """Config, store with the bundled catalogue and implementers: (config, keys, uris)."""
    from sqlalchemy import select

    from kpi.catalogue.load import load_bundled
    from kpi.settings import load_settings
    from kpi.store.db import concepts, init_store, make_engine
    from kpi.store.registry import add_implementer

    tree = {
        "storage": {"data_dir": "var", "database_url": args.database_url},
        "server": {"threads": args.threads, "workers": args.workers},
        "ingest": {"rate_limit_events_per_minute": 10**9},
        "logging": {"level": "WARNING"},
    }
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(tree))
    settings = load_settings(config)
    engine = make_engine(settings)
    init_store(engine)
    load_bundled(engine)
    keys = [add_implementer(engine, f"Bench portal {i}", country, "job_portal")[1]
            for i, country in enumerate(("DE", "FR", "ES", "IT"))]
    with engine.connect() as conn:
        uris = sorted(conn.execute(select(concepts.c.uri).where(
            concepts.c.concept_type.in_(("occupation", "skill")))).scalars().unique())
    engine.dispose()
    return config, keys, uris


def start_server(config: Path, port: int, workers: int, bare_file: Path, log: Path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    handle = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "bare_app.py"), "--config", str(config), "--port", str(port),
         "--workers", str(workers), "--bare-file", str(bare_file)],
        stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=config.parent,
        start_new_session=True)
    from esco_kpi.server import wait_until_up

    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc, log)
    except RuntimeError as error:
        stop_server(proc)
        raise SystemExit(str(error)) from None
    return proc


def stop_server(proc) -> None:
    """SIGTERM, SIGKILL after 20 s, then whatever is left of its process group."""
    from tests.support import stop_process

    stop_process(proc)


# ---------------------------------------------------------------------------------------------
# Profile of the real endpoint, in-process


def profile_real(config: Path, key: str, uris: list[str], batches: int) -> dict:
    """Where a batch of 1,000 goes in the real endpoint: stage timings and a cProfile."""
    from werkzeug.test import EnvironBuilder

    from collector.app import create_app
    from collector.body import parse_events, read_body
    from collector.classify import classify
    from collector.ingest import summary
    from collector.schemas import EventSchema
    from collector.store import store
    from kpi.settings import load_settings
    from kpi.store.registry import authenticate

    settings = load_settings(config)
    app = create_app(settings)
    engine = app.extensions["esco_store"]
    maker = EventMaker(uris, 99)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
               "Authorization": f"Bearer {key}"}
    run = uuid.uuid4().hex[:6]

    def environs(tag: str, n: int) -> list[dict]:
        return [EnvironBuilder(path="/v1/events", method="POST", headers=headers,
                               data=maker.body(f"{run}{tag}-", i * 1000, 1000)).get_environ()
                for i in range(n)]

    def call(environ) -> int:
        status = []
        result = app(environ, lambda s, h, e=None: status.append(s))
        b"".join(result)
        if hasattr(result, "close"):
            result.close()
        return int(status[0].split()[0])

    for env in environs("w", 5):
        assert call(env) == 202
    # 1. whole requests, no profiler
    envs = environs("t", batches)
    whole = []
    for env in envs:
        t0 = time.perf_counter()
        assert call(env) == 202
        whole.append(time.perf_counter() - t0)
    whole_ms = statistics.median(whole) * 1000
    # 2. the same pipeline stage by stage, no profiler
    bodies = [maker.body(f"{run}s-", i * 1000, 1000) for i in range(batches)]
    stages = {k: [] for k in ("authenticate", "read_body (inflate)", "parse_events (orjson)",
                               "classify (validation per event)", "store (SQL + commit)",
                               "summary + jsonify")}
    catalogue = app.extensions["esco_catalogue"].current()
    today = datetime.now(UTC).date()
    with app.test_request_context():
        from flask import jsonify
        for body in bodies:
            t = time.perf_counter()
            imp = authenticate(engine, key)
            t1 = time.perf_counter()
            raw = read_body(io.BytesIO(body), len(body), True, settings["ingest.max_body_bytes"])
            t2 = time.perf_counter()
            parsed = parse_events(raw, "json", 1000)
            t3 = time.perf_counter()
            result = classify(parsed.items, today, settings["ingest.max_age_days"], catalogue)
            t4 = time.perf_counter()
            stored = store(engine, imp.id, result, today, 10**9)
            t5 = time.perf_counter()
            jsonify(summary(result, stored)).get_data()
            t6 = time.perf_counter()
            for name, dt in zip(stages, (t1 - t, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5),
                                strict=True):
                stages[name].append(dt)
    stages = {k: statistics.median(v) * 1000 for k, v in stages.items()}
    # 3. the per-event validators alone
    sample = parsed.items
    schema = EventSchema(today=today)
    t = time.perf_counter()
    for _ in range(5):
        for item in sample:
            schema.load(item)
    load_us = (time.perf_counter() - t) * 1e6 / (5 * len(sample))
    fast_us = None
    try:
        from collector.fastpath import FastLoader

        fast = FastLoader(today, settings["ingest.max_age_days"])
        t = time.perf_counter()
        for _ in range(5):
            for item in sample:
                assert fast.load(item) is not None
        fast_us = (time.perf_counter() - t) * 1e6 / (5 * len(sample))
    except ImportError:
        pass
    # 4. the SQL floor: the same rows through sqlite3 executemany in a scratch copy of the schema
    floor_ms = None
    if engine.dialect.name == "sqlite":
        floor_ms = sqlite_floor(config.parent / "scratch.sqlite3", result.rows, imp.id, today)
    # 5. cProfile over whole requests
    envs = environs("p", batches)
    prof = cProfile.Profile()
    prof.enable()
    for env in envs:
        call(env)
    prof.disable()
    engine.dispose()
    return {"whole_ms": whole_ms, "stages": stages, "load_us": load_us, "fast_us": fast_us,
            "floor_ms": floor_ms,
            "profile": summarise_profile(prof, batches), "batches": batches,
            "dialect": engine.dialect.name}


def sqlite_floor(path: Path, rows: list[dict], implementer_id: int, today: date) -> float:
    """ms for INSERT OR IGNORE of 1,000 rows + commit with raw sqlite3 (WAL, synchronous=FULL)."""
    from sqlalchemy import create_engine

    from kpi.store.db import metadata

    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=full")
    cols = ("implementer_id", "event_id", "type", "day", "concept_uri", "esco_version",
            "language", "context", "count", "status", "received_on")
    sql = (f"insert or ignore into events ({', '.join(cols)}) "
           f"values ({', '.join('?' * len(cols))})")
    times = []
    for rep in range(20):
        data = [(implementer_id, f"{rep}-{r['event_id']}", r["type"], r["day"].isoformat(),
                 r["concept_uri"], r["esco_version"], r["language"], r["context"], r["count"],
                 r["status"], today.isoformat()) for r in rows]
        t = time.perf_counter()
        db.execute("begin immediate")
        db.executemany(sql, data)
        db.execute("commit")
        times.append(time.perf_counter() - t)
    db.close()
    return statistics.median(times) * 1000


PROFILE_GROUPS = (
    # label, (file fragment, function name) matched against pstats keys; inclusive time
    ("whole request (Flask.wsgi_app)", ("flask/app.py", "wsgi_app")),
    ("authenticate (key lookup)", ("kpi/store/registry.py", "authenticate")),
    ("CatalogueCache.current", ("collector/app.py", "current")),
    ("read_body (inflate)", ("collector/body.py", "read_body")),
    ("parse_events (orjson)", ("collector/body.py", "parse_events")),
    ("classify", ("collector/classify.py", "classify")),
    ("  FastLoader.load", ("collector/fastpath.py", "load")),
    ("  marshmallow Schema.load (fallback)", ("marshmallow/schema.py", "load")),
    ("  privacy personal_data_reason", ("collector/privacy.py", "personal_data_reason")),
    ("  _quarantine_check", ("collector/classify.py", "_quarantine_check")),
    ("store", ("collector/store.py", "store")),
    ("  take_tokens_each (rate limit)", ("collector/ratelimit.py", "take_tokens_each")),
    ("  Connection.execute (SQLAlchemy statements)", ("sqlalchemy/engine/base.py", "execute")),
    ("  _claim (look-up of stored ids)", ("collector/store.py", "_claim")),
    ("  _values (SQLite rows)", ("collector/store.py", "_values")),
    ("  _insert_sqlite", ("collector/store.py", "_insert_sqlite")),
    ("  _insert_pg", ("collector/store.py", "_insert_pg")),
    ("  bump_outcome_counts", ("kpi/store/counters.py", "bump_outcome_counts")),
    ("  driver execute/executemany", ("~", "<method 'execute")),
    ("  commit (driver; fsync)", ("~", "<method 'commit")),
    ("summary", ("collector/ingest.py", "summary")),
    ("jsonify", ("flask/json/__init__.py", "jsonify")),
    ("metrics (prometheus)", ("prometheus_client/metrics.py", "inc")),
)


def summarise_profile(prof: cProfile.Profile, batches: int) -> dict:
    stats = pstats.Stats(prof)
    raw = stats.stats  # (file, line, func) -> (cc, nc, tt, ct, callers)
    groups = []
    for label, (frag, func) in PROFILE_GROUPS:
        total = 0.0
        for (file, _line, name), (_cc, _nc, tt, ct, _callers) in raw.items():
            if func.startswith("<"):
                if file == frag and name.startswith(func):
                    total += tt
            elif file.endswith(frag) and name == func:
                total += ct
        groups.append((label, total * 1000 / batches))
    top = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:20]
    top_rows = []
    for (file, line, name), (_cc, nc, tt, ct, _callers) in top:
        where = name if file == "~" else f"{_short(file)}:{line} {name}"
        top_rows.append((where, nc // batches, tt * 1000 / batches, ct * 1000 / batches))
    return {"groups": groups, "top": top_rows}


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# ---------------------------------------------------------------------------------------------
# Report


HEADER = """# Ingestion benchmark results (`bench/ingest.py`)

Each run appends a section: the command, the machine, the figures, and a profile of the real
endpoint. Columns of the figures table:

- **phase**: `bare@1000` is the baseline endpoint of the same gunicorn (inflate, orjson parse,
  append to a file, fsync, 202); `events@N` is the real `POST /v1/events` with gzip batches of N
  `concept_used` events for one implementer (Zipf over the real catalogue, unique event_ids);
  `(rerun)` rows repeat the headline figures at the end of the run.
- **events/s**: events acknowledged with 202 (for `/v1/events`: `accepted` of the responses)
  divided by the wall time of the phase.
- **p50 / p95 / p99 / max ms**: latency of one batch request seen by the client (send to
  response read), over every request of the phase. In a closed loop (every phase but the
  paced one) each client sends its next batch as soon as the answer arrives, so the server is
  saturated and the latency is mostly queueing: p50 is about clients / requests per second.
- **events@1000 paced**: the same batches offered at a fixed rate (default: the store's
  throughput target), each client on a schedule, staggered; latency counts from when a
  request was due, so a slow answer also shows in the requests waiting behind it. This is the
  latency a portal sees while the collector carries the target load.
- **ratio**: for `events@1000`, events/s over the bare endpoint's (target >= 0.3); for the
  batch-size curve, events/s over `events@1000` of the same run.
- **non-202**: requests answered with anything else (must be 0).
- **server / client / others cores**: CPU used during the phase by gunicorn (master and
  workers), by the load generator, and by everything else on the machine (other people's
  work: when this is high, the figures are pessimistic).
- **load**: 1-minute load average at the start and end of the phase.
- **conns per worker**: how the clients' keep-alive connections were spread over the gunicorn
  workers (a connection stays with one worker; "4+0" means one worker, one GIL, did all).
- **requests per commit**: requests written per ingest transaction (group commit), from the
  collector's `esco_kpi_ingest_commit_requests` metric.

Targets (docs/ARCHITECTURE.md): >= 50,000 events/s at batch 1,000 (PostgreSQL >= 25,000);
>= 0.3 x bare; p99 per batch < 100 ms (at the throughput target: the paced phase; at saturation
too, for the record).
"""


def table(rows: list[dict]) -> str:
    out = ["| phase | events/s | p50 ms | p95 ms | p99 ms | max ms | ratio | requests | "
           "non-202 | server / client / others cores | load start -> end | conns per worker | "
           "requests per commit |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- "
           "| ---: |"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""
        flag = " (bodies exhausted)" if r["exhausted"] else ""
        out.append(f"| {r['phase']}{flag} | {r['eps']:,.0f} | {r['p50']:.1f} | {r['p95']:.1f} | "
                   f"{r['p99']:.1f} | {r['max']:.1f} | {ratio} | {r['requests']:,} | "
                   f"{r['bad']} | {r['server_cores']:.2f} / {r['client_cores']:.2f} / "
                   f"{r['foreign_cores']:.2f} | {r['load0']:.2f} -> {r['load1']:.2f} | "
                   f"{r.get('spread', '')} | "
                   + (f"{r['per_commit']:.2f}" if r.get("per_commit") else "") + " |")
    return "\n".join(out)


def target_eps(args) -> int:
    return TARGET_EPS_PG if args.database_url else TARGET_EPS


def verdict(rows: list[dict], eps_target: int = TARGET_EPS) -> list[str]:
    """The budget's checks: throughput and the ratio at saturation (events@1000), p99 at the
    throughput target (the paced phase), and p99 at saturation for the record."""
    lines = []
    for suffix in ("", " (rerun)"):
        real = next((r for r in rows if r["phase"] == f"events@1000{suffix}"), None)
        paced = next((r for r in rows if r["phase"] == f"{PACED}{suffix}"), None)
        checks = []
        if real is not None:
            checks += [
                (f"events/s {real['eps']:,.0f} >= {eps_target:,}", real["eps"] >= eps_target),
                (f"ratio to bare {real.get('ratio') or 0:.2f} >= {TARGET_RATIO}",
                 (real.get("ratio") or 0) >= TARGET_RATIO),
                (f"p99 at saturation ({real['clients']} clients in a closed loop) "
                 f"{real['p99']:.1f} ms < {TARGET_P99_MS:.0f} ms", real["p99"] < TARGET_P99_MS),
            ]
        if paced is not None:
            kept_up = paced["eps"] >= 0.97 * paced["offered"]
            checks.append((f"p99 at {paced['offered']:,.0f} events/s offered {paced['p99']:.1f} ms "
                           f"< {TARGET_P99_MS:.0f} ms, all of it served "
                           f"({paced['eps']:,.0f} events/s)",
                           paced["p99"] < TARGET_P99_MS and kept_up and paced["bad"] == 0))
        if checks:
            lines.append(f"events@1000{suffix}: " + "; ".join(
                f"{text} {'PASS' if ok else 'FAIL'}" for text, ok in checks))
    return lines


def profile_text(p: dict) -> str:
    total = p["whole_ms"]
    lines = [f"Real endpoint in-process ({p['dialect']}), batches of 1,000, "
             f"{p['batches']} batches per measurement, one thread:", "",
             f"- whole request through the WSGI app, no profiler, median: **{total:.1f} ms/batch** "
             f"(= {1000 / total * 1000:,.0f} events/s per core)",
             f"- marshmallow `EventSchema.load` alone: {p['load_us']:.1f} µs/event "
             f"(= {p['load_us']:.1f} ms per batch of 1,000)"]
    if p.get("fast_us") is not None:
        lines.append(f"- `collector.fastpath.FastLoader.load` alone: {p['fast_us']:.1f} µs/event "
                     f"(= {p['fast_us']:.1f} ms per batch of 1,000)")
    if p["floor_ms"] is not None:
        lines.append(f"- SQL floor: the same 1,000 rows by raw sqlite3 `executemany` "
                     f"(INSERT OR IGNORE) + commit, WAL, synchronous=FULL: "
                     f"{p['floor_ms']:.1f} ms")
    lines += ["", "Stage timings (no profiler, median per batch; the pipeline of `_post_events` "
              "called step by step):", "",
              "| stage | ms / batch | share |", "| --- | ---: | ---: |"]
    stage_sum = sum(p["stages"].values())
    for name, ms in p["stages"].items():
        lines.append(f"| {name} | {ms:.2f} | {ms / total:.0%} |")
    lines.append(f"| Flask/werkzeug/other (whole - stages) | {total - stage_sum:.2f} | "
                 f"{(total - stage_sum) / total:.0%} |")
    lines += ["", "cProfile, inclusive time per batch (the profiler inflates Python-heavy "
              "code, so read shares, not absolute figures):", "",
              "| group | ms / batch (profiled) |", "| --- | ---: |"]
    for label, ms in p["profile"]["groups"]:
        lines.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {ms:.2f} |")
    lines += ["", "Top 20 functions by own time (profiled):", "",
              "| function | calls / batch | own ms / batch | cumulative ms / batch |",
              "| --- | ---: | ---: | ---: |"]
    for where, calls, tt, ct in p["profile"]["top"]:
        lines.append(f"| `{where}` | {calls:,} | {tt:.2f} | {ct:.2f} |")
    return "\n".join(lines)


def append_results(command: str, info: dict, args, rows: list[dict], prof: dict | None) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(HEADER)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    text = [
        "", f"## Run {info['date']} ({backend}{', quick' if args.quick else ''})", "",
        f"Command: `{command}`", "",
        f"Code: git {info['git']}, uncommitted in collector/ kpi/: {info['dirty']}.", "",
        f"Machine: nproc {info['nproc']}, {info['cpu']}; Python {info['python']}, "
        f"duckdb {info['duckdb']}, SQLite {info['sqlite']}. gunicorn gthread "
        f"{args.workers} workers x {args.threads} threads (options of `esco-kpi serve`), "
        f"{args.clients} client processes, {args.duration:g} s per phase. "
        f"Load average at start {info['load_start']:.2f}, at end {info['load_end']:.2f}.",
        "", table(rows), "", *[f"- {v}" for v in verdict(rows, target_eps(args))],
    ]
    if prof:
        text += ["", "### Where the time goes (events@1000)", "", profile_text(prof)]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(text) + "\n")


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Ingestion benchmark with its bare baseline.")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=4, help="load generator processes")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers (default: serve's, one per core plus one)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL of a database the benchmark creates and drops")
    parser.add_argument("--quick", action="store_true", help="a ~1-minute sanity run")
    parser.add_argument("--max-rate", type=int, default=200_000,
                        help="events/s the pre-built bodies can feed at most (per phase)")
    parser.add_argument("--profile-batches", type=int, default=200)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--rerun", choices=("auto", "always", "never"), default="auto",
                        help="repeat the headline phases at the end (auto: if others used "
                             "> 0.3 cores or the load average was > 1.5 at their start)")
    parser.add_argument("--paced-rate", type=int, default=None,
                        help=f"events/s offered in the '{PACED}' phase (default: the store's "
                             f"throughput target, {TARGET_EPS:,} or {TARGET_EPS_PG:,} on "
                             "PostgreSQL)")
    parser.add_argument("--phases",
                        default=f"bare@1000,events@1000,{PACED},events@100,events@10,events@1",
                        help="comma-separated subset of the phases to run")
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    args.workers = args.workers or default_workers()
    if args.quick:
        args.duration = min(args.duration, 5.0)
        args.profile_batches = min(args.profile_batches, 40)
    command = "python bench/ingest.py " + " ".join(sys.argv[1:] if argv is None else argv)
    info = machine()
    info["load_start"] = loadavg()
    print(f"machine: {info}", flush=True)
    from tests.support import create_pg_database, drop_pg_database, free_port

    folder = Path(tempfile.mkdtemp(prefix="esco-bench-"))
    server = None
    pg = None
    try:
        if args.database_url:
            create_pg_database(args.database_url)
            pg = args.database_url
        t = time.perf_counter()
        config, keys, uris = setup_store(folder, args)
        print(f"store ready in {time.perf_counter() - t:.1f} s ({len(uris)} concept URIs), "
              f"data in {folder}", flush=True)
        port = free_port()
        server = start_server(config, port, args.workers, folder / "bare.jsonl",
                              folder / "server.log")
        run = uuid.uuid4().hex[:4]
        plan = [("bare@1000", "/bare/events", 1000, True, None),
                ("events@1000", "/v1/events", 1000, False, None),
                (PACED, "/v1/events", 1000, False, args.paced_rate or target_eps(args)),
                ("events@100", "/v1/events", 100, False, None),
                ("events@10", "/v1/events", 10, False, None),
                ("events@1", "/v1/events", 1, False, None)]
        wanted = set(args.phases.split(","))
        plan = [step for step in plan if step[0] in wanted]
        rows: list[dict] = []
        print("phases:", flush=True)
        for n, (name, path, batch, cycle, rate) in enumerate(plan):
            rows.append(run_phase(name, path, batch, args, port, keys[0], uris, server.pid,
                                  cycle, f"{run}p{n}", rate))
        headlines = ("bare@1000", "events@1000", PACED)
        headline_plan = [step for step in plan if step[0] in headlines]
        headline = [r for r in rows if r["phase"] in headlines]
        busy = any(r["foreign_cores"] > 0.3 or r["load0"] > 1.5 for r in headline)
        if args.rerun == "always" or (args.rerun == "auto" and busy):
            print("rerunning the headline phases", flush=True)
            for n, (name, path, batch, cycle, rate) in enumerate(headline_plan):
                rows.append(run_phase(f"{name} (rerun)", path, batch, args, port, keys[0], uris,
                                      server.pid, cycle, f"{run}r{n}", rate))
        for suffix in ("", " (rerun)"):
            bare = next((r for r in rows if r["phase"] == f"bare@1000{suffix}"), None)
            real = next((r for r in rows if r["phase"] == f"events@1000{suffix}"), None)
            if bare and real:
                real["ratio"] = real["eps"] / bare["eps"] if bare["eps"] else None
        ref = next((r for r in rows if r["phase"] == "events@1000"), None)
        for r in rows if ref else []:
            if r["phase"] in ("events@100", "events@10", "events@1"):
                r["ratio"] = r["eps"] / ref["eps"] if ref["eps"] else None
        stop_server(server)
        server = None
        prof = None
        if not args.no_profile:
            print("profiling the real endpoint in-process ...", flush=True)
            prof = profile_real(config, keys[1], uris, args.profile_batches)
        info["load_end"] = loadavg()
        print()
        print(table(rows))
        for line in verdict(rows, target_eps(args)):
            print(line)
        if prof:
            print()
            print(profile_text(prof))
        if not args.no_results:
            append_results(command, info, args, rows, prof)
            print(f"\nappended to {RESULTS}")
    finally:
        if server is not None:
            stop_server(server)
        if pg:
            drop_pg_database(pg)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
