"""`esco-kpi serve`: the web app on gunicorn (several workers, no access log) and the schedule."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import requests
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.config import KNOWN_SETTINGS

from esco_kpi.scheduler import start_scheduler_process
from kpi.logs import logging_config
from kpi.processes import SHARED_MEMORY, remove_abandoned, shared_memory
from kpi.settings import Settings


def build_wsgi_app(settings: Settings):
    """Everything `serve` answers, as one WSGI app (imports the HTTP edges lazily).

    The collector answers /v1/... and /metrics; the dashboard (login, logout, /dashboard/...)
    answers everything else.
    """
    from collector.app import create_app
    from dashboard.app import create_dashboard

    collector = create_app(settings).wsgi_app
    dashboard = create_dashboard(settings, warm_up=settings["dashboard.warm_up"]).wsgi_app

    def dispatch(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/v1/") or path in ("/v1", "/metrics"):
            return collector(environ, start_response)
        return dashboard(environ, start_response)

    return dispatch


# How long a stop signal gives the workers to quit before they are killed.
QUICK_STOP_SECONDS = 2  # whole seconds: gunicorn takes an int
METRICS_PREFIX = "esco-kpi-metrics-"


class _Arbiter(Arbiter):
    """gunicorn's master, which stops at once and completely on SIGTERM and SIGHUP as on
    Ctrl-C (SIGINT): workers are told to quit without finishing their requests (a client
    whose request is cut retries it, and a resent event is a duplicate), and the schedule
    stops with them (on_exit). gunicorn's own meanings (SIGTERM: finish the requests first;
    SIGHUP: reload) would keep a service manager, `timeout` or a closed terminal waiting, or
    keep it running. A SIGHUP ignored when `serve` started (nohup) stays ignored."""

    def __init__(self, app):
        super().__init__(app)
        self.hup_ignored = signal.getsignal(signal.SIGHUP) == signal.SIG_IGN

    def init_signals(self) -> None:
        super().init_signals()
        if self.hup_ignored:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def handle_int(self) -> None:
        # A worker that has not quit by then (its main thread stuck in a call that signals do
        # not interrupt) is killed, rather than waited for as long as graceful_timeout.
        self.cfg.set("graceful_timeout", QUICK_STOP_SECONDS)
        super().handle_int()

    def handle_term(self) -> None:
        self.handle_int()

    def handle_hup(self) -> None:
        self.handle_int()


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

    def run(self) -> None:
        try:
            _Arbiter(self).run()
        except RuntimeError as exc:  # as gunicorn's own run() reports a failed start
            print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
            sys.exit(1)


def _freeze_startup_objects(_worker) -> None:
    # A worker's app (Dash, Plotly, DuckDB, pyarrow) is hundreds of thousands of objects that
    # live as long as the worker. Frozen, the garbage collector no longer walks them: not in
    # every full collection while serving, and not at exit, where that walk took more than a
    # second and held up every stop and restart.
    gc.freeze()
    # SciPy (the trend test) takes about half a second to import: load it beside serving,
    # not in the first request that shows trends, and not in the master before the fork.
    from kpi.warehouse import statistics  # in the worker: numpy and pyarrow start threads

    threading.Thread(target=statistics.preload, name="preload", daemon=True).start()


def _child_exit(_server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def default_workers() -> int:
    """One worker process per CPU core this process may use, plus one.

    A worker's threads share one interpreter lock, and a client's keep-alive connection stays
    with the worker that accepted it: with one worker per core, a worker holding most of the
    busy connections is held to one core while another core idles. One more worker than
    cores lets the kernel share the cores among the busy workers instead: more events per
    second, and a far shorter tail of slow requests (bench/RESULTS.md, ingestion)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 1


