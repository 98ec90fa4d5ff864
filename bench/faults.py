"""The long fault run: a real `esco-kpi serve` under load while everything goes wrong.

    python bench/faults.py                         # SQLite, 20 kills, ~5 minutes at most
    python bench/faults.py --kills 20 --clients 4 --minutes 5
    python bench/faults.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/esco_kpi_faults_tmp
    python bench/faults.py --append docs/RELIABILITY.md   # also append the result block there

What it does (loopback only; stops by itself):
- a temporary data dir with the bundled catalogue and 3 implementers; with root, the data dir is
  a tmpfs mounted here (unmounted at the end), so that the disk can be filled;
- N client threads send batches of events with unique ids (random concept, language, day and
  `count`), each batch retried with the same ids on 429, 503 and connection errors until it is
  answered, as README's client does;
- meanwhile, one after another at random moments: `--kills` SIGKILLs of the whole `serve`
  process group (restarted at once on the same store), `--outages` periods in which the store
  is unavailable (SQLite: this script holds `BEGIN EXCLUSIVE` on the file; PostgreSQL: the
  server reaches the database through a TCP proxy here, which is cut and restored), and one
  disk-full period (SQLite on the tmpfs: the tmpfs is shrunk to what it holds and the rest
  filled); a second thread runs `esco-kpi aggregate` again and again, SIGKILLing
  `--aggregator-kills` of the runs at a random moment, and `serve`'s own schedule aggregates
  every 30 s;
- at the end: a final aggregation, then the checks: every event answered 202 is stored once,
  nothing else is stored, the outcome counters agree, and the indicators count exactly the
  acknowledged events and the sum of their `count`s; no 202 while the store was unavailable,
  and only 202/429/503 answers ever.

Exit status 0 when every check holds, 1 otherwise. The figures are printed as a Markdown block.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from esco_kpi.server import spawn_serve, wait_until_up  # noqa: E402
from tests.support import (  # noqa: E402  (the helpers the tests use too)
    TcpProxy,
    create_pg_database,
    drop_pg_database,
    free_port,
    kill_group,
    retry_until_answered,
    stop_process,
)

IMPLEMENTERS = (("Faults Portal A", "DE", "job_portal"), ("Faults PES B", "FR", "pes"),
                ("Faults Agency C", "IT", "private_employment"))
LANGUAGES = ("en", "de", "fr", "it", "es", "pl")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# Setup


def try_mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mount a tmpfs on `folder`; None when done, else why not."""
    if os.geteuid() != 0:
        return "not root"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


def setup_store(data_dir: Path, database_url: str | None):
    """The store with the bundled catalogue and the implementers: (settings, keys, uris)."""
    from sqlalchemy import select

    from kpi.catalogue.load import load_bundled
    from kpi.settings import Settings
    from kpi.store.db import concepts, init_store, make_engine
    from kpi.store.registry import add_implementer

    values = {"storage.data_dir": str(data_dir)}
    if database_url:
        values["storage.database_url"] = database_url
    settings = Settings(values)
    engine = make_engine(settings)
    init_store(engine)
    load_bundled(engine)
    added = [add_implementer(engine, *spec) for spec in IMPLEMENTERS]
    keys = [key for _, key in added]
    ids = [implementer.id for implementer, _ in added]
    with engine.connect() as conn:
        uris = list(conn.execute(select(concepts.c.uri).where(
            concepts.c.uri.like("http://data.europa.eu/esco/skill/%")
            | concepts.c.uri.like("http://data.europa.eu/esco/occupation/%"))
            .order_by(concepts.c.uri).limit(40)).scalars())
    engine.dispose()
    return settings, keys, ids, uris


def write_config(folder: Path, data_dir: Path, database_url: str | None) -> Path:
    tree = {
        "storage": {"data_dir": str(data_dir), "database_url": database_url},
        "server": {"workers": 2, "threads": 4},
        "ingest": {"store_timeout_seconds": 1.0, "retry_after_seconds": 1},
        "schedule": {"aggregate_minutes": 0.5},
        "logging": {"level": "WARNING"},
    }
    path = folder / f"config-{random.randrange(1 << 24):06x}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


