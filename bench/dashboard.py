"""Dashboard benchmark: every page's callbacks and CSV downloads over real HTTP, with 10 M events.

    python bench/dashboard.py                  # 10 M events (the store of bench/aggregate.py)
    python bench/dashboard.py --quick          # 1 M events
    python bench/dashboard.py --workers 2 --rounds 3

1. The ingest store of bench/aggregate.py (generated once, cached in bench/out/) is copied to
   bench/out/dashboard-<events>/ and aggregated there (kept for later runs; a run after a code
   change that alters the warehouse format upgrades it).
2. `esco-kpi serve --no-scheduler` starts on a free port; a session logs in through /login.
3. Views: every page (and the concept page of the most used concept) x three periods (the
   data's last quarter, its last month, its first quarter) x six filter states, with the
   warm-up off. Each view's `content` callback is POSTed to /dashboard/_dash-update-component
   as the browser does it. Per period and filters, as a user moves through the pages:
   - cold: the first request of each page (nothing computed yet for these filters; the pages
     share indicator results, so later pages of the same filters are partly warm);
   - warm: every page again (--rounds times), as when the user comes back to it;
   then the URL/filter sync callback, and every CSV download of every page (unfiltered
   quarter), first and again.
4. Warm-up: the server restarted with `dashboard.warm_up` on; once it logged the warm-up of
   the default views, the first request of each page for the preset "last quarter".
5. Baseline in the same run: the same requests for a page with nothing to compute (a URL with
   no such page), which measures HTTP, session check, Dash and JSON alone.

Prints a table and appends it to bench/RESULTS.md (--no-results to skip). Target: p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
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
PASSWORD = "bench-dashboard-password"
PERIODS = {  # name: (start, end) within the generated data (2026-04-01 .. 2026-09-30)
    "quarter": ("2026-07-01", "2026-09-30"),
    "month": ("2026-09-01", "2026-09-30"),
    "first quarter": ("2026-04-01", "2026-06-30"),
}
FILTERS = {
    "none": {},
    "country=DE": {"country": "DE"},
    "language=de": {"language": "de"},
    "skills": {"concept_type": "skill"},
    "DE skills": {"country": "DE", "concept_type": "skill"},
    "sector=pes": {"sector": "pes"},
}
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
        button_id = json.dumps(button, sort_keys=True, separators=(",", ":"))
        elapsed, body = self._post({
            "output": "download.data",
            "outputs": {"id": "download", "property": "data"},
            "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
            "changedPropIds": [f"{button_id}.n_clicks"],
            "state": [{"id": "url", "property": "pathname", "value": path},
                      {"id": "url", "property": "search", "value": search}],
        })
        if body is None:
            raise SystemExit(f"no CSV for {button} on {path}{search}")
        content = body["response"]["download"]["data"]["content"]
        return elapsed, content.count("\n") - 1


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
    engine = make_engine(settings)
    try:
        add_user(engine, "bench", PASSWORD)
    except RegistryError:
        set_password(engine, "bench", PASSWORD)
    engine.dispose()
    return folder / "config.yaml", meta


def top_concept(data_dir: Path) -> str:
    from kpi.warehouse.indicators import Period, query

    settings = agg_bench._settings(data_dir)
    rows = query(settings, "most_used_concepts", Period.custom(*PERIODS["quarter"])).rows
    if not rows:
        raise SystemExit("no usage in the benchmark's quarter")
    return rows[0]["concept_uri"]


def start(config: Path, workers: int) -> tuple[str, Any, Path]:
    """A fresh server: the pages its workers share on disk are removed first, so that every
    phase starts with nothing computed."""
    from esco_kpi.server import spawn_serve, wait_until_up
    from tests.support import free_port

    shutil.rmtree(config.parent / "var" / "cache", ignore_errors=True)

    port = free_port()
    log = config.parent / "server.log"
    log.write_text("")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = spawn_serve(config, port, log, ("--no-scheduler", "--workers", str(workers)),
                          env=env)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process, log)
    return url, process, log


def stop(process: Any) -> None:
    """SIGTERM, SIGKILL after 30 s, then whatever is left of the server's process group."""
    from tests.support import stop_process

    stop_process(process, timeout=30)