def metrics_folder(settings: Settings) -> Path:
    """This process's folder for its workers' metrics files, emptied; the folders of serves
    that died without removing theirs are removed.

    Metrics files are memory-mapped by every worker: on a full disk, writing them kills the
    worker (SIGBUS) instead of letting it answer 503, so they are kept in memory (/dev/shm)
    where possible. One folder per serve process (named after its pid and the data folder):
    two serves of one data folder on a host must not empty each other's."""
    parent = shared_memory() or settings.data_dir / "metrics"
    remove_abandoned(parent, METRICS_PREFIX)
    tag = hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:12]
    # what an earlier version left: one folder per data folder, or the files themselves
    shutil.rmtree(parent / f"{METRICS_PREFIX}{tag}", ignore_errors=True)
    for stale in parent.glob("*.db") if parent != SHARED_MEMORY else ():
        stale.unlink(missing_ok=True)
    folder = parent / f"{METRICS_PREFIX}{os.getpid()}-{tag}"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def remove_metrics_folder() -> None:
    """Remove the metrics folder that this process's gunicorn_options made (when it exits)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and Path(folder).name.startswith(f"{METRICS_PREFIX}{os.getpid()}-"):
        shutil.rmtree(folder, ignore_errors=True)


def gunicorn_options(settings: Settings, host: str | None = None, port: int | None = None,
                     workers: int | None = None) -> dict:
    """How `serve` runs gunicorn (the benchmark runs it the same way)."""
    metrics_dir = metrics_folder(settings)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    # prometheus_client reads this at import time: set it before any worker imports it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    options = {
        "bind": f"{host or settings['server.host']}:{port or settings['server.port']}",
        "workers": workers or settings["server.workers"] or default_workers(),
        "threads": settings["server.threads"],
        "worker_class": "gthread",
        "accesslog": None,
        "logconfig_dict": logging_config(settings["logging.level"]),
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        # Room for a long (wrong) key, so that it gets the API's 401, not a bare 431.
        "limit_request_field_size": 16384,
        "child_exit": _child_exit,
        "post_worker_init": _freeze_startup_objects,
        "preload_app": False,
    }
    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        # gunicorn 25.1+ opens a control socket at one path per user ($XDG_RUNTIME_DIR or
        # ~/.gunicorn/gunicorn.ctl) unless told not to: two instances on a host (several
        # collectors, or a restart overlapping the old one) would take it from each other, and
        # the first to stop would delete the other's. `serve` is run by signals, not by it.
        options["control_socket_disable"] = True
    return options


def serve(settings: Settings, host: str | None = None, port: int | None = None,
          workers: int | None = None, ready_file: Path | None = None,
          with_scheduler: bool = True) -> None:
    """Run the web server and the aggregation schedule until stopped: SIGTERM, SIGHUP and
    Ctrl-C (SIGINT) all stop both at once."""
    options = gunicorn_options(settings, host, port, workers)
    if ready_file is not None:
        options["when_ready"] = lambda _server: Path(ready_file).write_text("ready\n")
    scheduler = start_scheduler_process(settings) if with_scheduler else None
    owner = os.getpid()

    def stop_scheduler(_server) -> None:
        # Workers are forked from this process and leave through this code too: only the
        # process that started the scheduler stops it.
        if os.getpid() == owner and scheduler is not None and scheduler.is_alive():
            scheduler.terminate()
            scheduler.join(timeout=QUICK_STOP_SECONDS)
            if scheduler.is_alive():
                # deep in DuckDB, where no signal handler runs until the call returns; an
                # aggregation is safe to kill at any moment (it resumes from its watermark)
                scheduler.kill()
                scheduler.join()

    options["on_exit"] = stop_scheduler
    # A forked worker must not think the scheduler is its child (multiprocessing joins
    # children at exit).
    options["post_fork"] = lambda _server, _worker: multiprocessing.process._children.clear()
    gc.freeze()  # see _freeze_startup_objects; workers forked from here inherit it
    try:
        _Gunicorn(settings, options).run()
    finally:
        stop_scheduler(None)
        if os.getpid() == owner:  # workers leave through here too
            remove_metrics_folder()


def spawn_serve(config: str | Path | None, port: int, log: Path, extra: Sequence[str] = (),
                env: dict[str, str] | None = None, cwd: Path | None = None
                ) -> subprocess.Popen:
    """`esco-kpi serve` in a child process of its own session, output appended to `log`.

    As an operator runs it: the demo, the tests and the benchmarks all start servers this way.
    """
    command = [sys.executable, "-m", "esco_kpi.cli"]
    if config:
        command += ["--config", str(config)]
    command += ["serve", "--port", str(port), *extra]
    with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, start_new_session=True)


def wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    """Wait until `url`/v1/health answers; raise with the log's tail if the server stopped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the server stopped at start; its log ends with:\n{tail}")
        try:
            if requests.get(f"{url}/v1/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {seconds:.0f} s (log: {log})")
