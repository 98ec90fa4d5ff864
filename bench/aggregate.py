"""Aggregation and export benchmark (docs/ARCHITECTURE.md "Performance budget"), with baseline.

    python bench/aggregate.py                 # 10 M events (generated once, cached in bench/out/)
    python bench/aggregate.py --quick         # 1 M events
    python bench/aggregate.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/esco_agg
    python bench/aggregate.py --against /tmp/old --pairs 3   # two commits' full refreshes in turn

1. Generates N events (Zipf over the bundled catalogue's occupations and skills, 50
   implementers in 14 countries and 6 sectors, 2 quarters of days, mixed languages and
   contexts, ~10 % label_added / concept_proposed / translation_feedback with free-text labels,
   0.3 % quarantined) straight into a SQLite ingest store with executemany, and caches the file
   in --cache (default bench/out/). Every run works on a copy of it.
2. Baseline: the accepted events read into a DuckDB table (raw sqlite3, fetchmany, Arrow), then
   one `GROUP BY concept_uri` over them. The budget's ratio uses the GROUP BY alone.
3. Full refresh (`run_aggregation` on an empty warehouse), incremental refreshes after 100 k new
   events on recent days and spread over all days, the quarterly export: each in a fresh
   process, timed, with the peak RSS of that process and its worker processes. Runs after
   1,000 new events, twelve in fresh processes (as `esco-kpi aggregate` from cron runs them)
   and twelve more in one process (as `serve`'s scheduler runs them, in a process of its own
   that lives as long as the server).
4. Indicator queries over the warehouse: p50 / p95 with a fresh open_reader and with the
   process's shared_reader.

With --against TREE (a worktree of another commit, its kpi/sql linked to its sql/), only full
refreshes: this checkout's and TREE's in turn, --pairs of each, which goes first swapped at every
pair, each on a fresh copy of the store in a fresh process, and their ratios.

Prints a table and appends it to bench/RESULTS.md (--no-results to skip).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# The project's root first: bench/dashboard.py must not hide the dashboard package from
# scripts started in this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kpi.vocabulary import SECTORS  # noqa: E402 - after the path above

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
GEN_VERSION = 2  # bump when the generated events change: invalidates the cache

START = date(2026, 4, 1)
END = date(2026, 9, 30)  # two quarters: 2026-Q2 and 2026-Q3
QUARTER = "2026-Q3"
ZIPF_S = 1.07
CHUNK = 250_000  # rows per executemany transaction

COUNTRIES = {  # country: (weight, languages its users write in)
    "DE": (10, ("de", "en")), "FR": (8, ("fr", "en")), "ES": (6, ("es",)),
    "IT": (5, ("it",)), "NL": (4, ("nl", "en")), "PL": (4, ("pl",)), "BE": (3, ("fr", "nl", "en")),
    "AT": (2, ("de",)), "SE": (2, ("sv", "en")), "FI": (2, ("fi", "sv")),
    "IE": (2, ("en", "ga")), "PT": (2, ("pt",)), "CZ": (1, ("cs", "en")), "DK": (1, ("da",)),
}
CONTEXTS = {"job_vacancy": 40, "cv": 25, "search": 15, "matching": 10, "training": 5,
            "statistics": 3, "other": 2}
ESCO_VERSIONS = {"1.2.0": 80, "1.1.2": 12, "1.1.1": 6, "1.0.9": 2}
TYPE_SHARES = (  # (type, upper bound of a uniform roll)
    ("unknown", 0.003), ("concept_used", 0.90), ("label_added", 0.96),
    ("concept_proposed", 0.98), ("translation_feedback", 1.0),
)
SUFFIXES = {"en": ("skills", "specialist", "expert"), "de": ("Kenntnisse", "Fachkraft"),
            "fr": ("compétences", "spécialiste"), "es": ("habilidades", "experto"),
            "it": ("competenze",), "nl": ("vaardigheden",), "pl": ("umiejętności",),
            "sv": ("kunskaper",), "fi": ("osaaminen",), "pt": ("competências",)}
PROPOSALS = ("prompt engineering", "AI literacy", "heat pump installation", "ESG reporting",
             "low-code development", "Prompt-Engineering", "KI-Kompetenz",
             "ingénierie de prompt", "Wärmepumpeninstallation", "ingeniería de prompts",
             "installatie van warmtepompen", "inżynieria promptów", "kehotesuunnittelu",
             "data annotation", "drone piloting", "carbon accounting")
UNKNOWN = "http://data.europa.eu/esco/skill/00000000-0000-4000-8000-000000000000"

TARGET_FULL_RATIO = 3.0
TARGET_FULL_SECONDS = 20.0
TARGET_FULL_READ_RATIO = 2.0  # x the time DuckDB alone takes to read the events from the store
TARGET_INCREMENTAL_SHARE = 0.10
TARGET_SMALL_RUN_SECONDS = 0.5  # a run after SMALL_RUN_EVENTS new events
TARGET_FIRST_RUN_SECONDS = 3.0  # the first run after `init`: the catalogue, no events
SMALL_RUN_EVENTS = 1_000
# enough runs for the merges of piled-up additions (kpi.warehouse.published) to show among them
SMALL_RUNS = 12
# The columns the aggregator reads (kpi/warehouse/aggregate.py): what every read baseline reads.
READ_COLUMNS = ("implementer_id", "type", "day", "concept_uri", "esco_version", "language",
                "context", "count", "label", "concept_type")
# An interpreter with DuckDB and its sqlite / postgres extension packages, for the "DuckDB alone"
# baseline (see bench/README.md): the project's DuckDB has no such package of its version.
SCANNER_PYTHON = HERE / "out" / "scanner-venv" / "bin" / "python"
TARGET_EXPORT_SECONDS = 10.0
TARGET_EXPORT_MB = 1536
TARGET_QUERY_MS = 300.0
TARGET_AGGREGATOR_MB = 2048


# ---------------------------------------------------------------------------------------------
# Machine, load and memory


def machine() -> dict[str, Any]:
    import duckdb
    import numpy
    import pyarrow
    import sqlalchemy

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    head = short_head()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "kpi"], capture_output=True,
                           text=True, cwd=ROOT, check=False).stdout.splitlines()
    return {
        "nproc": os.cpu_count(), "cpu": model, "ram_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(), "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__, "numpy": numpy.__version__,
        "sqlalchemy": sqlalchemy.__version__, "sqlite": sqlite3.sqlite_version,
        "git": head or "unknown",
        "dirty": ", ".join(line[3:] for line in dirty if line.strip()) or "none",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def short_head(tree: Path = ROOT) -> str:
    """The short commit id a checkout (this one, or a worktree) is at; "" outside git."""
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def machine_cpu_seconds() -> float | None:
    """CPU time the whole machine has spent busy since boot (/proc/stat: user, nice, system,
    irq, softirq, steal), or None where there is no /proc/stat. Around a phase, it counts what
    every process did meanwhile: PostgreSQL's server processes too."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _tree_rss_kb(pid: int) -> int:
    """RSS of a process and all its live descendants, in kB (from /proc)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


class PeakSampler:
    """Samples the RSS of this process and its descendants every 50 ms; keeps the peak."""

    def __init__(self, pid: int | None = None, interval: float = 0.05):
        self.pid, self.interval, self.peak_kb = pid or os.getpid(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, _tree_rss_kb(self.pid))


# ---------------------------------------------------------------------------------------------
# Generating the ingest store


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))


def _settings(data_dir: Path, database_url: str | None = None):
    from kpi.settings import Settings

    values: dict[str, Any] = {"storage.data_dir": str(data_dir)}
    if database_url:
        values["storage.database_url"] = database_url
    return Settings(values, base_dir=data_dir.parent)


def _catalogue(engine) -> tuple[list[str], dict[str, str], dict[tuple[str, str], list[str]]]:
    """(occupation and skill URIs, type by URI, labels by (URI, language)) of the newest version."""
    from sqlalchemy import select

    from kpi.catalogue.load import current_version
    from kpi.store.db import concept_labels, concepts

    version = current_version(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            select(concepts.c.uri, concepts.c.concept_type)
            .where(concepts.c.version == version,
                   concepts.c.concept_type.in_(("occupation", "skill")))
            .order_by(concepts.c.uri)).all()
        labels: dict[tuple[str, str], list[str]] = {}
        for uri, lang, label in conn.execute(
                select(concept_labels.c.uri, concept_labels.c.language, concept_labels.c.label)
                .where(concept_labels.c.version == version,
                       concept_labels.c.kind.in_(("preferred", "alt")))
                .order_by(concept_labels.c.uri, concept_labels.c.language,
                          concept_labels.c.label)):
            labels.setdefault((uri, lang), []).append(label)
    return [r[0] for r in rows], {r[0]: r[1] for r in rows}, labels


def _implementers(rng) -> list[dict[str, Any]]:
    countries = list(COUNTRIES)
    weights = [COUNTRIES[c][0] for c in countries]
    chosen = rng.choice(len(countries), size=50, p=[w / sum(weights) for w in weights])
    out = []
    for i, ci in enumerate(chosen, start=1):
        country = countries[int(ci)]
        langs = COUNTRIES[country][1]
        k = int(rng.integers(1, len(langs) + 1))
        out.append({
            "id": i, "name": f"Bench implementer {i:02d}", "country": country,
            "sector": SECTORS[int(rng.integers(len(SECTORS)))], "languages": langs[:k],
            # a few big portals, a long tail of small ones
            "volume": float(rng.lognormal(0.0, 1.2)),
        })
    return out


class EventSource:
    """Vectorised event generation: chunks of rows ready for executemany, in id order.

    Ids grow with the day of receipt (events arrive over the two quarters); 3 % arrive late
    (used 1-30 days before they were received). Usage grows over time (day density ~ u^0.8).
    """

    def __init__(self, engine, seed: int, stream: int = 0):
        import numpy as np

        self.np = np
        self.rng = np.random.default_rng((seed, stream))
        uris, self.types_by_uri, self.labels = _catalogue(engine)
        order = list(uris)
        np.random.default_rng(1234).shuffle(order)  # popularity order
        self.uris = np.array(order, dtype=object)
        w = 1.0 / np.arange(1, len(order) + 1) ** ZIPF_S
        self.uri_p = w / w.sum()
        self.implementers = _implementers(np.random.default_rng(seed))
        vol = np.array([i["volume"] for i in self.implementers])
        self.imp_p = vol / vol.sum()
        width = max(len(i["languages"]) for i in self.implementers)
        self.imp_nlang = np.array([len(i["languages"]) for i in self.implementers])
        self.imp_langs = np.array([list(i["languages"]) + [""] * (width - len(i["languages"]))
                                   for i in self.implementers], dtype=object)
        self.days = (END - START).days + 1
        self.day_text = np.array([(START + timedelta(days=d)).isoformat()
                                  for d in range(self.days)], dtype=object)
        self.contexts = np.array(list(CONTEXTS), dtype=object)
        self.context_p = np.array(list(CONTEXTS.values()), float) / sum(CONTEXTS.values())
        self.versions = np.array(list(ESCO_VERSIONS), dtype=object)
        self.version_p = (np.array(list(ESCO_VERSIONS.values()), float)
                          / sum(ESCO_VERSIONS.values()))
        self.next_id = 0

    def received_days(self, n: int, first: int = 0, last: int | None = None):
        """n sorted day offsets of receipt in [first, last]."""
        np = self.np
        last = self.days - 1 if last is None else last
        span = last - first + 1
        u = self.rng.random(n) ** 0.8
        return np.sort(first + np.minimum((u * span).astype(np.int32), span - 1))

    def chunk(self, received) -> list[tuple]:
        """Rows (without id) for events received on the given day offsets."""
        np, rng = self.np, self.rng
        n = len(received)
        late = rng.random(n) < 0.03
        lag = np.where(late, rng.integers(1, 31, n), 0)
        day = np.maximum(received - lag, 0)
        imp = rng.choice(len(self.implementers), n, p=self.imp_p)
        lang_i = (rng.random(n) * self.imp_nlang[imp]).astype(np.int64)
        lang = self.imp_langs[imp, lang_i]
        uri = self.uris[rng.choice(len(self.uris), n, p=self.uri_p)]
        roll = rng.random(n)
        kind = np.searchsorted(np.array([b for _, b in TYPE_SHARES]), roll, side="right")
        count = np.where(rng.random(n) < 0.8, 1, rng.integers(2, 51, n))
        ctx = self.contexts[rng.choice(len(self.contexts), n, p=self.context_p)]
        ver = self.versions[rng.choice(len(self.versions), n, p=self.version_p)]
        type_names = np.array(["concept_used", "concept_used", "label_added",
                               "concept_proposed", "translation_feedback"], dtype=object)
        types = type_names[kind]
        ids = range(self.next_id, self.next_id + n)
        self.next_id += n
        event_id = [f"b{i:010d}" for i in ids]
        uri_l = uri.tolist()
        label: list[str | None] = [None] * n
        ctype: list[str | None] = [None] * n
        comment: list[str | None] = [None] * n
        status = ["accepted"] * n
        reason: list[str | None] = [None] * n
        lang_l = lang.tolist()
        count_l = count.tolist()
        picks = rng.random((n, 3))
        for j in np.flatnonzero(kind != 1).tolist():
            k = int(kind[j])
            u, lg, p = uri_l[j], lang_l[j], picks[j]
            if k == 0:  # a concept no loaded catalogue knows: quarantined
                uri_l[j], status[j], reason[j] = UNKNOWN, "quarantined", "unknown_concept"
                continue
            count_l[j] = 1
            known = self.labels.get((u, lg))
            base = (known or self.labels.get((u, "en")) or ["skill"])[0]
            if k == 2:  # label_added: half variants of ESCO's own labels, half new ones
                if known and p[0] < 0.5:
                    b = known[int(p[1] * len(known))]
                    # (at most 200 characters, as the store's column allows: PostgreSQL
                    # refuses longer ones)
                    label[j] = (b.upper(), _strip_accents(b), f"  {b}  ",
                                b + ".")[int(p[2] * 4)][:200]
                else:
                    sfx = SUFFIXES.get(lg, SUFFIXES["en"])
                    label[j] = f"{base} {sfx[int(p[1] * len(sfx))]}"[:200]
            elif k == 3:  # concept_proposed
                prop = PROPOSALS[int(p[0] * len(PROPOSALS))]
                label[j] = (prop, prop.lower(), prop.title(), _strip_accents(prop))[int(p[1] * 4)]
                ctype[j] = "skill" if p[2] < 0.85 else "occupation"
                if p[2] < 0.6:
                    comment[j] = "Asked for in many vacancies; no ESCO concept fits."
                else:
                    uri_l[j] = None
            else:  # translation_feedback
                label[j] = (base + " (neu)" if lg == "de" else base.lower())[:200]
                comment[j] = "The wording is too literal."
        return list(zip(
            (imp + 1).tolist(), event_id, types.tolist(), self.day_text[day].tolist(), uri_l,
            ver.tolist(), lang_l, ctx.tolist(), count_l, label, ctype, comment, status, reason,
            self.day_text[received].tolist(), strict=True))


INSERT = ("insert into events (implementer_id, event_id, type, day, concept_uri, esco_version,"
          " language, context, count, label, concept_type, comment, status, quarantine_reason,"
          " received_on) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _insert_rows(settings, rows_iter, log) -> int:
    """Bulk insert through the plain driver: sqlite3 or psycopg's COPY."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    total = 0
    if url.get_backend_name() == "sqlite":
        con = sqlite3.connect(url.database, isolation_level=None)
        con.execute("pragma synchronous=off")
        con.execute("pragma cache_size=-1000000")
        try:
            for rows in rows_iter:
                con.execute("begin")
                con.executemany(INSERT, rows)
                con.execute("commit")
                total += len(rows)
                log(total)
            con.execute("pragma wal_checkpoint(truncate)")
        finally:
            con.close()
        return total
    import psycopg

    with psycopg.connect(url.set(drivername="postgresql").render_as_string(False)) as con:
        for rows in rows_iter:
            with con.cursor() as cur, cur.copy(
                    "copy events (implementer_id, event_id, type, day, concept_uri, esco_version,"
                    " language, context, count, label, concept_type, comment, status,"
                    " quarantine_reason, received_on) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            con.commit()
            total += len(rows)
            log(total)
    return total


def generate_store(data_dir: Path, n: int, seed: int, database_url: str | None) -> dict:
    """Create the ingest store with the bundled catalogue, 50 implementers and n events."""
    from sqlalchemy import insert

    from kpi.catalogue.load import load_bundled
    from kpi.store.db import implementers, init_store, make_engine

    settings = _settings(data_dir, database_url)
    engine = make_engine(settings)
    t0 = time.perf_counter()
    init_store(engine)
    load_bundled(engine)
    t_cat = time.perf_counter() - t0
    src = EventSource(engine, seed)
    with engine.begin() as conn:
        conn.execute(insert(implementers), [
            {"id": i["id"], "name": i["name"], "country": i["country"], "sector": i["sector"],
             "created_at": datetime(2026, 1, 1, tzinfo=UTC)} for i in src.implementers])
    engine.dispose()
    received = src.received_days(n)
    t1 = time.perf_counter()

    def chunks():
        for lo in range(0, n, CHUNK):
            yield src.chunk(received[lo:lo + CHUNK])

    def log(done: int) -> None:
        if done % 2_000_000 < CHUNK or done == n:
            rate = done / (time.perf_counter() - t1)
            print(f"  generated {done:,} events ({rate:,.0f}/s)", flush=True)

    _insert_rows(settings, chunks(), log)
    meta = {"events": n, "seed": seed, "gen_version": GEN_VERSION,
            "catalogue_seconds": round(t_cat, 1),
            "events_seconds": round(time.perf_counter() - t1, 1),
            "implementers": src.implementers, "next_event": src.next_id}
    return meta


def add_events(settings, n: int, seed: int, recent: bool, first_event: int) -> None:
    """n more events: on the last 3 days (recent) or over all days."""
    engine = _engine(settings)
    src = EventSource(engine, seed, stream=first_event)
    engine.dispose()
    src.next_id = first_event
    first = src.days - 3 if recent else 0
    received = src.received_days(n, first=first)
    _insert_rows(settings, [src.chunk(received)], lambda done: None)


def _engine(settings):
    from kpi.store.db import make_engine

    return make_engine(settings)


def prepare_store(args) -> tuple[Path, dict]:
    """The cached store for (events, seed), generated if missing; returns (data_dir, meta)."""
    key = f"agg-{args.events}-s{args.seed}-g{GEN_VERSION}"
    cached = Path(args.cache).resolve() / key
    meta_file = cached / "meta.json"
    if args.database_url:
        # PostgreSQL: the database itself is the cache; rebuilt unless it holds the same set.
        data_dir = cached / "pg-var"
        data_dir.mkdir(parents=True, exist_ok=True)
        # its own record of what the database holds: the SQLite store's meta.json says that
        # `var/` is complete
        meta_file = data_dir / "meta.json"
        settings = _settings(data_dir, args.database_url)
        engine = _engine(settings)
        from sqlalchemy import text

        from kpi.store.db import init_store
        _create_database(args.database_url)
        init_store(engine)
        with engine.begin() as conn:
            have = conn.execute(text("select count(*) from events")).scalar_one()
            stamp = conn.execute(text(
                "select count(*) from implementers where name like 'Bench implementer %'"
            )).scalar_one()
            others = conn.execute(text(
                "select count(*) from implementers where name not like 'Bench implementer %'"
            )).scalar_one()
        if others:
            raise SystemExit(f"{args.database_url} holds implementers this benchmark did not "
                             "create: give it a database of its own (created if missing)")
        if meta_file.exists() and have == args.events and stamp == 50:
            _keep_label_keys(data_dir, args.database_url)
            _vacuum(args.database_url)
            return data_dir, json.loads(meta_file.read_text())
        with engine.begin() as conn:
            conn.execute(text("truncate events, implementers, outcome_counts, aggregation_runs"
                              " restart identity cascade"))
        engine.dispose()
        print(f"generating {args.events:,} events into {args.database_url} ...", flush=True)
        meta = generate_store(data_dir, args.events, args.seed, args.database_url)
        _keep_label_keys(data_dir, args.database_url)
        _vacuum(args.database_url)
        meta_file.write_text(json.dumps(meta))
        return data_dir, meta
    if meta_file.exists():
        # a store generated by an earlier version: its tables and indexes brought up to date,
        # as every `esco-kpi` command does, and its label keys kept
        engine = _engine(_settings(cached / "var"))
        from kpi.store.db import init_store
        init_store(engine)
        engine.dispose()
        _keep_label_keys(cached / "var", None)
        return cached / "var", json.loads(meta_file.read_text())
    shutil.rmtree(cached, ignore_errors=True)
    tmp = cached.with_name(cached.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    print(f"generating {args.events:,} events into {tmp} (cached for later runs) ...", flush=True)
    meta = generate_store(tmp / "var", args.events, args.seed, None)
    _keep_label_keys(tmp / "var", None)
    (tmp / "meta.json").write_text(json.dumps(meta))
    tmp.rename(cached)
    return cached / "var", meta


def _vacuum(database_url: str) -> None:
    """VACUUM ANALYZE the events of a PostgreSQL store, as autovacuum does to a live one: the
    visibility map lets the aggregator count the quarantined events from their index alone
    (190 ms -> 7 ms at 10 M events), and the statistics are those of the table as it is."""
    from sqlalchemy import create_engine

    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("vacuum analyze events")
    finally:
        engine.dispose()


def _keep_label_keys(data_dir: Path, database_url: str | None) -> None:
    """The bundled release's label keys, kept as `esco-kpi init` keeps them
    (kpi.warehouse.label_keys): an installation has them before its first aggregation."""
    from kpi.catalogue.load import BUNDLED_VERSION
    from kpi.warehouse.label_keys import prepare

    engine = _engine(_settings(data_dir, database_url))
    try:
        prepare(_settings(data_dir, database_url), engine, BUNDLED_VERSION)
    finally:
        engine.dispose()


def _create_database(url: str) -> None:
    """Create the PostgreSQL database of `url` when it does not exist yet."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("select 1 from pg_database where datname = :n"),
                                  {"n": target.database}).first()
            if not exists:
                # an identifier cannot be bound; quoted by the dialect's preparer
                name = admin.dialect.identifier_preparer.quote(target.database)
                conn.execute(text(f"create database {name}"))
    finally:
        admin.dispose()


def working_copy(data_dir: Path, work: Path, database_url: str | None) -> Path:
    """A fresh copy of the cached store (SQLite) with no warehouse yet."""
    shutil.rmtree(work, ignore_errors=True)
    target = work / "var"
    target.mkdir(parents=True)
    if not database_url:
        for name in ("ingest.sqlite3", "ingest.sqlite3-wal", "ingest.sqlite3-shm"):
            if (data_dir / name).exists():
                shutil.copyfile(data_dir / name, target / name)
    if (data_dir / "cache" / "label-keys").is_dir():  # what `init` left (see _keep_label_keys)
        shutil.copytree(data_dir / "cache" / "label-keys", target / "cache" / "label-keys")
    os.sync()  # the copy's dirty pages are not the aggregator's to write
    return target


def fresh_data_dir(cached: Path, work: Path, database_url: str | None) -> Path:
    """Where a full refresh starts from nothing: a working copy of the cached SQLite store, or
    with PostgreSQL (one database, which the refresh only reads) the cached folder with its
    warehouse removed."""
    data_dir = working_copy(cached, work, database_url)
    if database_url:
        shutil.rmtree(cached / "warehouse", ignore_errors=True)
        return cached
    return data_dir


# ---------------------------------------------------------------------------------------------
# Phases, each run in a fresh process (python bench/aggregate.py --phase NAME ...)


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children so far."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _phase_result(t: float, sampler: PeakSampler, cpu_before: float = 0.0,
                  **extra: Any) -> dict[str, Any]:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    # (minus what the process had used before the timed part: its imports)
    cpu = _cpu_seconds() - cpu_before
    return {"seconds": t, "peak_tree_mb": sampler.peak_kb / 1024,
            "maxrss_self_mb": own.ru_maxrss / 1024, "maxrss_children_mb": kids.ru_maxrss / 1024,
            "cpu_seconds": cpu, **extra}


def phase_aggregate(settings, profile: str | None) -> dict[str, Any]:
    from kpi.store.db import init_store
    from kpi.warehouse.aggregate import run_aggregation

    # As `esco-kpi aggregate` runs it: the engine made and the store checked (init_store)
    # first, so that the run is timed without loading the store's driver (psycopg: 0.14 s).
    engine = _engine(settings)
    init_store(engine)
    try:
        with PeakSampler() as sampler:
            cpu0 = _cpu_seconds()
            machine0 = machine_cpu_seconds()
            t0 = time.perf_counter()
            if profile:
                import cProfile

                prof = cProfile.Profile()
                summary = prof.runcall(run_aggregation, settings, engine)
                prof.dump_stats(profile)
            else:
                summary = run_aggregation(settings, engine)
            t = time.perf_counter() - t0
            machine1 = machine_cpu_seconds()
    finally:
        engine.dispose()
    return _phase_result(t, sampler, cpu0, events_read=summary.events_read,
                         days=summary.days_recomputed,
                         machine_cpu_seconds=None if machine0 is None or machine1 is None
                         else machine1 - machine0)


def phase_small_warm(settings, seed: int, first_event: int) -> dict[str, Any]:
    """SMALL_RUNS runs after SMALL_RUN_EVENTS new events each, in this one process, as the
    scheduler of `serve` runs them: only the runs are timed, not the events' insertion."""
    from kpi.warehouse.aggregate import run_aggregation

    runs = []
    for i in range(SMALL_RUNS):
        add_events(settings, SMALL_RUN_EVENTS, seed, True, first_event + i * SMALL_RUN_EVENTS)
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        summary = run_aggregation(settings)
        runs.append({"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu_seconds() - cpu0,
                     "days": summary.days_recomputed, "load": loadavg()[0]})
    return {"runs": runs}


def phase_export(settings, out: Path) -> dict[str, Any]:
    from kpi.exports.quarterly import export_quarter

    with PeakSampler() as sampler:
        t0 = time.perf_counter()
        summary = export_quarter(settings, QUARTER, out)
        t = time.perf_counter() - t0
    return _phase_result(t, sampler, rows=sum(summary.files.values()))


def phase_baseline(settings, work: Path) -> dict[str, Any]:
    """Accepted events into a DuckDB table (raw driver, Arrow), then GROUP BY concept_uri."""
    import duckdb
    import pyarrow as pa
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    cols = READ_COLUMNS
    sql = f"select {', '.join(cols)} from events where status = 'accepted'"
    db = work / "baseline.duckdb"
    db.unlink(missing_ok=True)
    duck = duckdb.connect(str(db))
    with PeakSampler() as sampler:
        t0 = time.perf_counter()
        c0 = time.process_time()
        select_seconds = 0.0  # the driver's execute and fetchmany alone: a bare select
        if url.get_backend_name() == "sqlite":
            src = sqlite3.connect(url.database)
            cur = src.execute(sql)
        else:
            import psycopg

            src = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
            cur = src.cursor(name="baseline")
            cur.itersize = 200_000
            cur.execute(sql)
        select_seconds += time.perf_counter() - t0
        first = True
        while True:
            t1 = time.perf_counter()
            rows = cur.fetchmany(500_000)
            select_seconds += time.perf_counter() - t1
            if not rows:
                break
            columns = zip(*rows, strict=True)
            duck.register("batch", pa.table(
                {n: pa.array(c) for n, c in zip(cols, columns, strict=True)}))
            del rows, columns
            if first:
                duck.execute("create table events as select implementer_id::integer as "
                             "implementer_id, type, day::date as day, concept_uri, esco_version,"
                             " language, context, count::bigint as count, label, concept_type"
                             " from batch")
                first = False
            else:
                duck.execute("insert into events select * from batch")
            duck.unregister("batch")
        src.close()
        duck.execute("checkpoint")
        load = time.perf_counter() - t0
        load_cpu = time.process_time() - c0
        times = []
        for _ in range(7):
            t1 = time.perf_counter()
            duck.execute("select concept_uri, sum(count) as usage from events "
                         "group by concept_uri").fetchall()
            times.append(time.perf_counter() - t1)
        n = duck.execute("select count(*) from events").fetchone()[0]
    duck.close()
    db.unlink(missing_ok=True)
    return _phase_result(statistics.median(times), sampler, load_seconds=load, rows=n,
                         group_by_min=min(times), select_seconds=select_seconds,
                         load_cpu_seconds=load_cpu)


# Run by the scanner interpreter (SCANNER_PYTHON): DuckDB alone reads the store's accepted
# events (the aggregator's columns) into an in-memory table with its sqlite or postgres
# extension, loaded from the extension's package (nothing is downloaded).
DUCKDB_READ_SCRIPT = """
import importlib, json, os, sys, time
import duckdb
kind, target, columns = sys.argv[1], sys.argv[2], sys.argv[3]
name = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}[kind]
package = importlib.import_module("duckdb_extension_" + name)
path = os.path.join(os.path.dirname(package.__file__), "extensions", "v" + duckdb.__version__,
                    name + ".duckdb_extension")
con = duckdb.connect()
con.execute("load '" + path.replace("'", "''") + "'")
con.execute("attach '" + target.replace("'", "''") + "' as store (type " + kind + ", read_only)")
def machine():  # as machine_cpu_seconds() in bench/aggregate.py
    try:
        with open("/proc/stat") as stat:
            f = [int(x) for x in stat.readline().split()[1:9]]
    except OSError:
        return None
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")
t0, c0, m0 = time.perf_counter(), time.process_time(), machine()
con.execute("create table t as select " + columns + " from store.events"
            " where status = 'accepted'")
seconds, cpu, m1 = time.perf_counter() - t0, time.process_time() - c0, machine()
rows = con.execute("select count(*) from t").fetchall()[0][0]
print("RESULT " + json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": rows,
                              "machine_cpu_seconds": None if m0 is None else m1 - m0,
                              "duckdb": duckdb.__version__, "threads":
                              con.execute("select current_setting('threads')").fetchall()[0][0]}))
"""


def phase_duckdb_read(settings, python: str) -> dict[str, Any]:
    """DuckDB alone reading the events from the store (sqlite / postgres extension), in an
    interpreter that has the extension packages; {"missing": why} when there is none."""
    from sqlalchemy.engine import make_url

    if not python or not Path(python).exists():
        return {"missing": f"no scanner interpreter at {python or SCANNER_PYTHON}"}
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        kind, target = "sqlite", str(url.database)
    else:
        kind = "postgres"
        target = " ".join(f"{k}={v}" for k, v in (
            ("host", url.host), ("port", url.port), ("dbname", url.database),
            ("user", url.username), ("password", url.password)) if v)
    proc = subprocess.run([python, "-c", DUCKDB_READ_SCRIPT, kind, target,
                           ", ".join(READ_COLUMNS)],
                          capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"missing": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}


INIT_COSTS: dict[str, float] = {}  # what `init` does beyond loading, timed by init_store


def init_store(args) -> tuple[Path, str | None]:
    """A store with the bundled catalogue and no events (what `esco-kpi init` leaves), cached:
    (its data folder, its database URL or None for SQLite)."""
    from sqlalchemy import text

    from kpi.catalogue.load import BUNDLED_VERSION, load_bundled
    from kpi.store.db import init_store as create_tables
    from kpi.warehouse.label_keys import prepare as prepare_label_keys

    folder = Path(args.cache).resolve() / f"init-s{args.seed}"
    url = None
    if args.database_url:
        from sqlalchemy.engine import make_url

        base = make_url(args.database_url)
        url = base.set(database=f"{base.database}_init").render_as_string(False)
        _create_database(url)
        folder = folder / "pg-var"
    else:
        folder = folder / "var"
    settings = _settings(folder, url)
    engine = _engine(settings)
    try:
        create_tables(engine)
        with engine.begin() as conn:
            loaded = conn.execute(text("select count(*) from catalogue_versions")).scalar_one()
        if not loaded:
            load_bundled(engine)
        # as `esco-kpi init` does after loading: the labels' keys, kept for the first run
        # (its cost belongs to init; timed here so that the report can say what moved there)
        shutil.rmtree(folder / "cache", ignore_errors=True)
        t0 = time.perf_counter()
        prepare_label_keys(settings, engine, BUNDLED_VERSION)
        INIT_COSTS["label_keys_seconds"] = time.perf_counter() - t0
    finally:
        engine.dispose()
    return folder, url


def phase_first_run(settings) -> dict[str, Any]:
    """The first aggregation over a store with the catalogue and no events."""
    shutil.rmtree(settings.warehouse_path, ignore_errors=True)
    return phase_aggregate(settings, None)


def phase_queries(settings, runs: int) -> dict[str, Any]:
    from kpi.warehouse.indicators import INDICATORS, Period, query
    from kpi.warehouse.reader import open_reader, shared_reader

    period = Period.quarter(QUARTER)
    out: dict[str, Any] = {}
    opens = []
    for _ in range(runs):
        t0 = time.perf_counter()
        open_reader(settings).close()
        opens.append(time.perf_counter() - t0)
    out["open_reader"] = {"fresh": _pcts(opens)}
    shared_reader(settings).close()  # build it once: the dashboard worker's steady state
    variants = {"": {}, " (language=de)": {"language": "de"}}
    for name in INDICATORS:
        for suffix, filters in variants.items():
            if filters and name not in ("most_used_concepts", "least_used_concepts"):
                continue
            fresh, shared = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                con = open_reader(settings)
                query(con, name, period, **filters)
                con.close()
                fresh.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                query(settings, name, period, **filters)  # the shared reader
                shared.append(time.perf_counter() - t0)
            out[name + suffix] = {"fresh": _pcts(fresh), "shared": _pcts(shared)}
    return out


def _pcts(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000}


def run_phase(args) -> None:
    data_dir = Path(args.data_dir)
    settings = _settings(data_dir, args.database_url)
    if args.phase == "aggregate":
        result = phase_aggregate(settings, args.profile)
    elif args.phase == "export":
        result = phase_export(settings, Path(args.work) / "export")
    elif args.phase == "baseline":
        result = phase_baseline(settings, Path(args.work))
    elif args.phase == "duckdb-read":
        result = phase_duckdb_read(settings, args.scanner_python)
    elif args.phase == "first-run":
        result = phase_first_run(settings)
    elif args.phase == "queries":
        result = phase_queries(settings, args.runs)
    elif args.phase == "small-warm":
        result = phase_small_warm(settings, args.seed, args.first_event)
    elif args.phase.startswith("add-"):
        t0 = time.perf_counter()
        add_events(settings, SMALL_RUN_EVENTS if args.phase == "add-small" else 100_000,
                   args.seed, args.phase in ("add-recent", "add-small"), args.first_event)
        result = {"seconds": time.perf_counter() - t0}
    else:
        raise SystemExit(f"unknown phase {args.phase}")
    print("RESULT " + json.dumps(result), flush=True)


def spawn(phase: str, args, data_dir: Path, work: Path, tree: Path = ROOT, **extra: Any
          ) -> dict[str, Any]:
    """Run a phase in a fresh process, with the code of `tree` (this checkout by default, or
    a worktree of another commit: see run_against)."""
    cmd = [sys.executable, str(tree / "bench" / "aggregate.py"), "--phase", phase, "--data-dir",
           str(data_dir), "--work", str(work), "--seed", str(args.seed), "--runs",
           str(args.runs)]
    if args.database_url and "database_url" not in extra:
        cmd += ["--database-url", args.database_url]
    if args.scanner_python:
        cmd += ["--scanner-python", args.scanner_python]
    for k, v in extra.items():
        if v is not None:
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    return phase_result(cmd, phase, tree)


def append_results(report: str) -> None:
    """Add a run's section to bench/RESULTS.md (every run adds its own, in time order)."""
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write("\n" + report)
    print(f"appended to {RESULTS}")


def phase_result(cmd: list[str], phase: str, cwd: Path = ROOT) -> dict[str, Any]:
    """Run a phase's command in a fresh process: the JSON of the `RESULT ` line it prints
    (its output is shown, and the run stops, when it prints none)."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.stderr.write(proc.stdout + proc.stderr)
    raise SystemExit(f"phase {phase} failed ({proc.returncode})")


# ---------------------------------------------------------------------------------------------
# The run


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _machine(phase: dict[str, Any]) -> str:
    """The machine's CPU-s over a phase and the cores they kept busy, when measured."""
    machine = phase.get("machine_cpu_seconds")
    if machine is None:
        return ""
    return f"; the machine {machine:.1f} CPU-s, {machine / phase['seconds']:.2f} cores busy"


def _machine_ratio(full: dict[str, Any], duck: dict[str, Any]) -> str:
    """The full refresh's machine CPU-s against DuckDB alone's, when both were measured.
    When DuckDB alone kept every core busy (its cores-busy figure), the full refresh's
    wall-time ratio cannot be lower than this one."""
    if full.get("machine_cpu_seconds") is None or duck.get("machine_cpu_seconds") is None:
        return ""
    return (f" (the machine's CPU-s {full['machine_cpu_seconds'] / duck['machine_cpu_seconds']:.2f}"
            " × DuckDB alone's)")


def check_tree(tree: Path) -> None:
    """Refuse a worktree whose kpi/sql is not linked to its sql/: the editable install maps
    kpi.sql to this checkout's sql/, so its code would run this checkout's SQL (see
    bench/README.md)."""
    if not (tree / "kpi" / "sql").exists():
        raise SystemExit(f"{tree}/kpi/sql is missing: link it to {tree}/sql first "
                         f"(ln -s {tree}/sql {tree}/kpi/sql)")


def run_against(args, tree: Path) -> None:
    """Full refreshes of this checkout and of `tree` (a worktree of another commit) in turn,
    --pairs times, which goes first swapped at every pair, each on a fresh copy of the store
    in a fresh process: what a change does, on a machine whose speed moves from one minute to
    the next."""
    check_tree(tree)
    command = "python bench/aggregate.py " + " ".join(sys.argv[1:])
    load_before = loadavg()
    cached, meta = prepare_store(args)
    work = Path(args.cache).resolve() / "work"
    sides: list[list[dict[str, Any]]] = [[], []]
    for n in range(args.pairs):
        for k in ((0, 1) if n % 2 == 0 else (1, 0)):
            data_dir = fresh_data_dir(cached, work, args.database_url)
            done = spawn("aggregate", args, data_dir, work, tree=(ROOT, tree)[k])
            sides[k].append(done)
            print(f"pair {n + 1}/{args.pairs}, {('this checkout', tree)[k]}: "
                  f"{done['seconds']:.2f} s, {done['cpu_seconds']:.1f} CPU-s", flush=True)
    report = render_against(command, machine(), meta, tree, sides, load_before, loadavg(),
                            args)
    print(report)
    if not args.no_results:
        append_results(report)


def render_against(command: str, info: dict[str, Any], meta: dict[str, Any], tree: Path,
                   sides: list[list[dict[str, Any]]], load_before: tuple[float, ...],
                   load_after: tuple[float, ...], args) -> str:
    theirs = short_head(tree)
    store = "PostgreSQL" if args.database_url else "SQLite"
    lines = [
        f"## Full refresh, two commits in turn ({meta['events']:,} events, {store} ingest "
        f"store), {info['date']}", "",
        f"Command: `{command}`  ",
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram_gb']} GB; Python "
        f"{info['python']}, DuckDB {info['duckdb']}; this checkout {info['git']} (uncommitted "
        f"in kpi/: {info['dirty']}) against {theirs or tree}; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f}  ",
        "Each: `run_aggregation` on an empty warehouse and a fresh copy of the store, in a "
        "fresh process (CPU-s: that process and its children); the two alternate, which goes "
        "first swapped at every pair.", "",
        f"| pair | {info['git']} s | CPU-s | {theirs} s | CPU-s | wall ratio | CPU ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, (mine, other) in enumerate(zip(*sides, strict=True), start=1):
        lines.append(f"| {n} | {mine['seconds']:.2f} | {mine['cpu_seconds']:.1f} | "
                     f"{other['seconds']:.2f} | {other['cpu_seconds']:.1f} | "
                     f"{mine['seconds'] / other['seconds']:.3f} | "
                     f"{mine['cpu_seconds'] / other['cpu_seconds']:.3f} |")
    median = [{key: statistics.median(r[key] for r in side)
               for key in ("seconds", "cpu_seconds")} for side in sides]
    lines += [
        f"| median | {median[0]['seconds']:.2f} | {median[0]['cpu_seconds']:.1f} | "
        f"{median[1]['seconds']:.2f} | {median[1]['cpu_seconds']:.1f} | "
        f"{median[0]['seconds'] / median[1]['seconds']:.3f} | "
        f"{median[0]['cpu_seconds'] / median[1]['cpu_seconds']:.3f} |", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="1 M events")
    parser.add_argument("--cache", default=str(HERE / "out"))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20, help="runs per indicator query")
    parser.add_argument("--repeat", type=int, default=1,
                        help="full refreshes to time (the fastest is reported)")
    parser.add_argument("--profile", default=None, help="cProfile the full refresh to this file")
    parser.add_argument("--scanner-python", default=None,
                        help="an interpreter with duckdb and its sqlite / postgres extension "
                             f"packages, for the DuckDB-alone baseline (default {SCANNER_PYTHON}"
                             " when it exists)")
    parser.add_argument("--refresh-only", action="store_true",
                        help="skip the export and the indicator queries (for comparing the "
                             "aggregation of two checkouts)")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--against", type=Path, default=None,
                        help="a worktree of another commit (its kpi/sql linked to its sql/): "
                             "only full refreshes, of both in turn")
    parser.add_argument("--pairs", type=int, default=3, help="full refreshes of each (--against)")
    # internal: one phase in this process
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--first-event", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.events = 1_000_000
    if args.scanner_python is None and SCANNER_PYTHON.exists():
        args.scanner_python = str(SCANNER_PYTHON)
    if args.phase:
        run_phase(args)
        return
    if args.against:
        run_against(args, args.against.resolve())
        return

    command = "python bench/aggregate.py " + " ".join(sys.argv[1:])
    load_before = loadavg()
    t_gen = time.perf_counter()
    cached, meta = prepare_store(args)
    t_gen = time.perf_counter() - t_gen
    print(f"store: {cached} ({meta['events']:,} events; ready in {t_gen:.1f} s)", flush=True)
    if args.generate_only:
        return
    work = Path(args.cache).resolve() / "work"
    fulls = []
    for attempt in range(args.repeat):
        data_dir = fresh_data_dir(cached, work, args.database_url)
        extra = {"profile": args.profile} if args.profile and attempt == 0 else {}
        la = loadavg()[0]
        fulls.append((spawn("aggregate", args, data_dir, work, **extra), la))
        print(f"full refresh: {fulls[-1][0]['seconds']:.1f} s, "
              f"{fulls[-1][0]['cpu_seconds']:.1f} CPU-s (load {la:.2f}), "
              f"peak {fulls[-1][0]['peak_tree_mb']:.0f} MB{_machine(fulls[-1][0])}", flush=True)
    full, full_load = min(fulls, key=lambda f: f[0]["seconds"])
    base = spawn("baseline", args, data_dir, work)
    print(f"baseline: bare select {base['select_seconds']:.1f} s, load into DuckDB "
          f"{base['load_seconds']:.1f} s, GROUP BY {base['seconds']:.3f} s", flush=True)
    duck = spawn("duckdb-read", args, data_dir, work)
    print("DuckDB alone: " + (duck["missing"] if "missing" in duck else
                              f"{duck['seconds']:.1f} s, {duck['cpu_seconds']:.1f} CPU-s"
                              f"{_machine(duck)}"),
          flush=True)
    init_dir, init_url = init_store(args)
    firsts = [spawn("first-run", args, init_dir, work, database_url=init_url)
              for _ in range(2)]
    print("first run after init: " + ", ".join(f"{f['seconds']:.2f} s" for f in firsts),
          flush=True)
    export: dict[str, Any] | None = None
    queries: dict[str, Any] = {}
    if not args.refresh_only:
        export = spawn("export", args, data_dir, work)
        print(f"export: {export['seconds']:.1f} s, peak {export['peak_tree_mb']:.0f} MB",
              flush=True)
        queries = spawn("queries", args, data_dir, work)
        print("queries done", flush=True)
    incr = {}
    first = meta["next_event"]
    for kind in ("recent", "spread"):
        spawn(f"add-{kind}", args, data_dir, work, first_event=first)
        first += 100_000
        incr[kind] = spawn("aggregate", args, data_dir, work)
        print(f"incremental ({kind}): {incr[kind]['seconds']:.2f} s, "
              f"{incr[kind]['days']} days", flush=True)
    smalls = []
    for _ in range(SMALL_RUNS):
        spawn("add-small", args, data_dir, work, first_event=first)
        first += SMALL_RUN_EVENTS
        smalls.append((spawn("aggregate", args, data_dir, work), loadavg()[0]))
        print(f"run after {SMALL_RUN_EVENTS:,} events: {smalls[-1][0]['seconds']:.2f} s, "
              f"{smalls[-1][0]['days']} days", flush=True)
    warm = spawn("small-warm", args, data_dir, work, first_event=first)["runs"]
    first += SMALL_RUNS * SMALL_RUN_EVENTS
    print(f"runs after {SMALL_RUN_EVENTS:,} events in one process: "
          + ", ".join(f"{r['seconds']:.2f} s" for r in warm), flush=True)
    if args.database_url:  # leave the database as generated
        from sqlalchemy import text
        engine = _engine(_settings(data_dir, args.database_url))
        with engine.begin() as conn:
            conn.execute(text("delete from events where event_id >= :e"),
                         {"e": f"b{meta['next_event']:010d}"})
        engine.dispose()
    load_after = loadavg()
    info = machine()
    report = render(command, info, meta, load_before, load_after, full, full_load, fulls,
                    base, incr, export, queries, args, duck, firsts, smalls, warm)
    print(report)
    if not args.no_results:
        append_results(report)


def render(command, info, meta, load_before, load_after, full, full_load, fulls, base, incr,
           export, queries, args, duck, firsts, smalls, warm) -> str:
    ratio = full["seconds"] / base["seconds"]
    store = "PostgreSQL" if args.database_url else "SQLite"
    driver = "psycopg" if args.database_url else "sqlite3"
    has_duck = "missing" not in duck
    extension = "postgres" if args.database_url else "sqlite"
    read_ratio = full["seconds"] / duck["seconds"] if has_duck else None
    lines = [
        f"## Aggregation and export ({meta['events']:,} events, {store} ingest store)",
        "",
        f"`{command}` — {info['date']}, git {info['git']} (uncommitted in kpi/: "
        f"{info['dirty']})",
        "",
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram_gb']} GB RAM; Python "
        f"{info['python']}, DuckDB {info['duckdb']}, pyarrow {info['pyarrow']}, numpy "
        f"{info['numpy']}, SQLAlchemy {info['sqlalchemy']}, SQLite {info['sqlite']}. "
        f"Load average before {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f}, after {load_after[0]:.2f} / {load_after[1]:.2f} / "
        f"{load_after[2]:.2f} (1 / 5 / 15 min; 2 cores shared with other work).",
        "",
        f"Events: Zipf (s = {ZIPF_S}) over the bundled catalogue's occupations and skills, 50 "
        f"implementers, {START} to {END}, ~90 % concept_used, 6 % label_added, 2 % "
        f"concept_proposed, 2 % translation_feedback, 0.3 % quarantined; generated once in "
        f"{meta['events_seconds']:.0f} s (+ {meta['catalogue_seconds']:.0f} s catalogue) and "
        f"cached. Each phase runs in a fresh process; peak memory = RSS of that process and "
        f"any child processes, sampled every 50 ms (ru_maxrss in brackets: self / largest "
        f"child). CPU-s = user + system CPU of the phase's process and its children while it "
        f"runs the timed call (imports excluded): on this shared machine a steadier figure "
        f"than the wall time"
        + (" (PostgreSQL's own server processes are not included)" if args.database_url
           else "")
        + "; the machine's CPU-s (from /proc/stat) count every process over the same time, the "
        "server's included, and cores busy = those CPU-s over the wall time.",
        "",
        "| workload | figure | baseline / ratio | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    if has_duck:
        lines.append(
            f"| baseline: DuckDB alone reads the accepted events ({len(READ_COLUMNS)} columns the"
            f" aggregator reads) from the store into a table (its {extension} extension, DuckDB "
            f"{duck['duckdb']}, {duck['threads']} threads) | "
            f"{duck['seconds']:.1f} s, {duck['cpu_seconds']:.1f} CPU-s ({duck['rows']:,} rows)"
            f"{_machine(duck)} | — | — | — |")
    else:
        lines.append(f"| baseline: DuckDB alone | not measured: {duck['missing']} | — | — | — |")
    lines += [
        f"| baseline: bare select of the same rows through the driver ({driver} execute + "
        f"fetchmany, Python tuples) | {base['select_seconds']:.1f} s | — | — | — |",
        f"| baseline: those tuples into a DuckDB table (→ Arrow) | "
        f"{base['load_seconds']:.1f} s, {base['load_cpu_seconds']:.0f} CPU-s "
        f"({base['rows']:,} rows) | — | — | — |",
        f"| baseline: `GROUP BY concept_uri` in DuckDB (median of 7) | "
        f"{base['seconds'] * 1000:.0f} ms | — | — | — |",
        f"| full refresh (`run_aggregation`, empty warehouse; best of {len(fulls)}, load "
        f"{full_load:.2f} at start) | {full['seconds']:.1f} s, {full['cpu_seconds']:.0f} CPU-s, "
        f"peak {full['peak_tree_mb']:.0f} MB [{full['maxrss_self_mb']:.0f} / "
        f"{full['maxrss_children_mb']:.0f}]{_machine(full)} | "
        + (f"{read_ratio:.2f} × DuckDB alone{_machine_ratio(full, duck)}; " if has_duck else "")
        + f"{full['seconds'] / base['select_seconds']:.2f} × the bare select; "
        f"{ratio:.0f} × the GROUP BY | < 20 s, ≤ 2 × DuckDB alone, < 2 GB | "
        f"{_ok(full['seconds'] < TARGET_FULL_SECONDS)} / "
        + (_ok(read_ratio <= TARGET_FULL_READ_RATIO) if has_duck else "not measured")
        + f" / {_ok(full['peak_tree_mb'] < TARGET_AGGREGATOR_MB)} |",
    ]
    best_first = min(firsts, key=lambda f: f["seconds"])
    lines.append(
        f"| first run after `init` (the bundled catalogue, no events; best of {len(firsts)}) | "
        f"{best_first['seconds']:.2f} s, {best_first['cpu_seconds']:.1f} CPU-s, peak "
        f"{best_first['peak_tree_mb']:.0f} MB | runs: "
        + ", ".join(f"{f['seconds']:.2f} s" for f in firsts)
        + (f"; `init` itself spent {INIT_COSTS['label_keys_seconds']:.2f} s keeping the "
           "labels' keys for it" if "label_keys_seconds" in INIT_COSTS else "")
        + f" | < 3 s | {_ok(best_first['seconds'] < TARGET_FIRST_RUN_SECONDS)} |")
    for kind, label in (("recent", "100 k new events on the last 3 days"),
                        ("spread", "100 k new events over all days")):
        r = incr[kind]
        share = r["seconds"] / full["seconds"]
        lines.append(
            f"| incremental refresh, {label} ({r['days']} days published) | "
            f"{r['seconds']:.2f} s, {r['cpu_seconds']:.1f} CPU-s, peak "
            f"{r['peak_tree_mb']:.0f} MB | {share:.1%} of the full refresh "
            f"({r['cpu_seconds'] / full['cpu_seconds']:.1%} of its CPU-s) | ≤ 10 % | "
            f"{_ok(share <= TARGET_INCREMENTAL_SHARE)} |")
    median_small = sorted(smalls, key=lambda r: r[0]["seconds"])[len(smalls) // 2][0]
    lines.append(
        f"| run after {SMALL_RUN_EVENTS:,} new events (last 3 days, 3 % late; median of "
        f"{len(smalls)}, {median_small['days']} days published) | "
        f"{median_small['seconds']:.2f} s, {median_small['cpu_seconds']:.1f} CPU-s; slowest "
        f"{max(r['seconds'] for r, _ in smalls):.2f} s | runs: "
        + ", ".join(f"{r['seconds']:.2f} s ({r['days']} days, load {la:.1f})"
                    for r, la in smalls)
        + f" | < 0.5 s | {_ok(median_small['seconds'] < TARGET_SMALL_RUN_SECONDS)} |")
    # the first run of the process pays what every later one finds ready (imports aside:
    # DuckDB's and the drivers' first use, the SQL read and parsed once)
    later = warm[1:]
    median_warm = sorted(later, key=lambda r: r["seconds"])[len(later) // 2]
    lines.append(
        f"| the same in one process, as `serve`'s scheduler runs them (median of runs 2-"
        f"{len(warm)}, {median_warm['days']} days published) | "
        f"{median_warm['seconds']:.2f} s, {median_warm['cpu_seconds']:.2f} CPU-s; slowest "
        f"{max(r['seconds'] for r in later):.2f} s; the process's first run "
        f"{warm[0]['seconds']:.2f} s | runs: "
        + ", ".join(f"{r['seconds']:.2f} s ({r['days']} days, load {r['load']:.1f})"
                    for r in warm)
        + f" | < 0.5 s | {_ok(median_warm['seconds'] < TARGET_SMALL_RUN_SECONDS)} |")
    if export is None:
        if len(fulls) > 1:
            lines += ["", "Full refresh runs: " + ", ".join(
                f"{f['seconds']:.1f} s / {f['cpu_seconds']:.0f} CPU-s (load {la:.2f})"
                for f, la in fulls) + "."]
        return "\n".join(lines) + "\n"
    lines.append(
        f"| quarterly export {QUARTER} ({export['rows']:,} rows) | {export['seconds']:.1f} s, "
        f"peak {export['peak_tree_mb']:.0f} MB [{export['maxrss_self_mb']:.0f}] | — | "
        f"< 10 s, < 1.5 GB | {_ok(export['seconds'] < TARGET_EXPORT_SECONDS)} / "
        f"{_ok(export['peak_tree_mb'] < TARGET_EXPORT_MB)} |")
    lines += [
        "",
        f"Indicator queries over {QUARTER} ({args.runs} runs each; ms). *fresh* = "
        "`open_reader` + query + close each time; *shared* = `query(settings, …)`, which uses "
        "the process's `shared_reader` (the dashboard's path). Target: < 300 ms p95.",
        "",
        "| indicator | fresh p50 | fresh p95 | shared p50 | shared p95 | met (shared p95) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    o = queries.pop("open_reader")["fresh"]
    lines.append(f"| (open_reader alone) | {o['p50_ms']:.0f} | {o['p95_ms']:.0f} | | | |")
    for name, q in queries.items():
        f, s = q["fresh"], q["shared"]
        lines.append(f"| {name} | {f['p50_ms']:.0f} | {f['p95_ms']:.0f} | {s['p50_ms']:.0f} | "
                     f"{s['p95_ms']:.0f} | {_ok(s['p95_ms'] < TARGET_QUERY_MS)} |")
    if len(fulls) > 1:
        lines += ["", "Full refresh runs: " + ", ".join(
            f"{f['seconds']:.1f} s / {f['cpu_seconds']:.0f} CPU-s (load {la:.2f})"
            for f, la in fulls) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