def write_config(config: Path, data_dir: Path, warm_up: bool) -> None:
    config.write_text(f"storage:\n  data_dir: {data_dir}\ndashboard:\n  warm_up: "
                      f"{'true' if warm_up else 'false'}\n", encoding="utf-8")


def run(args) -> dict[str, Any]:
    from dashboard.pages import PAGES

    config, meta = prepare(args)
    data_dir = config.parent / "var"
    concept = top_concept(data_dir)
    pages = [(p.TITLE, "/dashboard/" + p.PATH, None) for p in PAGES]
    pages.append(("Concept", "/dashboard/concept", concept))
    out: dict[str, Any] = {"events": meta["events"], "workers": args.workers,
                           "concept": concept}

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
        f"Data: {out['events']:,} events (bench/aggregate.py's generator), "
        f"`esco-kpi serve --no-scheduler --workers {out['workers']}`, real HTTP on loopback"
        f"{SPREAD_NOTE if out['workers'] > 1 else ''}; "
        f"{out['views']} views = 8 pages x {len(PERIODS)} periods x {len(FILTERS)} filter "
        "states, warm-up off. Times are the whole POST to `_dash-update-component` as the "
        "browser sends it.",
        "",
        f"Baseline (a URL with no page: HTTP, session, Dash, JSON only): p50 "
        f"{out['baseline']['p50']:.1f} ms, p95 {out['baseline']['p95']:.1f} ms.",
        "",
        "| page | cold p50 ms | cold p95 ms | cold max ms | warm p50 ms | warm p95 ms | "
        f"warm p95 < {TARGET_P95_MS:.0f} ms |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for title, c in out["cold"].items():
        w = out["warm"][title]
        lines.append(f"| {title} | {c['p50']:.0f} | {c['p95']:.0f} | {c['max']:.0f} | "
                     f"{w['p50']:.0f} | {w['p95']:.0f} | "
                     f"{'yes' if w['p95'] < TARGET_P95_MS else '**no**'} |")
    c, w = out["cold_all"], out["warm_all"]
    lines.append(f"| **all views** | {c['p50']:.0f} | {c['p95']:.0f} | {c['max']:.0f} | "
                 f"{w['p50']:.0f} | {w['p95']:.0f} | "
                 f"{'yes' if w['p95'] < TARGET_P95_MS else '**no**'} |")
    turns = "; ".join(f"{work} s (after waiting {wait} s)" for work, wait in out["warm_up"])
    lines += ["", f"With `dashboard.warm_up` (the default): the warm-up of "
              f"{out['warm_up_views']} default views took, per worker in the order they "
              f"finished, {turns}; then the first request of each page for the preset last "
              "quarter: "
              + ", ".join(f"{t} {ms:.0f} ms" for t, ms in out["after_warm_up"].items()) + "."]
    lines += ["", "Cold views by period: " + ", ".join(
        f"{p} p50 {v['p50']:.0f} / p95 {v['p95']:.0f} ms"
        for p, v in out["cold_by_period"].items()) + ".",
        "",
        f"URL/filter sync callback: p50 {out['sync']['p50']:.1f} ms, p95 "
        f"{out['sync']['p95']:.1f} ms.", "",
        "| CSV download (unfiltered quarter) | page | rows | first ms | warm p50 ms | "
        "warm p95 ms |", "|---|---|---:|---:|---:|---:|"]
    for table, d in out["downloads"].items():
        lines.append(f"| {table} | {d['page']} | {d['rows']:,} | {d['first_ms']:.0f} | "
                     f"{d['warm_p50']:.0f} | {d['warm_p95']:.0f} |")
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
    args = parser.parse_args()
    if args.quick:
        args.events = 1_000_000
    args.database_url = None  # prepare_store's SQLite path
    command = "python bench/dashboard.py " + " ".join(sys.argv[1:])
    load = agg_bench.loadavg()
    out = run(args)
    report = render(command, out, load, agg_bench.loadavg())
    print(report)
    if not args.no_results:
        with (HERE / "RESULTS.md").open("a", encoding="utf-8") as handle:
            handle.write("\n" + report)
        print(f"appended to {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