# --------------------------------------------------------------------------------------------
# The server


class ServerProcess:
    """`esco-kpi serve` in its own session, so that the whole group can be SIGKILLed."""

    def __init__(self, config: Path, log_path: Path):
        self.config = config
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> float:
        """Start and wait for /v1/health; return the seconds it took."""
        started = time.monotonic()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process = spawn_serve(self.config, self.port, self.log_path, env=env, cwd=ROOT)
        wait_until_up(self.url, self.process, self.log_path, timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash)."""
        if self.process is not None:
            kill_group(self.process.pid)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM), then whatever of the group is left."""
        if self.process is not None:
            stop_process(self.process, timeout=30)


# --------------------------------------------------------------------------------------------
# The load


@dataclass
class Window:
    """A period in which the store could not commit (outage) or the disk was full."""

    kind: str
    start: float
    end: float = float("inf")


@dataclass
class Load:
    url: str
    keys: list[str]
    uris: list[str]
    batch: int
    seed: int
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, int] = field(default_factory=dict)  # "implementer/id" -> count
    batches: int = 0
    ambiguous_duplicates: int = 0  # events answered "duplicate" after a lost answer
    statuses: dict[int, int] = field(default_factory=dict)
    connection_errors: int = 0
    bad: list[str] = field(default_factory=list)
    answers: list[tuple[float, float, int, bool]] = field(default_factory=list)
    # batches answered 503 (never a network failure) whose resend was all "duplicate": the
    # refused attempt had committed. (client, started and ended of that last 503)
    stored_despite_503: list[tuple[int, float, float]] = field(default_factory=list)

    def client(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        key_index = number % len(self.keys)
        key = self.keys[key_index]
        today = datetime.now(UTC).date()
        sequence = 0
        while not self.stop.is_set():
            ids = [f"f{number}-b{sequence}-e{i}" for i in range(self.batch)]
            sequence += 1
            events = [{"event_id": i, "type": "concept_used",
                       "occurred_at": (today - timedelta(days=rng.randrange(9))).isoformat(),
                       "concept_uri": rng.choice(self.uris), "language": rng.choice(LANGUAGES),
                       "context": rng.choice(("job_vacancy", "cv", "search")),
                       "count": rng.randint(1, 5)} for i in ids]
            payload = orjson.dumps({"events": events})
            # retried until answered, even after stop is set
            response, ambiguous, last_503 = retry_until_answered(
                self.url, key, payload, deadline=float("inf"), timeout=30,
                pause=lambda answer, rng=rng: self._pause(answer, rng),
                on_answer=self._record)
            status = response.status_code
            if status != 202:
                self.bad.append(f"client {number}: {status} {response.text[:200]}")
                return
            body = response.json()
            fresh, dups = body["accepted"], body["duplicates"]
            if fresh + dups != self.batch or body["quarantined"] or body["rejected"]:
                self.bad.append(f"client {number}: odd summary {body}")
            if not ambiguous and dups and last_503 is not None and dups == self.batch:
                with self.lock:
                    self.stored_despite_503.append((number, *last_503))
            elif not ambiguous and dups:
                self.bad.append(f"client {number}: {dups} duplicates after 429 only")
            if (ambiguous or last_503) and (fresh, dups) not in ((self.batch, 0),
                                                                 (0, self.batch)):
                self.bad.append(f"client {number}: half a batch stored before: {body}")
            with self.lock:
                self.batches += 1
                if ambiguous:
                    self.ambiguous_duplicates += dups
                for e in events:
                    self.acknowledged[f"{key_index}/{e['event_id']}"] = e["count"]

    def _record(self, started: float, ended: float, response: requests.Response) -> None:
        """Every answer, the retried ones included."""
        status = response.status_code
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.answers.append((started, ended, status, "Retry-After" in response.headers))

    def _pause(self, response: requests.Response | None, rng: random.Random) -> float:
        """How long to wait before a resend, after a network failure (None) or a 429/503."""
        if response is None:
            with self.lock:
                self.connection_errors += 1
            return rng.uniform(0.05, 0.2)
        retry_after = response.headers.get("Retry-After")
        if retry_after is None:
            self.bad.append(f"{response.status_code} without Retry-After")
        return min(float(retry_after or 1), 1.0) * rng.uniform(0.2, 1.0)


# --------------------------------------------------------------------------------------------
# Faults


class Aggregations:
    """`esco-kpi aggregate` over and over in a thread; some runs SIGKILLed at a random moment."""

    def __init__(self, config: Path, kills: int, seed: int, log_path: Path):
        self.config = config
        self.kills_wanted = kills
        self.rng = random.Random(seed + 7)
        self.log_path = log_path
        self.stop = threading.Event()
        self.killed = 0
        self.finished = 0
        self.failed = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            kill = self.killed < self.kills_wanted and self.rng.random() < 0.6
            with self.log_path.open("ab") as handle:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "esco_kpi.cli", "--config", str(self.config),
                     "aggregate"],
                    stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
            if kill:
                # Past start-up (about 1-2 s here), into the run.
                deadline = time.monotonic() + self.rng.uniform(1.0, 4.0)
                while time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.02)
                if proc.poll() is None:
                    kill_group(proc.pid)
                    proc.wait()
                    self.killed += 1
                    continue
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                proc.wait()
            if proc.returncode == 0:
                self.finished += 1
            else:
                self.failed += 1  # busy (the scheduler runs), or the store was down
            self.stop.wait(self.rng.uniform(1.0, 4.0))


