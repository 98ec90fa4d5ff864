"""The aggregator and the warehouse: incremental runs, exactly-once after SIGKILL, readers
that never see a lock error or half a run."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import delete, func, insert, inspect, select

from kpi.settings import Settings
from kpi.store.db import aggregation_runs, events, init_store
from kpi.warehouse import aggregate, models, private, published, reader
from kpi.warehouse.aggregate import (
    AggregationBusy,
    aggregation_lock,
    run_aggregation,
    safe_high_water_mark,
)
from kpi.warehouse.indicators import Period, query
from tests.kpi_fixtures import (
    O1,
    O2,
    S1,
    S2,
    S3,
    pg_database,
    published_state,
    standard_store,
    store_on,
)

ROOT = Path(__file__).resolve().parent.parent
TYPES = ("concept_used", "label_added", "concept_proposed", "translation_feedback")
LABELS = ("Café-Bar", "cafe bar", "Straße", "STRASSE", "ﬁle clerk", "File  Clerk!")


@pytest.fixture
def store(tmp_path):
    store = standard_store(tmp_path / "a")
    yield store
    store.engine.dispose()


def random_events(n: int, seed: int, days: tuple[str, str] = ("2026-07-01", "2026-07-30")):
    """n events of every type over a range of days, with pre-aggregated counts."""
    rnd = random.Random(seed)
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[1])
    span = (last - first).days
    out = []
    for _ in range(n):
        kind = rnd.choice(TYPES)
        row = {"type": kind, "day": first + timedelta(days=rnd.randint(0, span)),
               "implementer_id": rnd.randint(1, 3), "language": rnd.choice(("en", "de")),
               "context": rnd.choice(("cv", "search")), "count": rnd.randint(1, 5),
               "concept_uri": rnd.choice((O1, O2, S1, S2, S3))}
        if kind != "concept_used":
            row["label"] = rnd.choice(LABELS)
        if kind == "concept_proposed":
            row["concept_type"] = rnd.choice(("occupation", "skill"))
            row["concept_uri"] = rnd.choice((O1, None))
        out.append(row)
    return out


def clean_copy(store, folder: Path) -> Settings:
    """Settings for a brand-new warehouse over the same ingest store."""
    return Settings({"storage.data_dir": str(folder),
                     "storage.database_url": store.settings.database_url})


def ingest_total(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.sum(events.c.count)).where(
            events.c.status == "accepted", events.c.type == "concept_used")).scalar_one()


def reader_value(settings: Settings, sql: str) -> Any:
    """The first value of a query on a reader of the published files."""
    con = reader.open_reader(settings)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def published_total(settings: Settings) -> int:
    return reader_value(settings, "select coalesce(sum(usage), 0) from usage_daily")


def test_incremental_run_recomputes_only_touched_days_and_equals_a_full_rebuild(store,
                                                                                 tmp_path):
    store.events(*random_events(400, seed=1))
    first = store.aggregate()
    assert first.events_read == 400 and first.catalogue_copied
    assert first.previous_watermark == 0 and first.watermark == 400
    before = published.read_manifest(store.settings)

    # late events on two old days and one new day
    late = [{"day": "2026-07-03", "count": 7}, {"day": "2026-07-03", "type": "label_added",
                                                "label": "Neu"},
            {"day": "2026-07-20", "concept_uri": S2}, {"day": "2026-08-02", "concept_uri": S3}]
    store.events(*late)
    second = store.aggregate()
    assert (second.events_read, second.days_recomputed) == (4, 3)
    assert not second.catalogue_copied
    after = published.read_manifest(store.settings)
    # the daily rollups (their month and quarter sums change with them)
    # every day has ended: the days' months hold them packed, one more file each
    changed = {day for table, days in after["rollups"].items() for day, files in days.items()
               if table in published.PACKED
               and before["rollups"].get(table, {}).get(day) != files}
    assert changed == {"2026-07-01", "2026-08-01"}
    assert not any(after["rollups"].get(table) for table in published.ROLLUPS)

    # a re-run is a no-op
    third = store.aggregate()
    assert (third.events_read, third.days_recomputed) == (0, 0)
    assert third.snapshot == second.snapshot  # nothing new: nothing published
    assert published.read_manifest(store.settings)["rollups"] == after["rollups"]

    full = clean_copy(store, tmp_path / "full")
    assert run_aggregation(full).events_read == 404
    assert published_state(full) == published_state(store.settings)
    assert published_total(store.settings) == ingest_total(store)
    with store.engine.connect() as conn:
        runs = conn.execute(select(aggregation_runs.c.events_read, aggregation_runs.c.watermark)
                            .order_by(aggregation_runs.c.id)).all()
    assert [tuple(r) for r in runs] == [(400, 400), (4, 404), (0, 404), (404, 404)]


def _files(settings: Settings, table: str, day: str) -> list[str]:
    """A day's files of a daily table (the current month's days), or a month's or quarter's
    files of a month or quarter table."""
    return published.read_manifest(settings)["rollups"].get(table, {}).get(day, [])


def _packed(settings: Settings, table: str, month: str) -> list[str]:
    """The packed files of an ended month's days, of a daily table."""
    return _files(settings, f"{table}_packed", month)


