"""Loading the bundled ESCO release into a PostgreSQL store: COPY against multi-row INSERTs.

    python bench/catalogue_load.py [--database-url postgresql+psycopg://postgres@127.0.0.1/test]

The baseline inserts the release's concepts and labels as the loader did before it used COPY:
SQLAlchemy's executemany of the table's insert, in chunks of the loader's size, in one
transaction. The measured one is kpi.catalogue.load.load_catalogue, which also reads the files,
checks the release and records it. Each runs on a fresh database of the same server, alternating,
two rounds each (the best is kept); both read the files first, and must store the same concepts
and labels. The reading of the files alone is timed too. Appends to bench/RESULTS.md unless
--no-results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import aggregate as agg_bench  # noqa: E402 - the machine and RESULTS.md helpers of bench/aggregate.py
from sqlalchemy import Engine, create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from kpi.catalogue.files import read_release  # noqa: E402
from kpi.catalogue.load import BUNDLED_VERSION, bundled_path, load_catalogue  # noqa: E402
from kpi.settings import Settings  # noqa: E402
from kpi.store.db import concept_labels, concepts, init_store, make_engine  # noqa: E402

CHUNK = 5000  # the loader's chunk


@contextmanager
def fresh_database(url: str) -> Iterator[Engine]:
    """An engine on a new, empty store on the server of `url` (dropped afterwards)."""
    base = make_url(url)
    name = f"{base.database}_catalogue_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'create database "{name}"'))  # a generated identifier
    engine = make_engine(Settings({
        "storage.database_url": base.set(database=name).render_as_string(False)}))
    try:
        init_store(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def inserts(engine: Engine) -> None:
    """The baseline: concepts and labels by executemany of multi-row INSERTs."""
    release = read_release([bundled_path()], BUNDLED_VERSION)
    tables = (
        (concepts, [(BUNDLED_VERSION, uri, kind, status, release.codes.get(uri))
                    for uri, (kind, status) in release.concepts.items()]),
        (concept_labels, [(BUNDLED_VERSION, *label) for label in release.labels]),
    )
    with engine.begin() as conn:
        for table, rows in tables:
            names = [c.name for c in table.columns]
            for start in range(0, len(rows), CHUNK):
                conn.execute(table.insert(), [dict(zip(names, row, strict=True))
                                              for row in rows[start:start + CHUNK]])


def copy(engine: Engine) -> None:
    load_catalogue(engine, bundled_path(), BUNDLED_VERSION)


def stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in (concepts, concept_labels))


def timed(url: str, load: Callable[[Engine], None]) -> tuple[float, tuple[int, int]]:
    with fresh_database(url) as engine:
        started = time.perf_counter()
        load(engine)
        return time.perf_counter() - started, stored(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "ESCO_KPI_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    release = read_release([bundled_path()], BUNDLED_VERSION)
    reading = time.perf_counter() - started
    times: dict[str, list[float]] = {"inserts": [], "copy": []}
    counts = set()
    for round_ in range(args.rounds):
        for name, load in (("inserts", inserts), ("copy", copy)):
            seconds, rows = timed(args.database_url, load)
            times[name].append(seconds)
            counts.add(rows)
            print(f"round {round_ + 1}: {name} {seconds:.2f} s, {rows[0]:,} concepts, "
                  f"{rows[1]:,} labels", flush=True)
    if len(counts) != 1:
        sys.exit(f"the two ways stored different rows: {sorted(counts)}")
    base, now = min(times["inserts"]), min(times["copy"])
    info = agg_bench.machine()
    runs = "; ".join(f"{n} {', '.join(f'{s:.2f}' for s in v)} s" for n, v in times.items())
    text_ = (f"## Catalogue load on PostgreSQL ({info['date']})\n\n"
             f"`python bench/catalogue_load.py` — git {info['git']}; {info['cpu']}, "
             f"{info['nproc']} cores, Python {info['python']}, load "
             f"{os.getloadavg()[0]:.2f}. The bundled release ({len(release.concepts):,} "
             f"concepts, {len(release.labels):,} labels), best of {args.rounds}, each "
             f"reading the files first ({reading:.2f} s alone): concepts and labels by "
             f"multi-row INSERTs {base:.2f} s; `load_catalogue` (COPY; the release's checks "
             f"and record included) {now:.2f} s; **x{base / now:.1f}**, the same rows. "
             f"Runs: {runs}.\n")
    print(text_)
    if not args.no_results:
        agg_bench.append_results(text_)


if __name__ == "__main__":
    main()