class SqliteOutage:
    def __init__(self, database: Path):
        self.database = database
        self.conn: sqlite3.Connection | None = None

    def begin(self) -> None:
        self.conn = sqlite3.connect(self.database, timeout=30, isolation_level=None)
        self.conn.execute("begin exclusive")

    def end(self) -> None:
        self.conn.rollback()
        self.conn.close()


class ProxyOutage:
    def __init__(self, proxy: TcpProxy):
        self.proxy = proxy

    def begin(self) -> None:
        self.proxy.stop()

    def end(self) -> None:
        self.proxy.start()


class DiskFull:
    """Shrink the tmpfs to what it holds, fill what is left; undo both afterwards."""

    def __init__(self, folder: Path, size: str):
        self.folder = folder
        self.size = size
        self.filler = folder / "disk-full-filler"

    def begin(self) -> None:
        for extra in (1 << 20, 4 << 20, 16 << 20, 64 << 20):
            used = shutil.disk_usage(self.folder).used
            kib = (used + extra) // 1024
            done = subprocess.run(["mount", "-o", f"remount,size={kib}k", str(self.folder)],
                                  capture_output=True, text=True)
            if done.returncode == 0:
                break
        else:
            raise RuntimeError(f"cannot shrink the tmpfs: {done.stderr.strip()}")
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 4096, 512, 1):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)

    def end(self) -> None:
        self.filler.unlink()
        subprocess.run(["mount", "-o", f"remount,size={self.size}", str(self.folder)],
                       check=True)


# --------------------------------------------------------------------------------------------
# Checks


def final_aggregation(config: Path, log_path: Path) -> None:
    for _ in range(30):
        with log_path.open("ab") as handle:
            done = subprocess.run(
                [sys.executable, "-m", "esco_kpi.cli", "--config", str(config), "aggregate"],
                stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        if done.returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError(f"the final aggregation never succeeded; see {log_path}")


def store_figures(settings) -> dict:
    from sqlalchemy import func, select

    from kpi.store.db import events, make_engine, outcome_counts

    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(events.c.implementer_id, events.c.event_id,
                                       events.c.count)).all()
            counters = dict(conn.execute(
                select(outcome_counts.c.outcome, func.sum(outcome_counts.c.events))
                .group_by(outcome_counts.c.outcome)).all())
    finally:
        engine.dispose()
    return {"rows": rows, "counters": {k: int(v) for k, v in counters.items()}}