def _days_with_events(settings: Settings) -> int:
    return reader_value(settings, "select count(distinct day) from activity_daily")


def test_a_small_run_adds_a_file_to_its_month_s_packed_days_and_sums(store, tmp_path):
    store.events(*random_events(200, seed=5, days=("2026-07-01", "2026-08-31")))
    store.aggregate()
    before = {(t, d): _files(store.settings, t, d) for t, d in (
        ("usage_daily_packed", "2026-07-01"), ("usage_daily_packed", "2026-08-01"),
        ("usage_monthly", "2026-07-01"), ("usage_quarterly", "2026-07-01"),
        ("usage_monthly", "2026-08-01"))}
    assert all(len(files) == 1 for files in before.values())

    store.events({"day": "2026-07-01", "count": 5}, {"day": "2026-07-01", "concept_uri": S2})
    run = store.aggregate()
    assert (run.events_read, run.days_recomputed) == (2, 1)
    # the day's (ended) month, its sums and its quarter's keep their files and get one more
    for table, day in (("usage_daily_packed", "2026-07-01"), ("usage_monthly", "2026-07-01"),
                       ("usage_quarterly", "2026-07-01")):
        files = _files(store.settings, table, day)
        assert files[0] == before[table, day][0] and len(files) == 2
    for table, day in (("usage_daily_packed", "2026-08-01"), ("usage_monthly", "2026-08-01")):
        assert _files(store.settings, table, day) == before[table, day]
    clean = clean_copy(store, tmp_path / "clean")
    run_aggregation(clean)
    assert published_state(store.settings) == published_state(clean)
    assert published_total(store.settings) == ingest_total(store)
    for period in (Period.month(date(2026, 7, 1)), Period.quarter(date(2026, 7, 1)),
                   Period(date(2026, 7, 1), date(2026, 7, 1))):
        assert query(store.settings, "most_used_concepts", period) == query(
            clean, "most_used_concepts", period)


def test_one_publish_recomputes_an_ended_month_and_adds_to_the_months_around_it(store, tmp_path):
    store.events(*random_events(300, seed=6, days=("2026-06-01", "2026-08-31")))
    store.aggregate()
    before = {m: _packed(store.settings, "usage_daily", m)
              for m in ("2026-06-01", "2026-07-01", "2026-08-01")}
    assert all(len(files) == 1 for files in before.values())

    # a day of July dirty (as an upgrade leaves it), late events on days of June and August
    with private.connect_private(store.settings) as con:
        con.execute("insert into dirty_days values (date '2026-07-10')")
    store.events({"day": "2026-06-20", "count": 3},
                 {"day": "2026-08-05", "count": 4}, {"day": "2026-08-05", "type": "label_added",
                                                     "label": "Spät"})
    store.aggregate()
    july = _packed(store.settings, "usage_daily", "2026-07-01")
    assert len(july) == 1 and july != before["2026-07-01"]  # recomputed whole, into one file
    for month in ("2026-06-01", "2026-08-01"):  # one more file each
        files = _packed(store.settings, "usage_daily", month)
        assert files[0] == before[month][0] and len(files) == 2
    clean = clean_copy(store, tmp_path / "clean")
    run_aggregation(clean)
    assert published_state(store.settings) == published_state(clean)
    assert published_total(store.settings) == ingest_total(store)


def test_one_thread_gives_the_threads_back_even_when_the_block_fails():
    con = duckdb.connect()
    try:
        threads = con.execute("select current_setting('threads')").fetchone()[0]
        with pytest.raises(RuntimeError, match="the block fails"), models.one_thread(con):
            assert con.execute("select current_setting('threads')").fetchone()[0] == 1
            raise RuntimeError("the block fails")
        assert con.execute("select current_setting('threads')").fetchone()[0] == threads
    finally:
        con.close()


def test_a_publish_s_writers_run_on_one_thread_each_and_give_the_threads_back():
    con = duckdb.connect()
    try:
        threads = con.execute("select current_setting('threads')").fetchone()[0]
        with published.Writers(con):
            during = con.execute("select current_setting('threads')").fetchone()[0]
        assert during == (1 if (os.cpu_count() or 1) > 1 else threads)
        assert con.execute("select current_setting('threads')").fetchone()[0] == threads
    finally:
        con.close()


