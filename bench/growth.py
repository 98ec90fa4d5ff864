"""Cost growth benchmark: how aggregation, the dashboard and memory grow with the event count.

    python bench/growth.py                      # 1 M, 3 M, 10 M and 30 M events (hours)
    python bench/growth.py --sizes 200000,500000 --no-results
    python bench/growth.py --no-dashboard       # the refreshes alone
    python bench/growth.py --plot-only          # redraw bench/growth.png and the table
    python bench/growth.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/esco_growth

For each size, in increasing order, on a working copy of bench/aggregate.py's cached store for
(events, seed) in bench/out/growth-<events>/ (removed at the end of the size unless --keep),
each phase in a fresh process as bench/aggregate.py runs them:

1. Full refresh: the first `run_aggregation` of the whole store (empty warehouse): wall s,
   CPU-s (the process and its children), peak RSS of the process tree.
2. Cold dashboard: `esco-kpi serve --no-scheduler --workers 2` with the warm-up off and no
   shared page cache, on the warehouse of step 1 (exactly <events> events). Every page of
   dashboard.pages.PAGES plus the concept page of the most used concept, for the periods
   "quarter" and "month" x the filters none / country=DE / DE skills / language=de: the first
   request of each (page, period, filters), POSTed to Dash's callback endpoint as the browser
   does (bench/dashboard.py's client, a new connection per request so that requests spread
   over both workers). p50 / p95 / max ms, and the peak RSS of the server's process tree
   while they run.
3. Incremental refresh after 100 k new events on the data's last 3 days: wall s, CPU-s, peak
   RSS, and its share of the full refresh.

Baselines, from the same run: every figure against the smallest size's (ratios), and per
metric the least-squares slope of log(metric) on log(events), over all sizes and between the
two largest: 1.0 is linear growth, less is sublinear.

Writes bench/growth.json (the raw figures) and bench/growth.png (log-log plot), prints a
Markdown section and appends it to bench/RESULTS.md (--no-results to skip). With
--database-url (a PostgreSQL base URL) each size uses a database of its own, <name>_<events>,
created when missing; the events a run adds are deleted at the end of the size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The project's root first: bench/dashboard.py must not hide the dashboard package.
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import aggregate as agg_bench  # noqa: E402 - the store generator of bench/aggregate.py


def _load_dashboard_bench() -> ModuleType:
    """bench/dashboard.py as a module (under another name: `dashboard` is the package)."""
    spec = importlib.util.spec_from_file_location("dashboard_bench", HERE / "dashboard.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dashboard_bench"] = module
    spec.loader.exec_module(module)
    return module


dash_bench = _load_dashboard_bench()

SIZES = (1_000_000, 3_000_000, 10_000_000, 30_000_000)
INCREMENT = 100_000  # the new events of the incremental refresh (bench/aggregate.py's add-recent)
WORKERS = 2
DASH_PERIODS = ("quarter", "month")
DASH_FILTERS = ("none", "country=DE", "DE skills", "language=de")
BASELINE_REQUESTS = 10
JSON_OUT = HERE / "growth.json"
PNG_OUT = HERE / "growth.png"

# (key, label, unit, panel): the figures that get a slope, a ratio and a line in the plot
METRICS = (
    ("full_s", "full refresh, wall", "s", "time"),
    ("full_cpu", "full refresh, CPU", "CPU-s", "time"),
    ("incr_s", "incremental refresh, wall", "s", "time"),
    ("incr_cpu", "incremental refresh, CPU", "CPU-s", "time"),
    ("cold_p50", "cold dashboard p50", "ms", "dashboard"),
    ("cold_p95", "cold dashboard p95", "ms", "dashboard"),
    ("cold_max", "cold dashboard max", "ms", "dashboard"),
    ("full_mb", "full refresh, peak RSS", "MB", "memory"),
    ("incr_mb", "incremental refresh, peak RSS", "MB", "memory"),
    ("server_mb", "dashboard server, peak RSS", "MB", "memory"),
)
# Okabe-Ito (colour-blind safe), with a marker each so that no two lines look alike
STYLE = {
    "full_s": ("#D55E00", "o"), "full_cpu": ("#E69F00", "s"),
    "incr_s": ("#0072B2", "^"), "incr_cpu": ("#56B4E9", "v"),
    "cold_p50": ("#009E73", "o"), "cold_p95": ("#CC79A7", "s"), "cold_max": ("#000000", "D"),
    "full_mb": ("#D55E00", "P"), "incr_mb": ("#0072B2", "X"), "server_mb": ("#009E73", "h"),
}
PANELS = {"time": "Refresh time", "dashboard": "First (cold) dashboard request",
          "memory": "Peak memory (RSS of the process tree)"}
PANEL_UNITS = {"time": "seconds (wall s, CPU-s)", "dashboard": "milliseconds",
               "memory": "MB"}


# ---------------------------------------------------------------------------------------------
# One size


def size_args(args: argparse.Namespace, events: int) -> argparse.Namespace:
    """The arguments bench/aggregate.py's helpers expect, for one size."""
    return argparse.Namespace(events=events, seed=args.seed, cache=args.cache,
                              database_url=size_database_url(args.database_url, events),
                              runs=1, scanner_python=None, profile=None)