def indicator_figures(settings) -> tuple[int, int]:
    from kpi.warehouse.indicators import Period, query

    today = datetime.now(UTC).date()
    result = query(settings, "most_used_concepts", Period.custom(today - timedelta(days=30),
                                                                 today + timedelta(days=1)))
    return (sum(int(r["usage"]) for r in result.rows), sum(int(r["events"]) for r in result.rows))


# --------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of serve (default 20)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--outages", type=int, default=3, help="store outages (default 3)")
    parser.add_argument("--aggregator-kills", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="time budget of the fault phase (default 5)")
    parser.add_argument("--database-url", help="a PostgreSQL database this script creates "
                                               "(refusing an existing one) and drops")
    parser.add_argument("--no-tmpfs", action="store_true", help="no tmpfs, no disk-full phase")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--append", type=Path, help="append the result block to this file")
    return parser.parse_args()


TMPFS_SIZE = "4G"


@dataclass
class Run:
    """One fault run: what it set up (all undone by `cleanup`) and what it measured."""

    args: argparse.Namespace
    seed: int
    folder: Path
    mounted: bool = False
    tmpfs_note: str = "not tried (--no-tmpfs)"
    created_db: bool = False
    settings: object = None
    keys: list[str] = field(default_factory=list)
    implementer_ids: list[int] = field(default_factory=list)
    config: Path | None = None
    proxy: TcpProxy | None = None
    server: ServerProcess | None = None
    load: Load | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    aggregations: Aggregations | None = None
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    disk_note: str = ""
    fault_seconds: float = 0.0
    stuck: int = 0
    probe_status: int = 0

    @property
    def data_dir(self) -> Path:
        return self.folder / "var"

    @property
    def backend(self) -> str:
        return "PostgreSQL" if self.args.database_url else "SQLite"


def prepare(args: argparse.Namespace) -> Run:
    """The temporary folder, its data dir on a tmpfs when possible."""
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    run = Run(args, seed, Path(tempfile.mkdtemp(prefix="esco-faults-")))
    run.data_dir.mkdir()
    if not args.no_tmpfs:
        problem = try_mount_tmpfs(run.data_dir, TMPFS_SIZE)
        run.mounted = problem is None
        run.tmpfs_note = "data dir on a tmpfs" if run.mounted else f"no tmpfs ({problem})"
    log(f"seed {seed}; {run.backend}; {run.tmpfs_note}; folder {run.folder}")
    return run


def start(run: Run) -> None:
    """The store, the proxy to PostgreSQL, the server, the clients and the aggregations."""
    args = run.args
    if args.database_url:
        create_pg_database(args.database_url)
        run.created_db = True
    run.settings, run.keys, run.implementer_ids, uris = setup_store(run.data_dir,
                                                                     args.database_url)
    server_url = args.database_url
    if args.database_url:
        from sqlalchemy.engine import make_url

        url = make_url(args.database_url)
        run.proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        run.proxy.start()
        server_url = url.set(host="127.0.0.1", port=run.proxy.port).render_as_string(False)
    run.config = write_config(run.folder, run.data_dir, server_url)
    run.server = ServerProcess(run.config, run.folder / "serve.log")
    run.restart_seconds.append(run.server.start())
    run.load = Load(run.server.url, run.keys, uris, args.batch, run.seed)
    run.threads = [threading.Thread(target=run.load.client, args=(n,), daemon=True)
                   for n in range(args.clients)]
    for thread in run.threads:
        thread.start()
    run.aggregations = Aggregations(run.config, args.aggregator_kills, run.seed,
                                    run.folder / "aggregate.log")
    run.aggregations.thread.start()


