"""The aggregation schedule of `esco-kpi serve`: APScheduler runs it every N minutes.

It runs in a child process of `serve`, not inside the web workers: the aggregator is DuckDB's
only writer and starts worker processes of its own, which neither gunicorn's workers (threads)
nor its master (which reaps every child it sees) should host. The child stops when `serve` does.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from datetime import UTC

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from kpi.settings import Settings

log = logging.getLogger("esco_kpi.scheduler")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def aggregate_once(settings: Settings) -> None:
    """One scheduled run; a run still going elsewhere (`esco-kpi aggregate`) is left alone."""
    from kpi.operations.retention import prune_events
    from kpi.store.db import make_engine
    from kpi.warehouse.aggregate import AggregationBusy, run_aggregation

    engine = make_engine(settings)
    try:
        summary = run_aggregation(settings, engine)
        pruned = prune_events(settings, engine)
    except AggregationBusy:
        log.info("aggregation skipped: another run is in progress")
        return
    except Exception:  # noqa: BLE001 - the next run retries; the schedule must go on
        log.exception("aggregation failed")
        return
    finally:
        engine.dispose()
    log.info("aggregation finished", extra={
        "events_pruned": pruned,
        "finished_at": summary.finished_at.isoformat(timespec="seconds"),
        "duration_seconds": round(summary.duration_seconds, 3),
        "events_read": summary.events_read, "days_recomputed": summary.days_recomputed,
        "watermark": summary.watermark})


def run_scheduler(settings: Settings, parent_pid: int | None = None) -> None:
    """Aggregate every `schedule.aggregate_minutes`; return when the parent is gone."""
    from kpi.logs import setup_logging

    setup_logging(settings["logging.level"])
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "scheduler.pid").write_text(f"{os.getpid()}\n")
    scheduler = BlockingScheduler(timezone=UTC)
    # One instance at a time, and missed runs coalesce into one: runs never pile up.
    every = IntervalTrigger(minutes=settings["schedule.aggregate_minutes"])
    # The first run comes one interval after start, like every other one.
    scheduler.add_job(aggregate_once, every, args=[settings], id="aggregate", max_instances=1,
                      coalesce=True)
    # An aggregation is safe to kill at any moment (it resumes from its watermark), so stopping
    # is immediate: no waiting on a run, and nothing that can hang the way out. SIGINT and
    # SIGHUP reach this process too when they are sent to `serve`'s process group (Ctrl-C in a
    # terminal, a closed terminal): they stop it the same way, unless inherited as ignored.
    for number in STOP_SIGNALS:
        if number == signal.SIGTERM or signal.getsignal(number) != signal.SIG_IGN:
            signal.signal(number, lambda *_: os._exit(0))
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    log.info("scheduler started", extra={"every_minutes": settings["schedule.aggregate_minutes"]})
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


def _exit_with_parent(parent_pid: int) -> None:
    """If `serve` dies without stopping us (SIGKILL), do not outlive it."""
    while os.getppid() == parent_pid:
        time.sleep(1)
    os._exit(0)


def start_scheduler_process(settings: Settings) -> multiprocessing.process.BaseProcess:
    """The scheduler in a fresh (spawned) child process."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=run_scheduler, args=(settings, os.getpid()),
                              name="esco-kpi-scheduler", daemon=False)
    process.start()
    return process