def size_database_url(base: str | None, events: int) -> str | None:
    """The PostgreSQL database of one size, <name>_<events>; None for SQLite."""
    if not base:
        return None
    from sqlalchemy.engine import make_url

    url = make_url(base)
    return url.set(database=f"{url.database}_{events}").render_as_string(False)


def own_phase(phase: str, data_dir: Path, database_url: str | None) -> dict[str, Any]:
    """Run one of this script's phases in a fresh process; its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--data-dir",
           str(data_dir)]
    if database_url:
        cmd += ["--database-url", database_url]
    return agg_bench.phase_result(cmd, phase)


def phase_dashboard_user(data_dir: Path, database_url: str | None) -> dict[str, Any]:
    """The dashboard user (as bench/dashboard.py adds it) and the most used concept."""
    from kpi.store.db import make_engine
    from kpi.store.registry import RegistryError, add_user, set_password

    engine = make_engine(agg_bench._settings(data_dir, database_url))
    try:
        add_user(engine, "bench", dash_bench.PASSWORD)
    except RegistryError:
        set_password(engine, "bench", dash_bench.PASSWORD)
    engine.dispose()
    return {"concept": dash_bench.top_concept(data_dir, database_url)}


def measure_dashboard(work: Path, data_dir: Path, database_url: str | None) -> dict[str, Any]:
    """Step 2 of the module's docstring: the first request of every view on a fresh server."""
    from dashboard.pages import PAGES

    concept = own_phase("dashboard-user", data_dir, database_url)["concept"]
    pages = [(p.TITLE, "/dashboard/" + p.PATH, None) for p in PAGES]
    pages.append(("Concept", "/dashboard/concept", concept))
    config = work / "config.yaml"
    dash_bench.write_config(config, data_dir, warm_up=False, database_url=database_url)
    url, process, _log = dash_bench.start(config, WORKERS)
    views: list[dict[str, Any]] = []
    try:
        idle_mb = agg_bench._tree_rss_kb(process.pid) / 1024
        dash = dash_bench.Dashboard(url, "bench", dash_bench.PASSWORD, spread=True)
        # HTTP, session check, Dash and JSON alone: a URL with no page (nothing computed)
        baseline = [dash.content("/dashboard/no-such-page",
                                 dash_bench.search_of("quarter", {}))[0]
                    for _ in range(BASELINE_REQUESTS)]
        t0 = time.perf_counter()
        with agg_bench.PeakSampler(pid=process.pid) as sampler:
            for period in DASH_PERIODS:
                for fname in DASH_FILTERS:
                    for title, path, uri in pages:
                        search = dash_bench.search_of(period, dash_bench.FILTERS[fname], uri)
                        elapsed = dash.content(path, search)[0]
                        views.append({"period": period, "filters": fname, "page": title,
                                      "ms": elapsed * 1000})
                    print(f"    {period}, {fname}: {len(views)} views "
                          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        dash_bench.stop(process)
    by_page: dict[str, list[float]] = {}
    for v in views:
        by_page.setdefault(v["page"], []).append(v["ms"] / 1000)
    return {"concept": concept, "workers": WORKERS, "views": views,
            "cold": dash_bench.pcts([v["ms"] / 1000 for v in views]),
            "by_page": {t: dash_bench.pcts(v) for t, v in by_page.items()},
            "baseline": dash_bench.pcts(baseline), "seconds": time.perf_counter() - t0,
            "server_peak_mb": sampler.peak_kb / 1024, "server_idle_mb": idle_mb}


def delete_added(data_dir: Path, database_url: str, first_event: int) -> None:
    """Leave a PostgreSQL store as generated: delete the events this run added."""
    from sqlalchemy import text

    engine = agg_bench._engine(agg_bench._settings(data_dir, database_url))
    with engine.begin() as conn:
        conn.execute(text("delete from events where event_id >= :e"),
                     {"e": f"b{first_event:010d}"})
    engine.dispose()


def measure_size(args: argparse.Namespace, events: int) -> dict[str, Any]:
    """Every phase for one size; the figures as a dict (see growth.json)."""
    sargs = size_args(args, events)
    print(f"== {events:,} events", flush=True)
    t0 = time.perf_counter()
    cached, meta = agg_bench.prepare_store(sargs)
    print(f"  store ready in {time.perf_counter() - t0:.1f} s: {cached}", flush=True)
    work = Path(args.cache).resolve() / f"growth-{events}"
    data_dir = agg_bench.working_copy(cached, work, sargs.database_url)
    out: dict[str, Any] = {"events": meta["events"], "load_at_start": agg_bench.loadavg()[0]}
    try:
        full = agg_bench.spawn("aggregate", sargs, data_dir, work)
        out["full"] = full
        print(f"  full refresh: {full['seconds']:.1f} s, {full['cpu_seconds']:.1f} CPU-s, "
              f"peak {full['peak_tree_mb']:.0f} MB ({full['days']} days)", flush=True)
        if args.no_dashboard:
            out["dashboard"] = None
        else:
            print("  cold dashboard ...", flush=True)
            dash = measure_dashboard(work, data_dir, sargs.database_url)
            out["dashboard"] = dash
            c = dash["cold"]
            print(f"  cold dashboard: {c['n']} views in {dash['seconds']:.0f} s, p50 "
                  f"{c['p50']:.0f} / p95 {c['p95']:.0f} / max {c['max']:.0f} ms, server "
                  f"peak {dash['server_peak_mb']:.0f} MB", flush=True)
        added = agg_bench.spawn("add-recent", sargs, data_dir, work,
                                first_event=meta["next_event"])
        incr = agg_bench.spawn("aggregate", sargs, data_dir, work)
        out["incremental"] = {**incr, "added": INCREMENT, "add_seconds": added["seconds"]}
        print(f"  incremental refresh after {INCREMENT:,} events: {incr['seconds']:.2f} s, "
              f"{incr['cpu_seconds']:.1f} CPU-s ({incr['seconds'] / full['seconds']:.1%} of "
              f"the full), peak {incr['peak_tree_mb']:.0f} MB ({incr['days']} days)",
              flush=True)
    finally:
        if sargs.database_url:
            delete_added(data_dir, sargs.database_url, meta["next_event"])
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"  size done in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# Figures, slopes, the report


def figures(size: dict[str, Any]) -> dict[str, float | None]:
    """The METRICS of one size (None when not measured)."""
    full, incr, dash = size["full"], size["incremental"], size.get("dashboard")
    return {
        "full_s": full["seconds"], "full_cpu": full["cpu_seconds"],
        "full_mb": full["peak_tree_mb"],
        "incr_s": incr["seconds"], "incr_cpu": incr["cpu_seconds"],
        "incr_mb": incr["peak_tree_mb"],
        "cold_p50": dash["cold"]["p50"] if dash else None,
        "cold_p95": dash["cold"]["p95"] if dash else None,
        "cold_max": dash["cold"]["max"] if dash else None,
        "server_mb": dash["server_peak_mb"] if dash else None,
    }


def slope(events: list[int], values: list[float | None]) -> float | None:
    """Least-squares slope of log(value) on log(events); None with fewer than two points."""
    import numpy as np

    pairs = [(e, v) for e, v in zip(events, values, strict=True) if v is not None and v > 0]
    if len(pairs) < 2:
        return None
    x = np.log([p[0] for p in pairs])
    y = np.log([p[1] for p in pairs])
    return float(np.polyfit(x, y, 1)[0])


def events_label(n: int) -> str:
    """1000000 -> '1 M', 500000 -> '500 k'."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:g} M"
    if n >= 1_000:
        return f"{n / 1_000:g} k"
    return str(n)


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def render(data: dict[str, Any]) -> str:
    """The Markdown section for bench/RESULTS.md."""
    sizes = sorted(data["sizes"], key=lambda s: s["events"])
    events = [s["events"] for s in sizes]
    figs = [figures(s) for s in sizes]
    info = data["machine"]
    lb, la = data["load_before"], data["load_after"]
    store = data["store"]
    span = (f"{events_label(events[0])} to {events_label(events[-1])} events" if len(events) > 1
            else f"{events_label(events[0])} events")
    lines = [
        f"## Cost growth ({store} ingest store, {span}), {data['date']}",
        "",
        f"Command: `{data['command']}`  ",
        f"Machine: {info['cpu']}, {info['nproc']} cores, {info['ram_gb']} GB, Python "
        f"{info['python']}, DuckDB {info['duckdb']}, pyarrow {info['pyarrow']}, SQLite "
        f"{info['sqlite']}, commit {info['git']} (uncommitted in kpi/: {info['dirty']}); load "
        f"average before {lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f}, after {la[0]:.2f} / "
        f"{la[1]:.2f} / {la[2]:.2f} (1 / 5 / 15 min)  ",
        f"Data: bench/aggregate.py's generator (seed {data['seed']}), one store per size, "
        "each phase in a fresh process. Full refresh = the first `run_aggregation` of the "
        f"whole store; incremental = the run after {INCREMENT:,} new events on the last 3 "
        "days. CPU-s = user + system CPU of the phase's process and its children; peak MB = "
        "RSS of the process tree, sampled every 50 ms"
        + (" (PostgreSQL's own processes not included)" if store == "PostgreSQL" else "")
        + ".",
    ]
    if any(s.get("dashboard") for s in sizes):
        d = next(s["dashboard"] for s in sizes if s.get("dashboard"))
        views = d["cold"]["n"]
        lines.append(
            f"Cold dashboard: `esco-kpi serve --no-scheduler --workers {d['workers']}`, warm-up "
            f"off, on the full refresh's warehouse; the first request of each of {views} views "
            f"= {views // (len(DASH_PERIODS) * len(DASH_FILTERS))} pages (every page and the "
            f"most used concept's) x periods {' / '.join(DASH_PERIODS)} x filters "
            f"{' / '.join(DASH_FILTERS)}, in that order (a page may reuse indicators an "
            "earlier page of the same period and filters computed); the whole POST to "
            "`_dash-update-component`, a new connection per request. Server peak MB = the "
            "server's process tree during those views.")
    lines += [
        "",
        "| events | full refresh s | full CPU-s | full peak MB | incremental s | "
        "incremental CPU-s | incremental % of full | incremental peak MB | cold p50 ms | "
        "cold p95 ms | cold max ms | server peak MB | load at start |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s, f in zip(sizes, figs, strict=True):
        share = f["incr_s"] / f["full_s"]
        lines.append(
            f"| {s['events']:,} | {f['full_s']:.1f} | {f['full_cpu']:.1f} | "
            f"{f['full_mb']:.0f} | {f['incr_s']:.2f} | {f['incr_cpu']:.2f} | {share:.1%} | "
            f"{f['incr_mb']:.0f} | {_num(f['cold_p50'], '.0f')} | "
            f"{_num(f['cold_p95'], '.0f')} | {_num(f['cold_max'], '.0f')} | "
            f"{_num(f['server_mb'], '.0f')} | {s['load_at_start']:.2f} |")
    if len(sizes) < 2:
        return "\n".join(lines) + "\n"
    head = " | ".join(f"{events_label(e)} (events ×{e / events[0]:.3g})" for e in events[1:])
    # between the two largest sizes: only worth a column of its own with three sizes or more
    local = len(events) > 2
    lines += [
        "",
        f"Growth against the smallest size ({events_label(events[0])} events, this run). "
        "Slope = least-squares fit of log(metric) on log(events) over all sizes (1.00 = "
        "linear); at most linear = slope ≤ 1.0, judged on the unrounded slope."
        + (" The slope between the two largest sizes shows whether growth speeds up once "
           "fixed costs (imports, the catalogue, the server's start) stop dominating."
           if local else ""),
        "",
        f"| metric | slope | at most linear | {'slope, two largest | ' if local else ''}"
        f"{head} |",
        "|---|---:|---|" + ("---:|" if local else "") + "---:|" * (len(events) - 1),
    ]
    for key, label, unit, _panel in METRICS:
        values = [f[key] for f in figs]
        if all(v is None for v in values):
            continue
        k = slope(events, values)
        last = slope(events[-2:], values[-2:])
        ok = "—" if k is None else ("yes" if k <= 1.0 else "**no**")
        ratios = " | ".join(
            "—" if v is None or not values[0] else f"×{v / values[0]:.2f}" for v in values[1:])
        lines.append(f"| {label} ({unit}) | {_num(k, '.2f')} | {ok} | "
                     + (f"{_num(last, '.2f')} | " if local else "") + f"{ratios} |")
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], path: Path) -> None:
    """The log-log plot: one panel per unit, and every metric relative to the smallest size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator

    sizes = sorted(data["sizes"], key=lambda s: s["events"])
    events = [s["events"] for s in sizes]
    figs = [figures(s) for s in sizes]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), constrained_layout=True)
    panels = {"time": axes[0][0], "dashboard": axes[0][1], "memory": axes[1][0]}
    relative = axes[1][1]
    x_ref = [events[0], events[-1]]
    for key, label, unit, panel in METRICS:
        values = [f[key] for f in figs]
        points = [(e, v) for e, v in zip(events, values, strict=True) if v]
        if not points:
            continue
        colour, marker = STYLE[key]
        xs, ys = zip(*points, strict=True)
        ax = panels[panel]
        ax.plot(xs, ys, color=colour, marker=marker, linewidth=1.8, markersize=7,
                label=f"{label} ({unit})")
        # linear growth from this metric's smallest size
        ax.plot([xs[0], xs[-1]], [ys[0], ys[0] * xs[-1] / xs[0]], color=colour, linestyle="--",
                linewidth=1.0, alpha=0.6)
        relative.plot(xs, [y / ys[0] for y in ys], color=colour, marker=marker,
                      linewidth=1.4, markersize=6)
    relative.plot(x_ref, [1.0, x_ref[1] / x_ref[0]], color="#555555", linestyle="--",
                  linewidth=2.0)
    for panel, ax in panels.items():
        ax.set_title(PANELS[panel])
        ax.set_ylabel(PANEL_UNITS[panel] + " (log scale)")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="#555555", linestyle="--", linewidth=1.0))
        labels.append("linear from the smallest size (same colour)")
        if len(handles) > 1:
            ax.legend(handles, labels, fontsize=8, loc="upper left")
    relative.set_title("Relative to the smallest size (colours as in the other panels)")
    relative.set_ylabel("× the smallest size's figure (log scale)")
    relative.legend([Line2D([], [], color="#555555", linestyle="--", linewidth=2.0)],
                    ["linear (slope 1)"], fontsize=8, loc="upper left")
    for ax in (*panels.values(), relative):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("events in the store (log scale)")
        ax.set_xticks(events, [events_label(e) for e in events])
        ax.minorticks_off()
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(f"Cost growth with the number of events ({data['store']} store, "
                 f"{data['date']}, commit {data['machine']['git']})")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(data: dict[str, Any]) -> None:
    """bench/growth.json and bench/growth.png."""
    JSON_OUT.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    plot(data, PNG_OUT)


