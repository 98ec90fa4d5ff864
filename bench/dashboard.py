"""Dashboard benchmark: every page's callbacks and CSV downloads over real HTTP, with 10 M events.

    python bench/dashboard.py                  # 10 M events (the store of bench/aggregate.py)
    python bench/dashboard.py --quick          # 1 M events
    python bench/dashboard.py --workers 2 --rounds 3
    python bench/dashboard.py --workers 2 --against /tmp/old   # two commits' first views in turn

1. The ingest store of bench/aggregate.py (generated once, cached in bench/out/) is copied to
   bench/out/dashboard-<events>/ and aggregated there (kept for later runs; a run after a code
   change that alters the warehouse format upgrades it).
2. `esco-kpi serve --no-scheduler` starts on a free port; a session logs in through /login.
3. Views: every page (and the concept page of the most used concept) x four periods (the
   data's last quarter, its last month, its first quarter, and 2026-05-15 to 2026-09-03, on no
   month's bounds) x six filter states, with the
   warm-up off. Each view's `content` callback is POSTed to /dashboard/_dash-update-component
   as the browser does it. Per period and filters, as a user moves through the pages:
   - cold: the first request of each page (nothing computed yet for these filters; the pages
     share indicator results, so later pages of the same filters are partly warm);
   - warm: every page again (--rounds times), as when the user comes back to it;
   then the URL/filter sync callback, and every CSV download of every page (unfiltered
   quarter), first and again: a GET of the table's file, as the button makes the browser do.
4. Warm-up: the server restarted with `dashboard.warm_up` on; once it logged the warm-up of
   the default views, the first request of each page for the preset "last quarter".
5. Baseline in the same run: the same requests for a page with nothing to compute (a URL with
   no such page), which measures HTTP, session check, Dash and JSON alone.
6. In this process, before the server starts (--profile-only: this alone): where a first view
   spends its time. Each page rendered for two states with nothing memoised, every query it
   runs timed (wall and CPU); then the Overview cards' figures from the lists and indicators
   they sum against sql/kpi_counts.sql, and the review loop's figures computed against read
   from the memo of another worker (Data.review_summary), each pair checked equal.

With --against TREE (a worktree of another commit), only step 3's first views, on this
checkout's server and on TREE's at once, one request on each in turn, in --passes passes from
nothing computed: what a change does, on a machine whose speed moves from minute to minute.

Prints the tables and appends them to bench/RESULTS.md (--no-results to skip). Targets
(docs/ARCHITECTURE.md): first view p95 < 300 ms, repeat view p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import aggregate as agg_bench  # noqa: E402 - the store generator of bench/aggregate.py

TARGET_P95_MS = 300.0
TARGET_REPEAT_MS = 50.0
# the states of the in-process profile: (period, filters)
PROFILE_STATES = (("quarter", "none"), ("month", "DE skills"))
PASSWORD = "bench-dashboard-password"
PERIODS = {  # name: (start, end) within the generated data (2026-04-01 .. 2026-09-30)
    "quarter": ("2026-07-01", "2026-09-30"),
    "month": ("2026-09-01", "2026-09-30"),
    "first quarter": ("2026-04-01", "2026-06-30"),
    # a period on no month's bounds: daily files at both ends, and a previous period of equal
    # length that starts before the data
    "odd": ("2026-05-15", "2026-09-03"),
}
FILTERS = {
    "none": {},
    "country=DE": {"country": "DE"},
    "language=de": {"language": "de"},
    "skills": {"concept_type": "skill"},
    "DE skills": {"country": "DE", "concept_type": "skill"},
    "sector=pes": {"sector": "pes"},
}
# Seconds between a CSV's first download and its repeats (see run).
DOWNLOAD_PAUSE = 0.5
SPREAD_NOTE = " (a new connection per request, so requests spread over the workers)"
CONTENT_OUTPUT = "..content.children...period-info.children...menu.children.."
CONTROLS = ("period", "start", "end", "concept_type", "language", "country", "sector",
            "context", "labels")


def search_of(period: str, filters: dict[str, str], concept: str | None = None) -> str:
    start, end = PERIODS[period]
    query = {"period": "custom", "start": start, "end": end, **filters}
    if concept:
        query["concept"] = concept
    return "?" + urlencode(query)


class Dashboard:
    """A logged-in browser session, talking to Dash's callback endpoint."""

    def __init__(self, url: str, username: str, password: str, spread: bool = False) -> None:
        self.url = url
        self.http = requests.Session()
        # A kept-alive connection stays with one worker; a new one per request lands on any
        # worker, as the requests of several users (or browser tabs) do.
        self.headers = {"Connection": "close"} if spread else {}
        page = self.http.get(f"{url}/login", timeout=30)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
        answer = self.http.post(f"{url}/login", data={
            "username": username, "password": password, "csrf_token": token,
            "next": "/dashboard/"}, timeout=30, allow_redirects=False)
        if answer.status_code != 302:
            raise SystemExit(f"log-in failed: {answer.status_code} {answer.text[:200]}")

    def _post(self, payload: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
        t0 = time.perf_counter()
        answer = self.http.post(f"{self.url}/dashboard/_dash-update-component", json=payload,
                                headers=self.headers, timeout=600)
        elapsed = time.perf_counter() - t0
        if answer.status_code == 204:  # PreventUpdate
            return elapsed, None
        if answer.status_code != 200:
            raise SystemExit(f"callback failed: {answer.status_code} {answer.text[:300]}")
        return elapsed, answer.json()

    def content(self, path: str, search: str) -> tuple[float, dict[str, Any]]:
        elapsed, body = self._post({
            "output": CONTENT_OUTPUT,
            "outputs": [{"id": "content", "property": "children"},
                        {"id": "period-info", "property": "children"},
                        {"id": "menu", "property": "children"}],
            "inputs": [{"id": "url", "property": "pathname", "value": path},
                       {"id": "url", "property": "search", "value": search}],
            "changedPropIds": ["url.pathname", "url.search"],
            "state": [],
        })
        return elapsed, body or {}

    def sync(self, search: str) -> float:
        outputs = [{"id": "url", "property": "search"},
                   *[{"id": f"f-{c}", "property": "value"} for c in CONTROLS],
                   {"id": "custom-dates", "property": "style"}]
        output = ".." + "...".join(f"{o['id']}.{o['property']}" for o in outputs) + ".."
        elapsed, _ = self._post({
            "output": output, "outputs": outputs,
            "inputs": [{"id": "url", "property": "search", "value": search},
                       *[{"id": f"f-{c}", "property": "value", "value": None}
                         for c in CONTROLS]],
            "changedPropIds": ["url.search"], "state": [],
        })
        return elapsed

    def download(self, path: str, search: str, button: dict[str, str]) -> tuple[float, int]:
        """GET a button's CSV as the browser does (dashboard.downloads): the page's URL plus
        /<table>.csv, with its query string; the time until the whole file arrived."""
        url = f"{self.url}{path.rstrip('/')}/{button['table']}.csv{search}"
        t0 = time.perf_counter()
        answer = self.http.get(url, headers=self.headers, timeout=600, stream=True)
        # read at once, as a browser saves a file: requests' own reading in 10 kB pieces
        # added some 50 ms to a 30 MB file, all of it in this client
        content = answer.raw.read()
        elapsed = time.perf_counter() - t0
        if answer.status_code != 200:
            raise SystemExit(f"no CSV for {button} on {path}{search}: {answer.status_code} "
                             f"{content[:200]!r}")
        return elapsed, content.count(b"\n") - 1


def download_buttons(tree: Any) -> list[dict[str, str]]:
    """The ids of every "Download CSV" button in a rendered page (Dash's JSON tree)."""
    found: list[dict[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ident = node.get("props", {}).get("id") if "props" in node else None
            if isinstance(ident, dict) and ident.get("type") == "download":
                found.append(ident)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return [dict(t) for t in {tuple(sorted(b.items())) for b in found}]


def pcts(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "p50": statistics.median(ordered) * 1000, "p95": p95 * 1000,
            "max": ordered[-1] * 1000}


def prepare(args) -> tuple[Path, dict[str, Any]]:
    """A data directory with the events aggregated and a dashboard user (kept for reruns)."""
    store, meta = agg_bench.prepare_store(args)
    folder = Path(args.cache).resolve() / f"dashboard-{args.events}-s{args.seed}"
    data_dir = folder / "var"
    if not (data_dir / "ingest.sqlite3").exists():
        shutil.rmtree(folder, ignore_errors=True)
        data_dir.mkdir(parents=True)
        for name in ("ingest.sqlite3", "ingest.sqlite3-wal", "ingest.sqlite3-shm"):
            if (store / name).exists():
                shutil.copyfile(store / name, data_dir / name)
    settings = agg_bench._settings(data_dir)
    from kpi.store.db import make_engine
    from kpi.store.registry import RegistryError, add_user, set_password
    from kpi.warehouse.aggregate import run_aggregation

    print("aggregating (nothing to do when the warehouse is up to date) ...", flush=True)
    t0 = time.perf_counter()
    summary = run_aggregation(settings)
    print(f"  {summary.events_read:,} events read, {summary.days_recomputed} days in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    ensure_spans(data_dir)
    engine = make_engine(settings)
    try:
        add_user(engine, "bench", PASSWORD)
    except RegistryError:
        set_password(engine, "bench", PASSWORD)
    engine.dispose()
    return folder / "config.yaml", meta


def ensure_spans(data_dir: Path) -> None:
    """Month and quarter rollups for a warehouse aggregated before they existed (readers would
    read every day of them meanwhile): published once, under the aggregator's lock."""
    from kpi.warehouse import private, published
    from kpi.warehouse.aggregate import aggregation_lock

    settings = agg_bench._settings(data_dir)
    manifest = published.read_manifest(settings)
    if not published.missing_spans(manifest.get("rollups", {})):
        return
    t0 = time.perf_counter()
    with aggregation_lock(settings):
        con = private.connect_private(settings)
        try:
            published.publish(con.cursor(), settings, [], extra={
                k: manifest[k] for k in ("watermark", "catalogue_version") if k in manifest})
        finally:
            con.close()
    print(f"  month and quarter rollups published in {time.perf_counter() - t0:.1f} s",
          flush=True)


class QueryLog:
    """Times every query the dashboard runs in this process (wall and CPU ms)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, name_of: Any) -> None:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls.append((name_of(args, kwargs), (time.perf_counter() - t0) * 1000,
                                   (time.process_time() - c0) * 1000))

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)


def profile(data_dir: Path, concept: str) -> dict[str, Any]:
    """Step 6 of the module's docstring."""
    import dashboard.data as data_module
    import dashboard.review as review_module
    from dashboard.data import Data, ResultCache, SharedResults
    from dashboard.pages import BY_PATH, PAGES
    from dashboard.pages import overview as overview_module
    from dashboard.state import FilterState
    from kpi.review import decisions as decisions_module
    from kpi.review import summary as summary_module
    from kpi.warehouse import indicators
    from kpi.warehouse.reader import shared_reader

    settings = agg_bench._settings(data_dir)
    shared_reader(settings).close()  # opened once per worker and publish, not per view
    log = QueryLog()
    log.wrap(indicators, "query", lambda a, k: a[1])
    log.wrap(data_module, "run_extra", lambda a, k: a[1])
    for module in (overview_module, summary_module):
        if hasattr(module, "review_summary"):
            log.wrap(module, "review_summary", lambda a, k: "review_summary")
    for module in (review_module, decisions_module):
        if hasattr(module, "list_items"):
            log.wrap(module, "list_items", lambda a, k: "list_items")
    out: dict[str, Any] = {"pages": []}
    try:
        for period, fname in PROFILE_STATES:
            start, end = PERIODS[period]
            state = FilterState(preset="custom", start=date.fromisoformat(start),
                                end=date.fromisoformat(end), **FILTERS[fname])
            data = Data(settings, cache=ResultCache(), pages=None)
            for page in (*PAGES, BY_PATH["concept"]):
                view = state.with_(concept=concept) if page.PATH == "concept" else state
                log.calls.clear()
                t0, c0 = time.perf_counter(), time.process_time()
                page.render(data, view)
                total, cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
                calls = list(log.calls)
                # nested calls (review_summary runs list_items) are counted once
                own = [c for c in calls if c[0] != "list_items"] if any(
                    c[0] == "review_summary" for c in calls) else calls
                out["pages"].append({
                    "state": f"{period}, {fname}", "page": page.TITLE, "ms": total, "cpu": cpu,
                    "queries": len(own), "query_ms": sum(c[1] for c in own),
                    "top": sorted(own, key=lambda c: -c[1])[:4]})
                print(f"  profile {period}, {fname}: {page.TITLE} {total:.0f} ms", flush=True)
        log.restore()

        # the Overview's cards: counting the lists and summing the indicators (both
        # periods) against kpi_counts
        start, end = PERIODS["quarter"]
        state = FilterState(preset="custom", start=date.fromisoformat(start),
                            end=date.fromisoformat(end))
        lists, counts = Data(settings, cache=ResultCache()), Data(settings, cache=ResultCache())
        t0 = time.perf_counter()
        from_lists = [card_figures(lists, p, state)
                      for p in (state.period(), state.period().previous())]
        t1 = time.perf_counter()
        from_counts = [tuple(counts.kpi_counts(p, state).values())
                       for p in (state.period(), state.period().previous())]
        t2 = time.perf_counter()
        if from_lists != from_counts:
            raise SystemExit(f"kpi_counts {from_counts} differ from the lists {from_lists}")
        out["counts"] = {"lists_ms": (t1 - t0) * 1000, "counts_ms": (t2 - t1) * 1000}

        # the review loop's figures: computed, then from the memo another worker left on disk
        folder = Path(tempfile.mkdtemp(prefix="esco-kpi-bench-results-"))
        try:
            one, two = Data(settings, ResultCache()), Data(settings, ResultCache())
            one.results, two.results = SharedResults(folder), SharedResults(folder)
            t0 = time.perf_counter()
            computed = one.review_summary(overall=True)
            t1 = time.perf_counter()
            one.results.flush()
            t2 = time.perf_counter()
            memo = two.review_summary(overall=True)
            t3 = time.perf_counter()
            if memo != computed:
                raise SystemExit("the review summary read from the memo differs")
            out["review"] = {"computed_ms": (t1 - t0) * 1000, "memo_ms": (t3 - t2) * 1000}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        log.restore()
    return out


def card_figures(data: Any, period: Any, state: Any) -> tuple[int, ...]:
    """The Overview cards' figures of sql/kpi_counts.sql, in its column order, from the lists
    and indicators it sums."""
    uptake = [r for r in data.indicator("implementer_uptake", period, state).rows
              if r["dimension"] == "country"]
    coverage = data.indicator("catalogue_coverage", period, state).rows
    return (len(data.indicator("candidate_alt_labels", period, state).rows),
            len(data.indicator("new_concept_proposals", period, state).rows),
            sum(r["events"] for r in data.indicator("translation_feedback", period, state).rows),
            sum(r["active_implementers"] for r in uptake),
            len({r["value"] for r in uptake if r["value"]}),
            sum(r["concepts"] for r in coverage), sum(r["used"] for r in coverage))


def span_cost(data_dir: Path, runs: int = 2) -> list[tuple[str, int, float, float]]:
    """What the month and quarter rollups add to a publish: kpi.warehouse.published's
    _publish_spans alone (files written, best wall s, best CPU s), on a copy of the published
    files, for a warehouse without them (all spans) and for runs whose dirty days are the
    data's last 3 days, its last 33, every day."""
    import json

    from kpi.warehouse import private, published

    settings = agg_bench._settings(data_dir)
    manifest = published.read_manifest(settings)
    work = Path(tempfile.mkdtemp(prefix="esco-kpi-bench-spans-"))
    out = []
    try:
        shutil.copytree(published.published_dir(settings), work / "published")
        con = private.connect_private(settings)
        cur = con.cursor()
        try:
            # the days that hold events (an ended month's days are in its packed file)
            days = [row[0].isoformat() for row in
                    cur.execute("select distinct day from events order by day").fetchall()]
            for label, dirty in (("none yet (every closed span)", []),
                                 ("last 3 days", days[-3:]), ("last 33 days", days[-33:]),
                                 ("every day", days)):
                best = (0, float("inf"), float("inf"))
                for i in range(runs):
                    rollups = json.loads(json.dumps(manifest["rollups"]))
                    if not dirty:
                        rollups = {t: v for t, v in rollups.items()
                                   if t in published.ROLLUPS or t in published.PACKED}
                    t0, c0 = time.perf_counter(), time.process_time()
                    with published.Writers(cur) as writers:
                        n = published._publish_spans(writers, work / "published", f"rbench{i}",
                                                     dirty, {}, rollups, [], time.time())
                    best = (n, min(best[1], time.perf_counter() - t0),
                            min(best[2], time.process_time() - c0))
                out.append((label, *best))
                print(f"  spans, dirty {label}: {best[0]} files, {best[1]:.2f} s", flush=True)
        finally:
            cur.close()
            con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def top_concept(data_dir: Path, database_url: str | None = None) -> str:
    from kpi.warehouse.indicators import Period, query

    settings = agg_bench._settings(data_dir, database_url)
    rows = query(settings, "most_used_concepts", Period.custom(*PERIODS["quarter"])).rows
    if not rows:
        raise SystemExit("no usage in the benchmark's quarter")
    return rows[0]["concept_uri"]


def start(config: Path, workers: int, tree: Path | None = None, clear: bool = True
          ) -> tuple[str, Any, Path]:
    """A fresh server: the pages its workers share on disk are removed first (unless not
    `clear`), so that every phase starts with nothing computed. `tree`: the server runs that
    checkout's code (see run_against) instead of this one's."""
    from esco_kpi.server import spawn_serve, wait_until_up
    from tests.support import free_port

    if clear:
        shutil.rmtree(config.parent / "var" / "cache", ignore_errors=True)

    port = free_port()
    log = config.with_suffix(".log")
    log.write_text("")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # `python -m esco_kpi.cli` run in the tree imports the tree's packages first
    process = spawn_serve(config, port, log, ("--no-scheduler", "--workers", str(workers)),
                          env=env, cwd=tree)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process, log)
    return url, process, log


def stop(process: Any) -> None:
    """SIGTERM, SIGKILL after 30 s, then whatever is left of the server's process group."""
    from tests.support import stop_process

    stop_process(process, timeout=30)


def run_against(args, tree: Path) -> dict[str, Any]:
    """The first views of every page and state (step 3's cold views), on two servers at once:
    this checkout's and `tree`'s (a worktree of another commit), one request on each in turn,
    which goes first swapped at every state. A shared machine's speed can move by a third from
    one minute to the next; so it moves under both alike."""
    from dashboard.pages import PAGES

    agg_bench.check_tree(tree)
    from dashboard.data import CODE_VERSION, code_version

    if code_version(tree) == CODE_VERSION:
        # the two servers would share what they memoise on disk (kept under that version)
        raise SystemExit(f"{tree} holds the same code as this checkout")
    config, meta = prepare(args)
    data_dir = config.parent / "var"
    concept = top_concept(data_dir)
    pages = [(p.TITLE, "/dashboard/" + p.PATH, None) for p in PAGES]
    pages.append(("Concept", "/dashboard/concept", concept))
    other = config.with_name("config-against.yaml")
    for path in (config, other):
        write_config(path, data_dir, warm_up=False)
    times: list[dict[str, list[float]]] = [{}, {}]
    by_state: list[dict[str, list[float]]] = [{}, {}]  # the Overview's, per state
    states = [(p, f) for p in PERIODS for f in FILTERS]
    t0 = time.perf_counter()
    for n in range(args.passes):
        # every pass from nothing computed: both servers started anew, their shared results
        # removed (kept apart by their code's version, dashboard.data.CODE_VERSION)
        shutil.rmtree(data_dir / "cache", ignore_errors=True)
        servers = [start(config, args.workers, clear=False),
                   start(other, args.workers, tree=tree, clear=False)]
        try:
            dashes = [Dashboard(url, "bench", PASSWORD, spread=args.workers > 1)
                      for url, _, _ in servers]
            for i, (period, fname) in enumerate(states):
                order = (0, 1) if (i + n) % 2 == 0 else (1, 0)
                for title, path, uri in pages:
                    search = search_of(period, FILTERS[fname], uri)
                    for k in order:
                        elapsed = dashes[k].content(path, search)[0]
                        times[k].setdefault(title, []).append(elapsed)
                        if title == "Overview":
                            by_state[k].setdefault(f"{period}, {fname}", []).append(
                                elapsed * 1000)
            print(f"  pass {n + 1}/{args.passes} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
        finally:
            for _, process, _ in servers:
                stop(process)
    return {"events": meta["events"], "workers": args.workers, "pages": len(pages),
            "tree": str(tree), "views": len(states) * len(pages), "passes": args.passes,
            "cold": [{t: pcts(v) for t, v in side.items()} for side in times],
            "cold_all": [pcts([x for v in side.values() for x in v]) for side in times],
            "overview": by_state}


def render_against(command: str, out: dict[str, Any], load: tuple[float, ...],
                   load_after: tuple[float, ...]) -> str:
    info = agg_bench.machine()
    theirs = agg_bench.short_head(Path(out["tree"]))
    lines = [
        f"## Dashboard callbacks, two commits in turn, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC", "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['nproc']} cores, {info['ram_gb']} GB, Python "
        f"{info['python']}, DuckDB {info['duckdb']}; this checkout {info['git']} (uncommitted "
        f"in kpi/: {info['dirty']}) against {theirs or out['tree']}; load average "
        f"{load[0]:.2f} before, {load_after[0]:.2f} after  ",
        f"Data: {out['events']:,} events; two `esco-kpi serve --no-scheduler --workers "
        f"{out['workers']}` at once, warm-up off; the first view of every page for each of "
        f"{len(PERIODS)} periods x {len(FILTERS)} filter states ({out['views']} per server "
        f"and pass, {out['passes']} passes, both servers restarted with nothing computed for "
        "each), one request on each server in turn, the first of the two swapped at every "
        "state.", "",
        f"| page | {info['git']} p50 ms | p95 ms | {theirs} p50 ms | p95 ms | p50 ratio | "
        "p95 ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    ours, base = out["cold"]
    for title in [*ours, "**all views**"]:
        a = out["cold_all"][0] if title.startswith("**") else ours[title]
        b = out["cold_all"][1] if title.startswith("**") else base[title]
        lines.append(f"| {title} | {a['p50']:.0f} | {a['p95']:.0f} | {b['p50']:.0f} | "
                     f"{b['p95']:.0f} | {a['p50'] / b['p50']:.2f} | {a['p95'] / b['p95']:.2f} |")
    lines += ["", "The Overview per state, median of the passes (ms, this checkout / the "
              "other): " + "; ".join(
                  f"{state} {statistics.median(ms):.0f} / "
                  f"{statistics.median(out['overview'][1][state]):.0f}"
                  for state, ms in out["overview"][0].items()) + "."]
    return "\n".join(lines) + "\n"


def write_config(config: Path, data_dir: Path, warm_up: bool,
                 database_url: str | None = None) -> None:
    store = f"  database_url: {json.dumps(database_url)}\n" if database_url else ""
    config.write_text(f"storage:\n  data_dir: {data_dir}\n{store}dashboard:\n  warm_up: "
                      f"{'true' if warm_up else 'false'}\n", encoding="utf-8")


def run(args) -> dict[str, Any]:
    from dashboard.pages import PAGES

    config, meta = prepare(args)
    data_dir = config.parent / "var"
    concept = top_concept(data_dir)
    pages = [(p.TITLE, "/dashboard/" + p.PATH, None) for p in PAGES]
    pages.append(("Concept", "/dashboard/concept", concept))
    out: dict[str, Any] = {"events": meta["events"], "workers": args.workers,
                           "concept": concept, "pages": len(pages)}
    if not args.no_profile:
        out["profile"] = profile(data_dir, concept)
        out["spans"] = span_cost(data_dir)
    if args.profile_only:
        return out

    write_config(config, data_dir, warm_up=False)
    url, process, _log = start(config, args.workers)
    try:
        dash = Dashboard(url, "bench", PASSWORD, spread=args.workers > 1)
        baseline = [dash.content("/dashboard/no-such-page", search_of("quarter", {}))[0]
                    for _ in range(20)]
        out["baseline"] = pcts(baseline)
        print(f"baseline (no page): p50 {out['baseline']['p50']:.1f} ms", flush=True)

        cold: dict[str, list[float]] = {}
        warm: dict[str, list[float]] = {}
        cold_by_period: dict[str, list[float]] = {}
        slowest: list[tuple[float, str, str]] = []  # first views: (s, page, state)
        buttons: dict[str, list[dict[str, str]]] = {}
        searches: list[str] = []
        t_views = time.perf_counter()
        states = [(p, f) for p in PERIODS for f in FILTERS]
        for i, (period, fname) in enumerate(states, 1):
            views = [(title, path, search_of(period, FILTERS[fname], uri))
                     for title, path, uri in pages]
            for title, path, search in views:
                elapsed, body = dash.content(path, search)
                cold.setdefault(title, []).append(elapsed)
                slowest.append((elapsed, title, f"{period}, {fname}"))
                cold_by_period.setdefault(period, []).append(elapsed)
                searches.append(search)
                if fname == "none" and period == "quarter":
                    buttons[path] = download_buttons(body)
            for _ in range(args.rounds):
                for title, path, search in views:
                    warm.setdefault(title, []).append(dash.content(path, search)[0])
            print(f"  {period}, {fname}: {i}/{len(states)} "
                  f"({time.perf_counter() - t_views:.0f} s)", flush=True)
        out["views"] = len(states) * len(pages)
        out["cold"] = {t: pcts(v) for t, v in cold.items()}
        out["cold_by_period"] = {t: pcts(v) for t, v in cold_by_period.items()}
        out["warm"] = {t: pcts(v) for t, v in warm.items()}
        out["cold_all"] = pcts([x for v in cold.values() for x in v])
        out["slowest"] = [(t * 1000, page, state) for t, page, state in sorted(slowest)[-8:]]
        out["warm_all"] = pcts([x for v in warm.values() for x in v])
        out["sync"] = pcts([dash.sync(s) for s in searches[:40]])

        downloads: dict[str, dict[str, Any]] = {}
        for title, path, uri in pages:
            search = search_of("quarter", {}, uri)
            for button in sorted(buttons.get(path, []), key=lambda b: (b["table"], b["key"])):
                table = button["table"]
                if table in downloads:
                    continue  # the same table from another section
                first, rows = dash.download(path, search, button)
                # the kept copy is written in the background after the file went out: a click
                # on another worker while it is written (30 MB: some 50 ms) builds the file
                # again, a second click of a person comes later than that
                time.sleep(DOWNLOAD_PAUSE)
                again = [dash.download(path, search, button)[0] for _ in range(args.rounds)]
                downloads[table] = {"page": title, "rows": rows, "first_ms": first * 1000,
                                    **{f"warm_{k}": v for k, v in pcts(again).items()}}
        out["downloads"] = downloads
        print(f"  {len(downloads)} downloads done", flush=True)
    finally:
        stop(process)

    write_config(config, data_dir, warm_up=True)
    url, process, log = start(config, args.workers)
    try:
        t0 = time.perf_counter()
        warmed: list[dict[str, Any]] = []
        while len(warmed) < args.workers and time.perf_counter() - t0 < 600:
            warmed = [json.loads(line) for line in log.read_text(errors="replace").splitlines()
                      if '"dashboard views warmed"' in line]
            time.sleep(0.5)
        if len(warmed) < args.workers:
            raise SystemExit("the warm-up did not finish within 10 minutes")
        out["warm_up_views"] = warmed[0].get("views")
        # per worker, in the order they finished: its own work, after its wait for its turn
        out["warm_up"] = [(w.get("seconds"), w.get("waited_seconds")) for w in warmed]
        dash = Dashboard(url, "bench", PASSWORD, spread=args.workers > 1)
        after: dict[str, float] = {}
        for title, path, _uri in pages[:-1]:
            after[title] = dash.content(path, "?period=last_quarter")[0] * 1000
        out["after_warm_up"] = after
    finally:
        stop(process)
    return out


def render_profile(prof: dict[str, Any]) -> list[str]:
    """The in-process profile (step 6) as Markdown lines."""
    lines = ["", "First views in this process, nothing memoised (a fresh Data per state; the "
             "shared reader already open): the whole render, and the queries it ran. "
             "*Other* = page code, charts, the ingest store.", "",
             "| state | page | total ms | CPU ms | queries | in queries ms | other ms | "
             "slowest (ms) |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in prof["pages"]:
        top = ", ".join(f"{name} {ms:.0f}" for name, ms, _ in r["top"])
        lines.append(f"| {r['state']} | {r['page']} | {r['ms']:.0f} | {r['cpu']:.0f} | "
                     f"{r['queries']} | {r['query_ms']:.0f} | {r['ms'] - r['query_ms']:.0f} | "
                     f"{top} |")
    c, rv = prof["counts"], prof["review"]
    lines += ["", f"The Overview cards' figures, unfiltered quarter and its previous "
              f"period: counting candidate_alt_labels and new_concept_proposals, summing "
              f"translation_feedback, implementer_uptake and catalogue_coverage "
              f"{c['lists_ms']:.0f} ms; sql/kpi_counts.sql "
              f"{c['counts_ms']:.0f} ms (x{c['counts_ms'] / c['lists_ms']:.2f}), same "
              f"figures. The review loop's figures (kpi.review.summary, over every item): "
              f"computed {rv['computed_ms']:.0f} ms; read back by another worker from "
              f"Data.review_summary's memo {rv['memo_ms']:.1f} ms, same figures."]
    return lines


def render(command: str, out: dict[str, Any], load: tuple[float, ...],
           load_after: tuple[float, ...]) -> str:
    info = agg_bench.machine()
    lines = [
        f"## Dashboard callbacks, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['nproc']} cores, {info['ram_gb']} GB, Python "
        f"{info['python']}, DuckDB {info['duckdb']}, commit {info['git']} (uncommitted in "
        f"kpi/: {info['dirty']}); load average {load[0]:.2f} before, {load_after[0]:.2f} "
        "after  ",
    ]
    if "cold" in out:
        lines += [
            f"Data: {out['events']:,} events (bench/aggregate.py's generator), "
            f"`esco-kpi serve --no-scheduler --workers {out['workers']}`, real HTTP on "
            f"loopback{SPREAD_NOTE if out['workers'] > 1 else ''}; {out['views']} views = "
            f"{out['pages']} pages x {len(PERIODS)} periods x {len(FILTERS)} filter states, "
            "warm-up off. Times are the whole POST to `_dash-update-component` as the "
            "browser sends it. First = the first request of a page for a period and "
            "filters (earlier pages of the same state may have computed some of its "
            "indicators); repeat = the same request again. A CSV download is the GET of "
            "its file (`/dashboard/<page>/<table>.csv`), until the whole file arrived; its "
            f"repeats come {DOWNLOAD_PAUSE} s after the first (the file is kept by a "
            "background write).",
            "",
            f"Baseline (a URL with no page: HTTP, session, Dash, JSON only): p50 "
            f"{out['baseline']['p50']:.1f} ms, p95 {out['baseline']['p95']:.1f} ms.",
            "",
            "| page | first p50 ms | first p95 ms | first max ms | repeat p50 ms | "
            f"repeat p95 ms | first p95 < {TARGET_P95_MS:.0f} | repeat p95 < "
            f"{TARGET_REPEAT_MS:.0f} | first p95 / baseline p95 |",
            "|---|---:|---:|---:|---:|---:|---|---|---:|",
        ]
        base = out["baseline"]["p95"]
        rows = [*out["cold"].items(), ("**all views**", out["cold_all"])]
        for title, c in rows:
            w = out["warm"].get(title, out["warm_all"])
            lines.append(
                f"| {title} | {c['p50']:.0f} | {c['p95']:.0f} | {c['max']:.0f} | "
                f"{w['p50']:.0f} | {w['p95']:.0f} | "
                f"{'yes' if c['p95'] < TARGET_P95_MS else '**no**'} | "
                f"{'yes' if w['p95'] < TARGET_REPEAT_MS else '**no**'} | "
                f"{c['p95'] / base:.1f} |")
        turns = "; ".join(f"{work} s (after waiting {wait} s)"
                          for work, wait in out["warm_up"])
        lines += ["", f"With `dashboard.warm_up` (the default): the warm-up of "
                  f"{out['warm_up_views']} default views took, per worker in the order they "
                  f"finished, {turns}; then the first request of each page for the preset "
                  "last quarter: "
                  + ", ".join(f"{t} {ms:.0f} ms" for t, ms in out["after_warm_up"].items())
                  + "."]
        lines += ["", "First views by period: " + ", ".join(
            f"{p} p50 {v['p50']:.0f} / p95 {v['p95']:.0f} ms"
            for p, v in out["cold_by_period"].items()) + ".",
            "", "The slowest first views: " + "; ".join(
                f"{page} ({state}) {ms:.0f} ms" for ms, page, state in
                reversed(out["slowest"])) + ".",
            "",
            f"URL/filter sync callback: p50 {out['sync']['p50']:.1f} ms, p95 "
            f"{out['sync']['p95']:.1f} ms.", "",
            "| CSV download (unfiltered quarter) | page | rows | first ms | repeat p50 ms | "
            "repeat p95 ms |", "|---|---|---:|---:|---:|---:|"]
        for table, d in out["downloads"].items():
            lines.append(f"| {table} | {d['page']} | {d['rows']:,} | {d['first_ms']:.0f} | "
                         f"{d['warm_p50']:.0f} | {d['warm_p95']:.0f} |")
    if "profile" in out:
        lines += render_profile(out["profile"])
    if "spans" in out:
        lines += ["", "What the month and quarter rollups add to a publish (the aggregator's "
                  "side: kpi.warehouse.published._publish_spans alone, on a copy of the "
                  "published files, best of 2):", "",
                  "| dirty days | files written | wall s | CPU s |", "|---|---:|---:|---:|",
                  *(f"| {label} | {n} | {wall:.2f} | {cpu:.2f} |"
                    for label, n, wall, cpu in out["spans"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="1 M events")
    parser.add_argument("--cache", default=str(HERE / "out"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1,
                        help="gunicorn workers (1: every request meets the same cache)")
    parser.add_argument("--rounds", type=int, default=2, help="warm repetitions of each view")
    parser.add_argument("--no-results", action="store_true")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the in-process profile of first views")
    parser.add_argument("--profile-only", action="store_true",
                        help="only the in-process profile, no server")
    parser.add_argument("--against", type=Path, default=None, metavar="TREE",
                        help="only the first views, on this checkout's server and on TREE's "
                             "(a worktree of another commit, its kpi/sql linked to its sql/) "
                             "at once, in turn")
    parser.add_argument("--passes", type=int, default=3,
                        help="with --against: passes over every first view, each from "
                             "nothing computed")
    args = parser.parse_args()
    if args.quick:
        args.events = 1_000_000
    args.database_url = None  # prepare_store's SQLite path
    command = "python bench/dashboard.py " + " ".join(sys.argv[1:])
    load = agg_bench.loadavg()
    if args.against:
        out = run_against(args, args.against.resolve())
        report = render_against(command, out, load, agg_bench.loadavg())
    else:
        out = run(args)
        report = render(command, out, load, agg_bench.loadavg())
    print(report)
    if not args.no_results:
        agg_bench.append_results(report)


if __name__ == "__main__":
    main()