def fault_plan(run: Run, rng: random.Random) -> list[str]:
    """Kills, outages and one disk-full period (where possible), in random order."""
    args = run.args
    plan = ["kill"] * args.kills + ["outage"] * args.outages
    run.disk_note = "skipped: "
    if args.database_url:
        run.disk_note += "the PostgreSQL store is not in the data dir"
    elif not run.mounted:
        run.disk_note += run.tmpfs_note
    else:
        plan.append("disk_full")
        run.disk_note = ""
    rng.shuffle(plan)
    return plan


def inject_faults(run: Run) -> None:
    """Carry out the plan at random moments, within the time budget."""
    rng = random.Random(run.seed)
    plan = fault_plan(run, rng)
    server, load = run.server, run.load
    outage = (ProxyOutage(run.proxy) if run.proxy
              else SqliteOutage(run.data_dir / "ingest.sqlite3"))
    budget = run.args.minutes * 60
    t0 = time.monotonic()
    gap = max(0.5, min(6.0, budget / max(1, len(plan)) / 3))
    for step, what in enumerate(plan):
        if time.monotonic() - t0 > budget:
            log(f"time budget spent after {step} of {len(plan)} faults")
            break
        time.sleep(rng.uniform(0.3, gap))
        if what == "kill":
            server.kill()
            run.kills += 1
            seconds = server.start()
            run.restart_seconds.append(seconds)
            log(f"kill {run.kills}: serve SIGKILLed, back in {seconds:.1f} s "
                f"({len(load.acknowledged)} events acknowledged so far)")
        else:
            fault = outage if what == "outage" else DiskFull(run.data_dir, TMPFS_SIZE)
            fault.begin()
            window = Window(what, time.monotonic())
            time.sleep(rng.uniform(3.0, 6.0))
            window.end = time.monotonic()
            fault.end()
            run.windows.append(window)
            log(f"{what}: {window.end - window.start:.1f} s")
        if load.bad:
            log(f"problem: {load.bad[0]}")
        if load.stored_despite_503:
            log(f"{len(load.stored_despite_503)} batches answered 503 were stored")
    time.sleep(2)
    run.fault_seconds = time.monotonic() - t0


def wind_down(run: Run) -> None:
    """Let every batch be answered, stop the aggregations, probe the server that went through
    it all (recovery without a manual step), stop it, aggregate a last time."""
    log("stopping the load (in-flight batches are retried until answered)")
    run.load.stop.set()
    for thread in run.threads:
        thread.join(timeout=120)
    run.stuck = sum(thread.is_alive() for thread in run.threads)
    run.aggregations.stop.set()
    run.aggregations.thread.join(timeout=320)
    probe = requests.get(f"{run.server.url}/v1/me", timeout=30,
                         headers={"Authorization": f"Bearer {run.keys[0]}"})
    run.probe_status = probe.status_code
    run.server.stop()
    final_aggregation(run.config, run.folder / "aggregate.log")
    if run.proxy:
        run.proxy.stop()
        run.proxy = None


@dataclass
class Outcome:
    """What the store and the indicators hold, against what the clients were told."""

    stored: dict
    usage: int
    counted_events: int
    stored_keys: dict[str, int]
    twice: int
    lost: set[str]
    extra: set[str]
    in_window: dict[str, list[int]]
    despite_in_outage: int
    worker_signals: dict[str, int]