def test_a_day_holding_more_files_than_allowed_has_its_additions_merged(store, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(published, "MAX_FILES_PER_DAY", 3)
    monkeypatch.setattr(published, "MAX_FILES_PER_SPAN", 3)
    store.events(*random_events(100, seed=6), {"day": "2026-07-05"})
    store.aggregate()
    counts = []
    for seed in range(4):
        store.events({"day": "2026-07-05", "count": seed + 1},
                     {"day": "2026-07-05", "type": "label_added", "label": f"Neu {seed}"})
        store.aggregate()
        counts.append((len(_packed(store.settings, "usage_daily", "2026-07-01")),
                       len(_files(store.settings, "usage_monthly", "2026-07-01"))))
    # the third addition makes four files: the three added ones are merged into one, beside
    # the first; the month's packed days and its sums alike
    assert counts == [(2, 2), (3, 3), (2, 2), (3, 3)]
    clean = clean_copy(store, tmp_path / "clean")
    run_aggregation(clean)
    assert published_state(store.settings) == published_state(clean)


def test_the_current_month_s_days_keep_a_file_each_until_the_month_has_ended(store,
                                                                             monkeypatch):
    """The month in progress is published a file per day: a run adds one more to each day it
    touches, and beyond MAX_FILES_PER_DAY the added ones are merged. Ended months are packed,
    and the first run after a month ends packs it, without new events."""
    monkeypatch.setattr(published, "MAX_FILES_PER_DAY", 3)
    now = datetime.now(UTC)
    today = now.date().isoformat()
    store.events({"day": "2026-07-05"}, {"day": today})
    store.aggregate()
    counts = []
    for seed in range(4):
        store.events({"day": today, "count": seed + 1})
        store.aggregate()
        counts.append(len(_files(store.settings, "usage_daily", today)))
    assert counts == [2, 3, 2, 3]
    rollups = published.read_manifest(store.settings)["rollups"]
    assert set(rollups["usage_daily"]) == {today}
    assert set(rollups["usage_daily_packed"]) == {"2026-07-01"}
    totals = published_total(store.settings)
    assert totals == ingest_total(store)

    month = now.date().replace(day=1)
    next_month = (month + timedelta(days=31)).replace(day=1)

    class NextMonth(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.combine(next_month, datetime.min.time(), tzinfo=UTC)

    monkeypatch.setattr(published, "datetime", NextMonth)
    assert run_aggregation(store.settings).events_read == 0
    rollups = published.read_manifest(store.settings)["rollups"]
    assert "usage_daily" not in rollups
    assert set(rollups["usage_daily_packed"]) == {"2026-07-01", month.isoformat()}
    assert len(rollups["usage_daily_packed"][month.isoformat()]) == 1
    assert month.isoformat() in rollups["usage_monthly"]
    assert published_total(store.settings) == totals


def test_a_period_s_fingerprint_covers_the_packed_month_that_holds_its_days(store):
    """A period inside an ended month reads its month's packed files: an event added to one
    of its days changes its fingerprint (the key of memoised answers), not another month's."""
    store.events(*random_events(100, seed=14, days=("2026-07-01", "2026-08-31")))
    store.aggregate()
    periods = ((date(2026, 7, 10), date(2026, 7, 20)), (date(2026, 8, 10), date(2026, 8, 20)))
    before = [reader.period_fingerprint(store.settings, *period) for period in periods]
    store.events({"day": "2026-07-15"})
    store.aggregate()
    after = [reader.period_fingerprint(store.settings, *period) for period in periods]
    assert after[0] != before[0] and after[1] == before[1]


def test_a_period_s_fingerprint_covers_the_month_sums_it_may_read(tmp_path):
    """The trends read 2-31 August as August's sums less 1 August: the period's fingerprint
    names August's sums, and a new file of them changes it; September's stays as it was."""
    settings = Settings({"storage.data_dir": str(tmp_path / "var")}, base_dir=tmp_path)
    folder = published.published_dir(settings)
    folder.mkdir(parents=True)
    manifest: dict[str, Any] = {"format": published.FORMAT, "dimensions": {}, "rollups": {
        "usage_monthly": {"2026-08-01": ["usage_monthly/day=2026-08-01/a.parquet"],
                          "2026-09-01": ["usage_monthly/day=2026-09-01/b.parquet"]}}}

    def fingerprints() -> list[str]:
        # replaced as a run replaces it (a new file each time)
        (folder / "next.json").write_text(json.dumps(manifest))
        os.replace(folder / "next.json", folder / published.MANIFEST)
        return [reader.period_fingerprint(settings, *period) for period in (
            (date(2026, 8, 2), date(2026, 8, 31)), (date(2026, 9, 1), date(2026, 9, 30)))]

    before = fingerprints()
    manifest["rollups"]["usage_monthly"]["2026-08-01"].append(
        "usage_monthly/day=2026-08-01/a2.parquet")
    after = fingerprints()
    assert after[0] != before[0] and after[1] == before[1]


def test_a_large_backlog_recomputes_its_days(store, monkeypatch):
    store.events(*random_events(100, seed=7), {"day": "2026-07-05"})
    store.aggregate()
    first = _packed(store.settings, "usage_daily", "2026-07-01")
    monkeypatch.setattr(aggregate, "ADD_MAX_EVENTS", 2)
    store.events({"day": "2026-07-05"}, {"day": "2026-07-05"})
    store.aggregate()
    # the day's month has ended: it is recomputed whole, into one new file
    files = _packed(store.settings, "usage_daily", "2026-07-01")
    assert len(files) == 1 and files != first
    assert published_total(store.settings) == ingest_total(store)


def test_a_few_events_after_a_gap_of_ids_are_added(store, monkeypatch):
    # ids have gaps (deleted rows; on PostgreSQL, rolled-back ones): the events read count
    store.events(*random_events(100, seed=7), {"day": "2026-07-05"})
    store.aggregate()
    with store.engine.begin() as conn:
        gone = store.events(*[{"day": "2026-07-05"}] * 300)
        conn.execute(delete(events).where(events.c.id.in_(gone)))
    monkeypatch.setattr(aggregate, "ADD_MAX_EVENTS", 100)
    store.events({"day": "2026-07-05"}, {"day": "2026-07-05"})
    assert store.aggregate().events_read == 2
    assert len(_packed(store.settings, "usage_daily", "2026-07-01")) == 2
    assert published_total(store.settings) == ingest_total(store)


def test_a_run_killed_once_its_manifest_is_switched_adds_nothing_twice(store, tmp_path):
    store.events(*random_events(300, seed=8))
    store.aggregate()
    store.events(*random_events(50, seed=9))
    run_killed(store, "published")
    assert published_total(store.settings) == ingest_total(store)  # the switch happened
    # the next run finds the killed run's rows still staged, and the manifest holding them
    store.events({"day": "2026-07-09", "count": 3})
    assert store.aggregate().events_read == 1
    assert published_total(store.settings) == ingest_total(store)
    clean = clean_copy(store, tmp_path / "clean")
    run_aggregation(clean)
    assert published_state(store.settings) == published_state(clean)


KILL_SCRIPT = """
import os, signal, sys
from kpi.warehouse import aggregate
from kpi.warehouse import published as warehouse
from kpi.settings import Settings

settings = Settings({"storage.data_dir": sys.argv[1]})
mode = sys.argv[2]
aggregate.BATCH_IDS = 500


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


progress = None
if mode == "reading":
    calls = []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 3:
            die()
elif mode == "publishing":
    warehouse._atomic_write = die
elif mode == "published":
    original = warehouse._atomic_write

    def write_then_die(path, data):
        original(path, data)
        die()

    warehouse._atomic_write = write_then_die
aggregate.run_aggregation(settings, progress=progress)
"""


def run_killed(store, mode: str) -> None:
    """An aggregation run over the store, killed at `mode` (see KILL_SCRIPT)."""
    killed = run_script(KILL_SCRIPT, str(store.settings.data_dir), mode)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def run_script(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, timeout=timeout,
                          capture_output=True, text=True)


def test_sigkill_at_any_point_then_rerun_counts_everything_once(store, tmp_path):
    data_dir = str(store.settings.data_dir)
    for seed, mode in enumerate(("reading", "publishing", "published", "reading")):
        store.events(*random_events(2500, seed=10 + seed,
                                    days=("2026-06-01", f"2026-07-{10 + seed:02d}")))
        killed = run_script(KILL_SCRIPT, data_dir, mode)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    # and at a moment nobody chose
    store.events(*random_events(4000, seed=99))
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, data_dir, "timed"], cwd=ROOT)
    try:
        proc.wait(timeout=random.uniform(0.3, 1.5))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    store.aggregate()
    assert store.aggregate().events_read == 0
    clean = clean_copy(store, tmp_path / "clean")
    run_aggregation(clean)
    assert published_state(store.settings) == published_state(clean)
    assert published_total(store.settings) == ingest_total(store)


