"""The indicators' SQL against an earlier revision's: the same rows, and how fast, on one warehouse.

    python bench/sql_models.py --store bench/out/agg-2000000-s7-g1/var --baseline-rev 38a6c42

    python bench/sql_models.py --data-dir bench/out/dashboard-10000000-s7/var --baseline-rev HEAD \
        --periods quarter,month,previous-month,odd --only most_used_concepts,concept_trends

Aggregates a copy of an ingest store made by bench/aggregate.py (--generate-only), or reads an
aggregated data folder in place (--data-dir, e.g. the one bench/dashboard.py keeps), then runs
every indicator and support query over each period with several filter combinations, twice
per round: the SQL of this checkout (the indicators over the shared macros of sql/macros/) and
the SQL of the baseline revision (read with `git show`, its macros installed on a reader of
their own over the same files), in alternating order. Checks that both give exactly the same
rows, and prints the median time of each (wall and CPU: on a shared machine the CPU time is
the steadier figure) and their ratio. Appends the table to bench/RESULTS.md unless
--no-results.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"

FILTER_SETS: dict[str, dict[str, Any]] = {
    "no filter": {},
    "language=de": {"language": "de"},
    "DE, skill, job_vacancy": {"country": "DE", "concept_type": "skill",
                               "context": "job_vacancy"},
}
# Periods within bench/aggregate.py's data (2026-04-01 .. 2026-09-30): whole spans, and ranges
# that are not (the previous period of a month is 30 days that start on the 2nd).
PERIODS: dict[str, tuple[str, str]] = {
    "quarter": ("2026-07-01", "2026-09-30"),
    "month": ("2026-09-01", "2026-09-30"),
    "previous-month": ("2026-08-02", "2026-08-31"),
    "odd": ("2026-05-15", "2026-09-03"),
}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def baseline_sql(rev: str, name: str) -> str:
    return git("show", f"{rev}:sql/{name}.sql")


def install_baseline_macros(con: Any, rev: str) -> None:
    """The baseline revision's sql/macros/ on a reader, in place of this checkout's."""
    from kpi.warehouse import models

    names = [line.rsplit("/", 1)[1][:-4] for line in
             git("ls-tree", "--name-only", rev, "sql/macros/").splitlines()
             if line.endswith(".sql")]
    texts = {n: baseline_sql(rev, f"macros/{n}") for n in names}
    pending = dict(texts)
    while pending:  # each after the ones it uses: retry what failed until nothing moves
        failed = {}
        for name, text in pending.items():
            try:
                for statement in models._STATEMENT_END.split(text):
                    if models._code(statement).strip():
                        con.execute(statement)
            except Exception:  # noqa: BLE001 - uses a macro not created yet
                failed[name] = text
        if len(failed) == len(pending):
            raise SystemExit(f"cannot install the macros of {rev}: {sorted(failed)}")
        pending = failed


def timed(con: Any, sql: str, params: dict[str, Any]) -> tuple[float, float, list[tuple]]:
    """(wall seconds, CPU seconds of this process, rows)."""
    cur = con.cursor()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        rows = cur.execute(sql, params).fetchall()
        return time.perf_counter() - t0, time.process_time() - c0, rows
    finally:
        cur.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path,
                       help="a data folder holding ingest.sqlite3 (bench/aggregate.py's cache), "
                            "aggregated into a temporary copy")
    where.add_argument("--data-dir", type=Path,
                       help="an aggregated data folder, read in place")
    parser.add_argument("--baseline-rev", default="HEAD")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--periods", default="quarter",
                        help=f"comma-separated, of: {', '.join(PERIODS)}")
    parser.add_argument("--only", default="", help="comma-separated query names (default: all)")
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()

    from kpi.settings import Settings
    from kpi.warehouse import models
    from kpi.warehouse.aggregate import run_aggregation
    from kpi.warehouse.indicators import INDICATORS, SUPPORT_QUERIES, Period, applicable_filters
    from kpi.warehouse.reader import open_reader
    from kpi.warehouse.spans import with_spans

    work = Path(tempfile.mkdtemp(prefix="esco-kpi-sql-bench-"))
    names = [n for n in (*INDICATORS, *SUPPORT_QUERIES)
             if not args.only or n in args.only.split(",")]
    periods = [p for p in args.periods.split(",") if p]
    try:
        if args.store:
            shutil.copytree(args.store, work / "var")
            data_dir = work / "var"
            settings = Settings({"storage.data_dir": str(data_dir)}, base_dir=work)
            t0 = time.perf_counter()
            run_aggregation(settings)
            print(f"aggregated {args.store} in {time.perf_counter() - t0:.1f} s", flush=True)
        else:
            data_dir = args.data_dir.resolve()
            settings = Settings({"storage.data_dir": str(data_dir)}, base_dir=data_dir.parent)
        con = open_reader(settings)
        old_con = open_reader(settings)
        install_baseline_macros(old_con, args.baseline_rev)
        top = con.execute("""
            select k.uri from usage_daily as u join concept_keys as k on k.key = u.concept_key
            group by k.uri order by sum(u.usage) desc limit 1""").fetchall()[0][0]
        rows_out = []
        for period_name in periods:
            period = Period.custom(*PERIODS[period_name])
            previous = period.previous()
            base = {"start": period.start, "end": period.end, "prev_start": previous.start,
                    "prev_end": previous.end, "label_language": "en", "concept_uri": top,
                    "grain": "week" if period.days > 62 else "day", "implementer_id": None}
            for name in names:
                try:
                    old_sql = baseline_sql(args.baseline_rev, name)
                except subprocess.CalledProcessError:
                    print(f"{name}: not in {args.baseline_rev}, nothing to compare", flush=True)
                    continue
                new_sql = models.sql(name)
                usable = set(applicable_filters(name)) | {"concept_uri"}
                for label, filters in FILTER_SETS.items():
                    if filters and not set(filters) <= usable:
                        continue
                    values = {**base, "concept_type": None, "language": None, "country": None,
                              "sector": None, "context": None, **filters}
                    if name in ("candidate_alt_labels", "translation_feedback"):
                        values["concept_uri"] = None  # the whole list, as the pages ask it
                    # the span bounds of kpi.warehouse.spans where a version's SQL names them
                    new_p = with_spans(values, models.parameters(new_sql))
                    old_p = with_spans(values, models.parameters(old_sql))
                    times: dict[str, list[tuple[float, float]]] = {"new": [], "old": []}
                    got: dict[str, list[tuple]] = {}
                    for i in range(args.runs):
                        pair = [("new", con, new_sql, new_p), ("old", old_con, old_sql, old_p)]
                        for which, c, sql, params in pair if i % 2 else pair[::-1]:
                            wall, cpu, got[which] = timed(c, sql, params)
                            times[which].append((wall, cpu))
                    if got["new"] != got["old"]:
                        raise SystemExit(f"{name} ({label}, {period_name}): rows differ from "
                                         f"{args.baseline_rev}")
                    med = {k: (statistics.median(w for w, _ in v) * 1000,
                               statistics.median(c for _, c in v) * 1000)
                           for k, v in times.items()}
                    rows_out.append((name, period_name, label, len(got["new"]), *med["old"],
                                     *med["new"]))
                    print(f"{name:24} {period_name:14} {label:24} {len(got['new']):>7} rows  "
                          f"{args.baseline_rev} {med['old'][0]:7.1f} ms (cpu {med['old'][1]:7.1f})"
                          f"  now {med['new'][0]:7.1f} ms (cpu {med['new'][1]:7.1f})  "
                          f"x{med['new'][0] / med['old'][0]:.2f}", flush=True)
        con.close()
        old_con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    total_old = sum(r[4] for r in rows_out)
    total_new = sum(r[6] for r in rows_out)
    cpu_old = sum(r[5] for r in rows_out)
    cpu_new = sum(r[7] for r in rows_out)
    print(f"all queries: {args.baseline_rev} {total_old:.0f} ms (cpu {cpu_old:.0f}), now "
          f"{total_new:.0f} ms (cpu {cpu_new:.0f}), x{total_new / total_old:.2f}; every result "
          "identical")
    if args.no_results:
        return
    head = git("rev-parse", "--short", "HEAD").strip()
    dirty = ", ".join(line[3:] for line in git("status", "--porcelain", "--", "sql", "kpi")
                      .splitlines()) or "none"
    load = os.getloadavg()
    lines = [
        "", f"## SQL models against {args.baseline_rev} — "
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')}", "",
        f"`python bench/sql_models.py {' '.join(sys.argv[1:])}` — git {head} (uncommitted in "
        f"sql/ and kpi/: {dirty}); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average "
        f"{load[0]:.2f} at the end. Median of {args.runs} runs each, alternating, over the "
        "same files (the baseline's SQL with its own macros); every query returned exactly "
        "the same rows. CPU = this process's CPU time (all DuckDB threads).", "",
        f"| query | period | filters | rows | {args.baseline_rev} ms | {args.baseline_rev} "
        "CPU ms | now ms | now CPU ms | ratio (CPU) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {n} | {p} | {f} | {r} | {o:.1f} | {oc:.1f} | {w:.1f} | {wc:.1f} | "
          f"{wc / oc:.2f} |" for n, p, f, r, o, oc, w, wc in rows_out),
        f"| **all** | | | | {total_old:.0f} | {cpu_old:.0f} | {total_new:.0f} | {cpu_new:.0f} "
        f"| {cpu_new / cpu_old:.2f} |",
    ]
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