# ---------------------------------------------------------------------------------------------
# The run


def parse_sizes(text: str) -> list[int]:
    """'1000000,3000000' -> [1000000, 3000000], sorted, without repeats."""
    try:
        sizes = sorted({int(t.replace("_", "")) for t in text.split(",") if t.strip()})
    except ValueError as exc:
        raise SystemExit(f"--sizes: {exc}") from exc
    if not sizes or sizes[0] <= 0:
        raise SystemExit("--sizes needs positive event counts")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES),
                        help="event counts, comma-separated (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", default=str(HERE / "out"))
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL base URL: each size uses the database "
                             "<name>_<events> (created when missing)")
    parser.add_argument("--keep", action="store_true",
                        help="keep bench/out/growth-<events>/ after each size")
    parser.add_argument("--no-dashboard", action="store_true", help="skip the cold dashboard")
    parser.add_argument("--no-results", action="store_true",
                        help="do not append to bench/RESULTS.md")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw bench/growth.png and print the table from bench/growth.json")
    # internal: one phase in this process
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        if args.phase != "dashboard-user":
            raise SystemExit(f"unknown phase {args.phase}")
        result = phase_dashboard_user(Path(args.data_dir), args.database_url)
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.plot_only:
        if not JSON_OUT.exists():
            raise SystemExit(f"no {JSON_OUT}: run the benchmark first")
        data = json.loads(JSON_OUT.read_text(encoding="utf-8"))
        plot(data, PNG_OUT)
        print(render(data))
        print(f"drew {PNG_OUT}")
        return

    sizes = parse_sizes(args.sizes)
    data: dict[str, Any] = {
        "command": "python bench/growth.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "store": "PostgreSQL" if args.database_url else "SQLite", "seed": args.seed,
        "increment": INCREMENT, "dashboard_periods": {p: dash_bench.PERIODS[p]
                                                      for p in DASH_PERIODS},
        "dashboard_filters": {f: dash_bench.FILTERS[f] for f in DASH_FILTERS},
        "load_before": list(agg_bench.loadavg()), "sizes": [],
    }
    print("sizes: " + ", ".join(f"{s:,}" for s in sizes), flush=True)
    t0 = time.perf_counter()
    for events in sizes:
        data["sizes"].append(measure_size(args, events))
        # written after every size, so that a long run that stops keeps what it measured
        data["load_after"] = list(agg_bench.loadavg())
        data["machine"] = agg_bench.machine()
        write_outputs(data)
    print(f"all sizes in {time.perf_counter() - t0:.0f} s", flush=True)
    report = render(data)
    print(report)
    print(f"wrote {JSON_OUT} and {PNG_OUT}")
    if not args.no_results:
        agg_bench.append_results(report)


if __name__ == "__main__":
    main()