READER_SCRIPT = """
import sys
import time
from pathlib import Path
from kpi.settings import Settings
from kpi.warehouse.reader import open_reader
settings = Settings({"storage.data_dir": sys.argv[1]})
seen = set()
stop = Path(sys.argv[2])
while not stop.exists():
    time.sleep(0.01)
    con = open_reader(settings)
    seen.add(con.execute("select coalesce(sum(usage), 0) from usage_daily").fetchone()[0])
    con.close()
print(sorted(seen))
"""

AGGREGATE_SCRIPT = """
import sys
from kpi.warehouse import aggregate
from kpi.settings import Settings
aggregate.BATCH_IDS = 1000
aggregate.run_aggregation(Settings({"storage.data_dir": sys.argv[1]}))
"""


def test_readers_never_see_a_lock_error_or_half_a_run(store, tmp_path):
    data_dir = str(store.settings.data_dir)
    errors: list[BaseException] = []
    seen: set[int] = set()
    stop = threading.Event()

    def read_in_a_loop() -> None:
        while not stop.is_set():
            try:
                con = reader.open_reader(store.settings)
                seen.add(con.execute("select coalesce(sum(usage), 0) from usage_daily")
                         .fetchone()[0])
                query(con, "most_used_concepts", Period.quarter("2026-Q3"))
                con.close()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            time.sleep(0.005)  # leave the GIL to the test's own inserts now and then

    stop_file = tmp_path / "stop"
    thread = threading.Thread(target=read_in_a_loop)
    thread.start()
    other = subprocess.Popen([sys.executable, "-c", READER_SCRIPT, data_dir, str(stop_file)],
                             cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    totals = [0]
    try:
        for round_ in range(4):
            store.events(*[{"count": 1, "day": f"2026-07-{1 + (i % 28):02d}"}
                           for i in range(3000)])
            totals.append(3000 * (round_ + 1))
            done = run_script(AGGREGATE_SCRIPT, data_dir)
            assert done.returncode == 0, done.stderr
    finally:
        stop.set()
        stop_file.touch()
        thread.join()
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    assert errors == []
    # every read saw the state at the end of some run, never a run half published
    assert seen <= set(totals) and len(seen) >= 2
    assert published_total(store.settings) == 12000
    assert set(json.loads(out)) <= set(totals)


def test_a_large_backlog_is_read_by_worker_processes_with_the_same_result(store, tmp_path,
                                                                          monkeypatch):
    store.events(*random_events(3000, seed=7))
    monkeypatch.setattr(aggregate, "BATCH_IDS", 400)
    monkeypatch.setattr(aggregate, "PARALLEL_MIN_IDS", 0)
    monkeypatch.setattr(aggregate, "READ_WORKERS", 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    done: list[int] = []
    summary = run_aggregation(store.settings, store.engine,
                              progress=lambda ids, total: done.append(ids))
    assert summary.events_read == 3000
    assert done == [400 * i for i in range(1, 8)] + [3000]  # in id order
    monkeypatch.setattr(aggregate, "PARALLEL_MIN_IDS", 10**12)
    sequential = clean_copy(store, tmp_path / "sequential")
    run_aggregation(sequential)
    assert published_state(sequential) == published_state(store.settings)


def test_two_runs_never_overlap(store):
    with aggregation_lock(store.settings), pytest.raises(AggregationBusy,
                                                         match="already running"):
        run_aggregation(store.settings, store.engine)
    assert store.aggregate().events_read == 0  # the lock is free again


def replay(store, qid: int) -> None:
    """What `quarantine replay` does: delete the row, insert it again as accepted, at once."""
    with store.engine.begin() as conn:
        row = dict(conn.execute(select(events).where(events.c.id == qid)).mappings().one())
        conn.execute(delete(events).where(events.c.id == qid))
        row.update(status="accepted", quarantine_reason=None)
        conn.execute(insert(events).values({k: v for k, v in row.items() if k != "id"}))


def test_quarantine_replay_is_counted_once(store):
    [qid, _] = store.events({"concept_uri": S3, "count": 4, "status": "quarantined",
                             "quarantine_reason": "unknown_concept"}, {"concept_uri": S1})
    store.aggregate()
    assert published_total(store.settings) == 1
    replay(store, qid)
    assert store.aggregate().events_read == 1
    store.aggregate()
    assert published_total(store.settings) == 5


def test_replay_of_the_newest_row_gets_a_new_id(store):
    # needs AUTOINCREMENT on SQLite (kpi/store/db.py): else the row would get its old id back
    [qid] = store.events({"concept_uri": S3, "count": 4, "status": "quarantined",
                          "quarantine_reason": "unknown_concept"})
    store.aggregate()
    replay(store, qid)
    assert store.aggregate().events_read == 1


def test_published_tables_have_the_declared_schemas(store):
    def schemas():
        con = store.reader()
        try:
            # table names come from the constant published.SCHEMAS
            return {t: tuple((name, typ.lower()) for name, typ, *_ in
                             con.execute(f"describe {t}").fetchall())
                    for t in published.SCHEMAS}
        finally:
            con.close()

    assert schemas() == published.SCHEMAS  # before the first run: empty views
    store.events(*random_events(50, seed=3))
    store.outcome(1, "2026-07-01", "rejected", "language", 2)
    store.aggregate()
    assert schemas() == published.SCHEMAS


def test_rows_staged_by_a_publish_that_died_are_not_added_to_a_day_recomputed_since(
        store, tmp_path, monkeypatch):
    store.events(*random_events(100, seed=13), {"day": "2026-07-05"})
    store.aggregate()
    store.events(*[{"day": "2026-07-05", "count": 2}] * 20)
    run_killed(store, "publishing")  # its additions were staged
    monkeypatch.setattr(aggregate, "ADD_MAX_EVENTS", 2)  # the next backlog recomputes its days
    store.events(*[{"day": "2026-07-05"}] * 5)
    store.aggregate()
    assert len(_packed(store.settings, "usage_daily", "2026-07-01")) == 1
    assert published_total(store.settings) == ingest_total(store)
    clean = clean_copy(store, tmp_path / "clean")
    run_aggregation(clean)
    assert published_state(store.settings) == published_state(clean)


def _named_and_on_disk(settings: Settings) -> tuple[set[str], set[str]]:
    manifest = published.read_manifest(settings)
    pub = published.published_dir(settings)
    named = {f for days in manifest["rollups"].values() for fs in days.values() for f in fs}
    named |= set(manifest["dimensions"].values())
    return named, {p.relative_to(pub).as_posix() for p in pub.rglob("*.parquet")}


def test_files_of_a_publish_that_died_are_deleted_after_the_grace_period(store, monkeypatch):
    store.events(*random_events(100, seed=11))
    store.aggregate()
    store.events(*random_events(20, seed=12))
    # killed after writing its files, before switching the manifest
    run_killed(store, "publishing")
    named, on_disk = _named_and_on_disk(store.settings)
    assert on_disk > named
    store.aggregate()  # the orphans are younger than the grace period: kept, and looked for
    named, on_disk = _named_and_on_disk(store.settings)
    assert on_disk > named
    monkeypatch.setattr(published, "RETIRE_GRACE_SECONDS", 0.0)
    store.events({"day": "2026-07-02"})
    store.aggregate()
    named, on_disk = _named_and_on_disk(store.settings)
    assert on_disk == named
    assert published_total(store.settings) == ingest_total(store)


def test_superseded_files_are_deleted_after_the_grace_period(store, monkeypatch):
    # each run recomputes the day it touches: its new file supersedes the last one
    monkeypatch.setattr(aggregate, "ADD_MAX_EVENTS", 0)
    store.events({"day": "2026-07-01"})
    store.aggregate()
    first = _packed(store.settings, "usage_daily", "2026-07-01")
    assert first
    store.events({"day": "2026-07-01"})
    store.aggregate()
    pub = published.published_dir(store.settings)
    assert all((pub / f).exists() for f in first)  # a reader may still scan them
    monkeypatch.setattr(published, "RETIRE_GRACE_SECONDS", 0.0)
    store.events({"day": "2026-07-01"})
    store.aggregate()
    assert not any((pub / f).exists() for f in first)
    named, on_disk = _named_and_on_disk(store.settings)
    assert on_disk == named and published.read_manifest(store.settings)["retired"] == []
    assert published_total(store.settings) == 3


def test_safe_high_water_mark(store):
    assert safe_high_water_mark(store.engine) == 0
    ids = store.events({}, {})
    assert safe_high_water_mark(store.engine) == ids[-1]


@pytest.mark.postgres
def test_postgresql_store_gives_the_same_warehouse_as_sqlite(store, tmp_path, monkeypatch):
    """The same events in a PostgreSQL ingest store: same published rollups and dimensions,
    read row by row (a small backlog) or through ADBC."""
    rows = random_events(300, seed=5)
    store.events(*rows)
    store.outcome(1, "2026-07-01", "rejected", "language", 2)
    store.aggregate()
    for url in pg_database():
        pg = standard_store(tmp_path / "pg", database_url=url)
        try:
            pg.events(*rows)
            pg.outcome(1, "2026-07-01", "rejected", "language", 2)
            assert safe_high_water_mark(pg.engine) == 300  # under LOCK TABLE ... SHARE MODE
            assert pg.aggregate().events_read == 300
            assert published_state(pg.settings) == published_state(store.settings)
            monkeypatch.setattr(aggregate, "ROWS_MAX_IDS", 0)
            adbc = clean_copy(pg, tmp_path / "pg-adbc")
            assert run_aggregation(adbc).events_read == 300
            assert published_state(adbc) == published_state(store.settings)
        finally:
            pg.engine.dispose()


def test_shared_reader_follows_each_published_snapshot(store):
    store.events({"count": 2})
    store.aggregate()
    old = reader.shared_reader(store.settings)
    again = reader.shared_reader(store.settings)
    total = "select coalesce(sum(usage), 0) from usage_daily"
    assert old.execute(total).fetchone()[0] == again.execute(total).fetchone()[0] == 2
    store.events({"count": 3, "day": "2026-07-16"})
    store.aggregate()
    new = reader.shared_reader(store.settings)
    assert new.execute(total).fetchone()[0] == 5
    assert old.execute(total).fetchone()[0] == 2  # a request under way finishes on its snapshot
    for cursor in (old, again, new):
        cursor.close()


def test_the_shared_reader_holds_the_dimensions_in_memory(store):
    """The dashboard's reader copies the dimensions of SHARED_IN_MEMORY into tables when it
    opens; a fresh reader keeps views of their files. Both give the same rows."""
    store.events({"count": 2})
    store.aggregate()
    kind = "select table_type from information_schema.tables where table_name = $name"
    shared, fresh = reader.shared_reader(store.settings), reader.open_reader(store.settings)
    # what the copies took when the reader opened (reading them below takes more)
    copies = shared.sql("select sum(memory_usage_bytes) from duckdb_memory() "
                        "where tag = 'IN_MEMORY_TABLE'").fetchall()[0][0]
    try:
        assert "concept_labels" not in reader.SHARED_IN_MEMORY  # the largest: left on disk
        for name in reader.SHARED_IN_MEMORY:
            assert shared.execute(kind, {"name": name}).fetchall() == [("BASE TABLE",)], name
            assert fresh.execute(kind, {"name": name}).fetchall() == [("VIEW",)], name
            rows = shared.table(name).order("all").fetchall()
            assert rows == fresh.table(name).order("all").fetchall(), name
        assert shared.table("concept_label_norms").fetchall()
        assert shared.table("concept_names").fetchall()
        # the copies are held on top of the queries' memory, never taken from it (by 45 MB at
        # 10 M events; here by the blocks the few rows take)
        limit = "select current_setting('memory_limit')"
        assert fresh.sql(limit).fetchall() == [("512.0 MiB",)]
        assert copies > 0 and shared.sql(limit).fetchall() == [
            (f"{(reader.QUERY_MEMORY_BYTES + copies) / 2**20:.1f} MiB",)]
    finally:
        shared.close()
        fresh.close()


def test_a_reader_spills_into_a_folder_of_its_own_in_the_temporary_folder(store, tmp_path,
                                                                         monkeypatch):
    """What a reader's query holds beyond its memory goes to a folder of that reader's in the
    host's temporary folder (not into the working directory), removed when the reader closes;
    the first reader of a process removes those of readers whose process was killed."""
    store.events({"count": 2})
    store.aggregate()
    for name in ("cwd", "temp"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    dead = tmp_path / "temp" / f"esco-kpi-reader-{2**22 + 1}-0"  # above any pid in use
    dead.mkdir()
    monkeypatch.setattr(reader, "_readers", itertools.count())  # the process's first reader
    con = reader.open_reader(store.settings)
    try:
        folder = Path(con.sql("select current_setting('temp_directory')").fetchall()[0][0])
        assert folder.parent == tmp_path / "temp" and folder.name.startswith(
            f"esco-kpi-reader-{os.getpid()}-")
        assert not dead.exists()
        con.execute("set memory_limit = '32MB'")
        big = "select count(*) from (select i % 2000000 as k, count(*) from range(20000000) " \
              "as t(i) group by k order by k)"
        assert con.sql(big).fetchall() == [(2_000_000,)]
        assert folder.is_dir()  # it spilled there
        assert list((tmp_path / "cwd").iterdir()) == []
    finally:
        con.close()
    assert not folder.exists()


def test_the_catalogue_s_label_texts_are_stored_uncompressed(store):
    """A release's labels and their keys are nearly all distinct: kept as they are, which makes
    copying a release several times cheaper than DuckDB weighing how to compress them
    (sql/private/schema.sql); the other columns are compressed as DuckDB sees fit."""
    store.aggregate()
    with private.connect_private(store.settings) as con:
        rows = con.execute(
            "select column_name, compression from pragma_storage_info('cat_labels') "
            "where segment_type = 'VARCHAR'").fetchall()
        copied = con.execute("select count(*) from cat_labels").fetchall()[0][0]
    kinds: dict[str, set[str]] = {}
    for column, kind in rows:
        kinds.setdefault(column, set()).add(kind)
    assert copied > 0
    assert kinds["label"] == kinds["label_norm"] == {"Uncompressed"}
    assert kinds["uri"] != {"Uncompressed"}


def test_a_warehouse_of_the_previous_format_is_upgraded_by_the_next_run(store):
    """Format 1 had URIs in the rollups: readers show nothing until the next run has
    rewritten every day with concept keys, from the private events it kept."""
    store.events(*random_events(200, seed=5))
    store.aggregate()
    before = published_state(store.settings)
    assert published_total(store.settings) > 0
    days = _days_with_events(store.settings)
    # What a format-1 warehouse looks like to this version: the private format mark, events
    # holding URIs, no concept keys, and a manifest of format 1.
    con = private.connect_private(store.settings)
    with_uris_in_private_events(con)
    con.execute("delete from concept_keys")
    private.set_meta(con, "format", "1")
    con.close()
    path = published.published_dir(store.settings) / published.MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format": 1}))
    assert published_total(store.settings) == 0  # old files are not read with new SQL
    summary = run_aggregation(store.settings)
    assert summary.events_read == 0  # nothing new from the store: rebuilt from its own copy
    assert summary.days_recomputed == days  # every day
    assert published_state(store.settings) == before
    assert json.loads(path.read_text())["format"] == int(published.FORMAT)


def test_published_files_of_another_format_are_written_again_by_the_next_run(store):
    """A published format bumped alone (the private tables unchanged): readers ignore the
    older files, and the next run writes every day and dimension again."""
    store.events(*random_events(200, seed=7))
    store.aggregate()
    before = published_state(store.settings)
    days = _days_with_events(store.settings)
    path = published.published_dir(store.settings) / published.MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format": int(published.FORMAT) - 1}))
    assert published_total(store.settings) == 0
    summary = run_aggregation(store.settings)
    assert summary.days_recomputed == days
    written = json.loads(path.read_text())
    assert written["format"] == int(published.FORMAT)
    assert all(written["dimensions"][name] != manifest["dimensions"][name]
               for name in published.DIMENSIONS)
    assert published_state(store.settings) == before


def with_uris_in_private_events(con) -> None:
    """Give the private events the shape of format 3 and older: the concept's URI, not its
    key, after the day."""
    con.execute("""
        create table uri_events as
        select e.implementer_id, e.type, e.day, k.uri as concept_uri, e.concept_type,
               e.esco_version, e.language, e.context, e.label, e.label_norm, e.count, e.events,
               e.watermark
        from events as e left join concept_keys as k on k.key = e.concept_key""")
    con.execute("drop table events")
    con.execute("alter table uri_events rename to events")
    con.execute("drop table added_events")
    con.execute("create table added_events as select * from events limit 0")


def test_a_format_3_warehouse_gets_keys_in_its_private_events_and_keeps_its_files(store):
    """Format 3 held URIs in the private events: the upgrade rewrites them with keys (those
    already given stay), its published files stay (readers see the same figures before and
    after), a rebuild from the rewritten events gives the same figures, and events appended
    after the upgrade add up with the earlier ones."""
    store.events(*random_events(300, seed=11))
    store.aggregate()
    con = private.connect_private(store.settings)
    keys_before = con.execute("select uri, key from concept_keys order by key").fetchall()
    with_uris_in_private_events(con)
    private.set_meta(con, "format", "3")
    con.close()
    manifest = published.read_manifest(store.settings)
    before = published_state(store.settings)
    days = _days_with_events(store.settings)

    con = private.connect_private(store.settings)  # upgrades
    assert private.get_meta(con, "format") == private.FORMAT
    columns = con.execute("select column_name from duckdb_columns() "
                          "where table_name = 'events'").fetchall()
    assert [c for c, in columns][:5] == [
        "implementer_id", "type", "day", "concept_key", "concept_type"]
    assert con.execute("select uri, key from concept_keys order by key").fetchall() == keys_before
    con.close()
    assert published.read_manifest(store.settings) == manifest  # nothing rewritten
    assert published_state(store.settings) == before

    # a full rebuild from the upgraded events gives the same files' figures
    with private.connect_private(store.settings) as con:
        con.execute("insert or ignore into dirty_days select distinct day from events")
    summary = run_aggregation(store.settings)
    assert summary.days_recomputed == days
    assert published_state(store.settings) == before
    # and new events of the same concepts add to them
    store.events(*random_events(50, seed=12))
    store.aggregate()
    assert published_total(store.settings) == ingest_total(store)


def test_a_warehouse_of_an_unknown_format_is_refused_in_plain_words(store):
    store.aggregate()
    con = private.connect_private(store.settings)
    private.set_meta(con, "format", "99")
    con.close()
    with pytest.raises(RuntimeError, match="has format 99, this version writes"):
        run_aggregation(store.settings)


@pytest.mark.postgres
def test_an_older_postgresql_store_loses_the_events_foreign_key_and_keeps_its_events(tmp_path):
    with store_on("postgresql", lambda url: standard_store(tmp_path / "a", url)) as store:
        assert inspect(store.engine).get_foreign_keys("events") == []  # a new store has none
        # the key as an earlier version created it
        with store.engine.begin() as conn:
            conn.exec_driver_sql("alter table events add constraint events_implementer_id_fkey "
                                 "foreign key (implementer_id) references implementers (id)")
        store.events({"day": "2026-07-02"}, {"day": "2026-07-03"})
        init_store(store.engine)
        init_store(store.engine)  # twice: nothing more to do
        assert inspect(store.engine).get_foreign_keys("events") == []
        # the other tables keep theirs
        assert [k["referred_table"] for k in inspect(store.engine).get_foreign_keys(
            "api_keys")] == ["implementers"]
        store.aggregate()
        with store.reader() as con:
            assert con.execute("select sum(events) from usage_daily").fetchall() == [(2,)]


@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_other_events_are_read_through_their_partial_index(backend, tmp_path):
    """An older store gets the index; the query for the other types then uses it (the store's
    own plan, for the query as sent), and a run counts every accepted event of each type and
    not the quarantined one."""
    with store_on(backend, lambda url: standard_store(tmp_path / "a", url)) as store:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("drop index ix_events_other_accepted")
        store.events(*({"type": t, "label": "Café-Bar", "concept_type": "skill",
                        "day": "2026-07-02"} for t in TYPES[1:]),
                     {"type": "label_added", "label": "cafe bar", "day": "2026-07-03",
                      "status": "quarantined", "quarantine_reason": "unknown_concept"},
                     *({"day": "2026-07-02"} for _ in range(3)))
        init_store(store.engine)
        init_store(store.engine)  # twice: nothing more to do
        names = {i["name"] for i in inspect(store.engine).get_indexes("events")}
        assert "ix_events_other_accepted" in names
        # the query as the aggregator sends it, with its parameters
        query = aggregate._events_in(False, 0, 100).compile(dialect=store.engine.dialect)
        params = (tuple(query.params[n] for n in query.positiontup) if query.positional
                  else query.params)
        explain = "explain query plan" if backend == "sqlite" else "explain"
        with store.engine.connect() as conn:
            if backend == "postgresql":
                # (a few rows: a sequential scan would be cheaper, so it is ruled out)
                conn.exec_driver_sql("set enable_seqscan = off")
            plan = conn.exec_driver_sql(f"{explain} {query}", params).all()
        assert "ix_events_other_accepted" in " ".join(str(row) for row in plan)
        store.aggregate()
        with store.reader() as con:
            assert [con.execute(f"select sum(events) from {table}").fetchall()[0][0] for table in (
                "usage_daily", "labels_daily", "proposals_daily", "feedback_daily")] == [
                3, 1, 1, 1]


@pytest.mark.parametrize("backend", ["sqlite",
                                     pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_an_older_store_gets_the_quarantine_index_and_its_counts(backend, tmp_path):
    with store_on(backend, lambda url: standard_store(tmp_path / "a", url)) as store:
        # the index as an earlier version created it
        with store.engine.begin() as conn:
            conn.exec_driver_sql("drop index ix_events_quarantined_by_day")
            conn.exec_driver_sql("create index ix_events_quarantined on events (status) "
                                 "where status = 'quarantined'")
        store.events({"status": "quarantined", "quarantine_reason": "unknown_concept",
                      "day": "2026-07-02"}, {"day": "2026-07-02"})
        init_store(store.engine)
        init_store(store.engine)  # twice: nothing more to do
        names = {i["name"] for i in inspect(store.engine).get_indexes("events")}
        assert "ix_events_quarantined_by_day" in names
        assert "ix_events_quarantined" not in names
        store.aggregate()
        with store.reader() as con:
            assert con.execute("select day, implementer_id, reason, still_quarantined "
                               "from quality_daily where still_quarantined > 0").fetchall() == [
                (date(2026, 7, 2), 1, "unknown_concept", 1)]
