"""The indicators' SQL against an earlier revision's: the same rows, and how fast, on one warehouse.

    python bench/sql_models.py --store bench/out/agg-2000000-s7-g1/var --baseline-rev 38a6c42

Aggregates a copy of an ingest store made by bench/aggregate.py (--generate-only), then runs
every indicator and support query over one quarter with several filter combinations, twice
per round: the SQL of this checkout (the indicators over the shared macros of sql/macros/) and
the SQL of the baseline revision (read with `git show`), on the same reader, in alternating
order. Checks that both give exactly the same rows, and prints the median time of each and
their ratio. Appends the table to bench/RESULTS.md unless --no-results.
"""

from __future__ import annotations

import argparse
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


def baseline_sql(rev: str, name: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:sql/{name}.sql"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def timed(con: Any, sql: str, params: dict[str, Any]) -> tuple[float, list[tuple]]:
    cur = con.cursor()
    try:
        t0 = time.perf_counter()
        rows = cur.execute(sql, params).fetchall()
        return time.perf_counter() - t0, rows
    finally:
        cur.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, type=Path,
                        help="a data folder holding ingest.sqlite3 (bench/aggregate.py's cache)")
    parser.add_argument("--baseline-rev", default="38a6c42")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()

    from kpi.settings import Settings
    from kpi.warehouse import models
    from kpi.warehouse.aggregate import run_aggregation
    from kpi.warehouse.indicators import INDICATORS, SUPPORT_QUERIES, Period, applicable_filters
    from kpi.warehouse.reader import open_reader

    work = Path(tempfile.mkdtemp(prefix="esco-kpi-sql-bench-"))
    try:
        shutil.copytree(args.store, work / "var")
        settings = Settings({"storage.data_dir": str(work / "var")}, base_dir=work)
        t0 = time.perf_counter()
        run_aggregation(settings)
        print(f"aggregated {args.store} in {time.perf_counter() - t0:.1f} s", flush=True)
        con = open_reader(settings)
        period = Period.quarter("2026-Q3")
        previous = period.previous()
        top = con.execute("""
            select k.uri from usage_daily as u join concept_keys as k on k.key = u.concept_key
            group by k.uri order by sum(u.usage) desc limit 1""").fetchone()[0]
        base = {"start": period.start, "end": period.end, "prev_start": previous.start,
                "prev_end": previous.end, "label_language": "en", "concept_uri": top,
                "grain": "week", "implementer_id": None}
        rows_out = []
        for name in (*INDICATORS, *SUPPORT_QUERIES):
            new_sql, old_sql = models.sql(name), baseline_sql(args.baseline_rev, name)
            usable = set(applicable_filters(name)) | {"concept_uri"}
            for label, filters in FILTER_SETS.items():
                if filters and not set(filters) <= usable:
                    continue
                values = {**base, "concept_type": None, "language": None, "country": None,
                          "sector": None, "context": None, **filters}
                if name in ("candidate_alt_labels", "translation_feedback"):
                    values["concept_uri"] = None  # the whole list, as the pages ask it
                new_p = {k: v for k, v in values.items() if k in models.parameters(new_sql)}
                old_p = {k: v for k, v in values.items() if k in models.parameters(old_sql)}
                new_t, old_t = [], []
                for i in range(args.runs):
                    pair = [("new", new_sql, new_p), ("old", old_sql, old_p)]
                    for which, sql, params in pair if i % 2 else pair[::-1]:
                        seconds, rows = timed(con, sql, params)
                        (new_t if which == "new" else old_t).append(seconds)
                        if which == "new":
                            new_rows = rows
                        else:
                            old_rows = rows
                if new_rows != old_rows:
                    raise SystemExit(f"{name} ({label}): rows differ from {args.baseline_rev}")
                new_ms = statistics.median(new_t) * 1000
                old_ms = statistics.median(old_t) * 1000
                rows_out.append((name, label, len(new_rows), old_ms, new_ms))
                print(f"{name:24} {label:24} {len(new_rows):>7} rows  "
                      f"{args.baseline_rev} {old_ms:8.1f} ms  now {new_ms:8.1f} ms  "
                      f"x{new_ms / old_ms:.2f}", flush=True)
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    total_old = sum(r[3] for r in rows_out)
    total_new = sum(r[4] for r in rows_out)
    print(f"all queries: {args.baseline_rev} {total_old:.0f} ms, now {total_new:.0f} ms, "
          f"x{total_new / total_old:.2f}; every result identical")
    if args.no_results:
        return
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    lines = [
        "", f"## SQL models against {args.baseline_rev} — "
        f"{datetime.now().strftime('%Y-%m-%d %H:%M')}", "",
        f"`python bench/sql_models.py --store {args.store} --baseline-rev {args.baseline_rev}"
        f" --runs {args.runs}` — git {git}; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}. Median of {args.runs} runs each, alternating, "
        "same reader; every query returned exactly the same rows.", "",
        f"| query | filters | rows | {args.baseline_rev} ms | now ms | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
        *(f"| {n} | {f} | {r} | {o:.1f} | {w:.1f} | {w / o:.2f} |"
          for n, f, r, o, w in rows_out),
        f"| **all** | | | {total_old:.0f} | {total_new:.0f} | {total_new / total_old:.2f} |",
    ]
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
