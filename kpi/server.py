"""`esco-kpi serve`: the web app on gunicorn (several workers, no access log) and the schedule."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gunicorn.app.base import BaseApplication

from kpi.logs import logging_config
from kpi.scheduler import start_scheduler_process
from kpi.settings import Settings


def build_wsgi_app(settings: Settings):
    """Everything `serve` answers, as one WSGI app (imports the HTTP edges lazily)."""
    from collector.app import create_app

    return create_app(settings)


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict):
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return build_wsgi_app(self.settings)


def _child_exit(_server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(settings: Settings, host: str | None = None, port: int | None = None,
                     workers: int | None = None) -> dict:
    """How `serve` runs gunicorn (the benchmark runs it the same way)."""
    metrics_dir = settings.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    # prometheus_client reads this at import time: set it before any worker imports it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return {
        "bind": f"{host or settings['server.host']}:{port or settings['server.port']}",
        "workers": workers or settings["server.workers"],
        "threads": settings["server.threads"],
        "worker_class": "gthread",
        "accesslog": None,
        "logconfig_dict": logging_config(settings["logging.level"]),
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Room for a long (wrong) key, so that it gets the contract's 401, not a bare 431.
        "limit_request_field_size": 16384,
        "child_exit": _child_exit,
        "preload_app": False,
    }


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          workers: int | None = None, ready_file: Path | None = None,
          with_scheduler: bool = True) -> None:
    """Run the web server and the aggregation schedule until stopped (SIGTERM or Ctrl-C)."""
    options = gunicorn_options(settings, host, port, workers)
    if ready_file is not None:
        options["when_ready"] = lambda _server: Path(ready_file).write_text("ready\n")
    scheduler = start_scheduler_process(settings) if with_scheduler else None

    def stop_scheduler(_server) -> None:
        if scheduler is not None and scheduler.is_alive():
            scheduler.terminate()
            scheduler.join(timeout=30)

    options["on_exit"] = stop_scheduler
    try:
        _Gunicorn(settings, options).run()
    finally:
        stop_scheduler(None)