def measure(run: Run) -> Outcome:
    load = run.load
    stored = store_figures(run.settings)
    usage, counted_events = indicator_figures(run.settings)
    ack = load.acknowledged
    stored_keys: dict[str, int] = {}
    order = {iid: n for n, iid in enumerate(run.implementer_ids)}
    twice = 0
    for implementer_id, event_id, count in stored["rows"]:
        k = f"{order[implementer_id]}/{event_id}"
        if k in stored_keys:
            twice += 1
        stored_keys[k] = count
    in_window = {"outage": [0, 0, 0, 0], "disk_full": [0, 0, 0, 0]}  # 503, 202, other, no RA
    for started, ended, status, has_ra in load.answers:
        for w in run.windows:
            if w.start < started and ended < w.end:
                slot = in_window[w.kind]
                slot[0 if status == 503 else 1 if status == 202 else 2] += 1
                if status == 503 and not has_ra:
                    slot[3] += 1
    # Where were the 503s whose request had in fact committed?
    despite_in_outage = sum(
        any(w.kind == "outage" and started <= w.end and w.start <= ended for w in run.windows)
        for _, started, ended in load.stored_despite_503)
    # Workers that died of a signal gunicorn's master saw (the kills take the master too).
    serve_log = (run.folder / "serve.log").read_text(errors="replace")
    worker_signals = {sig: serve_log.count(f"was sent {sig}!")
                      for sig in ("SIGBUS", "SIGSEGV", "SIGKILL", "SIGABRT")}
    return Outcome(stored, usage, counted_events, stored_keys, twice,
                   set(ack) - set(stored_keys), set(stored_keys) - set(ack), in_window,
                   despite_in_outage, worker_signals)


def checks(run: Run, out: Outcome) -> dict[str, bool]:
    load, ack, in_window = run.load, run.load.acknowledged, out.in_window
    disks = [w for w in run.windows if w.kind == "disk_full"]
    return {
        "no worker died of SIGBUS or SIGSEGV": not (out.worker_signals["SIGBUS"]
                                                    or out.worker_signals["SIGSEGV"]),
        "every client batch answered": run.stuck == 0,
        "no answer other than 202/429/503, every 503 with Retry-After, no batch "
        "half-stored": not load.bad,
        # PostgreSQL over a cut connection: the COMMIT may reach the server and its answer
        # be lost; the collector cannot know and answers 503, the resend gets "duplicate".
        # On SQLite (a local file) a 503 must mean nothing was stored.
        "SQLite: no batch stored although answered 503": bool(run.args.database_url)
        or not load.stored_despite_503,
        "202 events = distinct events stored": len(ack) == len(out.stored_keys),
        "zero lost": not out.lost,
        "zero stored that were not acknowledged": not out.extra,
        "zero stored twice": out.twice == 0,
        "outcome counters: accepted = acknowledged": out.stored["counters"].get("accepted", 0)
        == len(ack),
        "indicators: sum(usage) = sum of acknowledged counts": out.usage == sum(ack.values()),
        "indicators: sum(events) = acknowledged events": out.counted_events == len(ack),
        "store outages: 0 answers 202": in_window["outage"][1] == 0,
        "store outages: only 503 answers": in_window["outage"][2] == 0,
        # A 202 inside a disk-full period is right when SQLite could still commit (it
        # rewrites WAL space it already holds): the "zero lost" check covers those events.
        "disk full: 503s, and only 202 or 503": not disks or (
            in_window["disk_full"][0] > 0 and in_window["disk_full"][2] == 0),
        "kills done as asked": run.kills == run.args.kills,
        "recovered without a manual step (same server answers)": run.probe_status == 200,
    }


def report(run: Run, out: Outcome, held: dict[str, bool]) -> str:
    """The result block, in Markdown."""
    args, load, aggregations = run.args, run.load, run.aggregations
    ack = load.acknowledged
    in_window = out.in_window
    ok = all(held.values())
    restart = run.restart_seconds
    outages = [w for w in run.windows if w.kind == "outage"]
    disks = [w for w in run.windows if w.kind == "disk_full"]
    block = [
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {run.backend}, seed {run.seed}: "
        f"{'all checks hold' if ok else 'CHECKS FAILED'}",
        "",
        f"`python bench/faults.py --kills {args.kills} --clients {args.clients} "
        f"--minutes {args.minutes:g} --seed {run.seed}"
        + (" --database-url …" if args.database_url else "") + "`; "
        f"{os.cpu_count()} cores; {run.tmpfs_note}.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| fault phase | {run.fault_seconds:.0f} s, {args.clients} clients x {args.batch} "
        f"events per request |",
        f"| SIGKILLs of the `serve` process group | {run.kills} (restart to "
        f"healthy: median {sorted(restart)[len(restart) // 2]:.1f} s, max "
        f"{max(restart):.1f} s) |",
        f"| aggregator runs SIGKILLed mid-run / finished / refused or failed | "
        f"{aggregations.killed} / {aggregations.finished} / {aggregations.failed} |",
        f"| store outages | {len(outages)}, {sum(w.end - w.start for w in outages):.1f} s "
        f"in all: {in_window['outage'][0]} answers 503 (all with Retry-After: "
        f"{in_window['outage'][3] == 0}), {in_window['outage'][1]} answers 202 |",
        "| disk full | " + (f"{len(disks)}, {sum(w.end - w.start for w in disks):.1f} s: "
                              f"{in_window['disk_full'][0]} answers 503, "
                              f"{in_window['disk_full'][1]} answers 202"
                              f"{' (all stored)' if not out.lost else ''}"
                              if disks else run.disk_note) + " |",
        "| answers by status | "
        + ", ".join(f"{s}: {n}" for s, n in sorted(load.statuses.items())) + " |",
        f"| connection errors (retried) | {load.connection_errors} |",
        "| workers that died of a signal (serve.log) | "
        + ", ".join(f"{sig}: {n}" for sig, n in out.worker_signals.items()) + " |",
        f"| batches answered 503 whose resend was all `duplicate` (the refused attempt had "
        f"committed) | {len(load.stored_despite_503)} ({out.despite_in_outage} of their 503s "
        f"during or at the edge of a store outage) |",
        f"| batches answered 202 | {load.batches} ({load.ambiguous_duplicates} events "
        f"answered `duplicate` on a resend after a lost answer) |",
        f"| events acknowledged (202) | {len(ack)} |",
        f"| distinct events stored | {len(out.stored_keys)} |",
        f"| lost / stored but not acknowledged / stored twice | {len(out.lost)} / "
        f"{len(out.extra)} / {out.twice} |",
        f"| outcome counters: accepted | {out.stored['counters'].get('accepted', 0)} |",
        f"| sum of acknowledged `count`s / indicators' sum of usage | {sum(ack.values())} / "
        f"{out.usage} |",
        f"| acknowledged events / indicators' events | {len(ack)} / {out.counted_events} |",
        "",
        "Checks: " + "; ".join(f"{name}: {'yes' if yes else 'NO'}"
                               for name, yes in held.items()) + ".",
        "",
    ]
    return "\n".join(block)


def publish(run: Run, out: Outcome, text: str) -> None:
    print("\n" + text)
    if run.args.append:
        with run.args.append.open("a") as handle:
            handle.write("\n" + text)
        log(f"appended to {run.args.append}")
    if run.load.bad:
        print("problems:", *run.load.bad[:10], sep="\n  ")
    if out.lost:
        print("lost, e.g.:", sorted(out.lost)[:10])
    if out.extra:
        print("not acknowledged but stored, e.g.:", sorted(out.extra)[:10])


def cleanup(run: Run) -> None:
    """Undo everything `prepare` and `start` did, whatever happened."""
    if run.load is not None:
        run.load.stop.set()
    if run.aggregations is not None:
        run.aggregations.stop.set()
    if run.server is not None:
        run.server.stop()
    if run.proxy is not None:
        run.proxy.stop()
    if run.mounted:
        done = subprocess.run(["umount", str(run.data_dir)], capture_output=True)
        if done.returncode != 0:
            time.sleep(2)
            subprocess.run(["umount", "-l", str(run.data_dir)], capture_output=True)
    if run.created_db:
        drop_pg_database(run.args.database_url)
    if not run.args.keep:
        shutil.rmtree(run.folder, ignore_errors=True)
    else:
        log(f"kept {run.folder}")


def main() -> int:
    run = prepare(parse_args())
    try:
        start(run)
        inject_faults(run)
        wind_down(run)
        out = measure(run)
        held = checks(run, out)
        publish(run, out, report(run, out, held))
        return 0 if all(held.values()) else 1
    finally:
        cleanup(run)


if __name__ == "__main__":
    sys.exit(main())
