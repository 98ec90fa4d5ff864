"""Public helpers for the tests and the benchmarks (bench/ imports them from here).

Stores: `fresh_store` (a new store of a backend for one test or module), `admin_sql`, `pg_url`,
`create_pg_database` / `drop_pg_database`. Sockets: `free_port`, `port_is_free`, `TcpProxy`.
Child processes: `stop_process` (a child and its process group), `ProcessTree` (a child and
all it started), `default_signals`. A portal's client: `retry_until_answered`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from kpi.settings import Settings
from kpi.warehouse import label_keys

PG_ADMIN_URL = os.environ.get("ESCO_KPI_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# --------------------------------------------------------------------------------------------
# Stores


def pg_available() -> str | None:
    """None when the PostgreSQL server of the tests answers, else why not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


def pg_url(database: str) -> str:
    """The URL of `database` on the PostgreSQL server of the tests."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"


def admin_sql(sql: str) -> None:
    """Run one statement on the PostgreSQL server of the tests, outside a transaction."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_store(request, backend: str, folder: Path, *, empty: bool = False,
                prefix: str = "esco_kpi_t") -> Iterator[Settings]:
    """Settings for a new store of `backend` ('sqlite' or 'postgresql') with its data under
    folder/var: a copy of the catalogue-loaded template of the session
    (request.getfixturevalue('sqlite_template'/'pg_template')), or an empty store when
    empty=True; a PostgreSQL database is dropped on exit."""
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown backend {backend!r}")
    data_dir = folder / "var"
    data_dir.mkdir(parents=True)
    values = {"storage.data_dir": str(data_dir)}
    database = None
    if backend == "sqlite":
        if not empty:
            template = request.getfixturevalue("sqlite_template")
            shutil.copy(template, data_dir / "ingest.sqlite3")
            _copy_label_keys(template.parent, data_dir)
    else:
        pg = request.getfixturevalue("pg_template")  # skips without a server
        database = f"{prefix}_{uuid.uuid4().hex[:12]}"
        admin_sql(f"create database {database}" if empty
                  else f"create database {database} template {pg.database}")
        if not empty:
            _copy_label_keys(pg.data_dir, data_dir)
        values["storage.database_url"] = pg_url(database)
    try:
        yield Settings(values, base_dir=folder)
    finally:
        if database:
            admin_sql(f"drop database if exists {database} with (force)")


@dataclass(frozen=True)
class PgTemplate:
    """The session's catalogue-loaded PostgreSQL database and the data folder `init` filled."""

    database: str
    data_dir: Path


def _copy_label_keys(template_dir: Path, data_dir: Path) -> None:
    """The label keys `init` kept beside the template's store (kpi.warehouse.label_keys): a
    store copied without them would make every test's first aggregation normalise the bundled
    release's 385,000 labels again."""
    kept = template_dir / label_keys.FOLDER
    if kept.is_dir():
        shutil.copytree(kept, data_dir / label_keys.FOLDER)


def _admin_url(url: str) -> tuple[str, str]:
    """(the URL of the server's `postgres` database, the database name of `url`)."""
    parsed = make_url(url)
    return parsed.set(database="postgres").render_as_string(hide_password=False), parsed.database


def create_pg_database(url: str) -> str:
    """Create the (empty) database `url` names; refuse one that exists. Returns its name."""
    admin, name = _admin_url(url)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(text("select 1 from pg_database where datname = :n"),
                            {"n": name}).first():
                raise SystemExit(f"database {name} exists already: name one this script may "
                                 f"create and drop")
            conn.execute(text(f'create database "{name}"'))
    finally:
        engine.dispose()
    return name


def drop_pg_database(url: str) -> None:
    """Drop the database `url` names, disconnecting its sessions."""
    admin, name = _admin_url(url)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'drop database if exists "{name}" with (force)'))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# Sockets and processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def default_signals() -> Iterator[None]:
    """Inside, the child processes started get SIGINT, SIGTERM and SIGHUP at their default
    dispositions, however the tests were started: a script's background job inherits SIGINT
    as ignored, nohup SIGHUP, and a child inherits what is ignored (handlers, unlike ignored
    signals, do not survive exec). Call it from the main thread."""
    ignored = [number for number in STOP_SIGNALS if signal.getsignal(number) == signal.SIG_IGN]
    for number in ignored:
        signal.signal(number, signal.default_int_handler if number == signal.SIGINT
                      else signal.SIG_DFL)
    try:
        yield
    finally:
        for number in ignored:
            signal.signal(number, signal.SIG_IGN)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/`pid`/stat after the command name, or None if there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """True while `pid` runs (a zombie has exited); with `started` (its start time, from
    ProcessTree), only while it is still that very process."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return False
    return started is None or fields[19] == started


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their start times."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found[int(entry)] = fields[19]
    return found


class ProcessTree:
    """A child process and every process it starts, even in sessions of their own.

    `refresh()` records the descendants alive now (call it while they run: an orphan's parent
    is no longer known); `alive()` tells which of them (and the child) still run; `kill()`
    SIGKILLs all of them and their process groups, and leaves none behind. A recorded pid is
    only ever signalled while its start time is the one recorded, never a reused pid.
    """

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.seen: dict[int, str] = {}

    def refresh(self) -> dict[int, str]:
        queue = [self.process.pid, *self.seen]
        while queue:
            for pid, started in children(queue.pop()).items():
                if pid not in self.seen:
                    self.seen[pid] = started
                    queue.append(pid)
        return self.seen

    def alive(self) -> set[int]:
        running = {pid for pid, started in self.seen.items() if pid_alive(pid, started)}
        if self.process.poll() is None:
            running.add(self.process.pid)
        return running

    def kill(self) -> None:
        if self.process.poll() is None:
            self.refresh()
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self.process.wait()
        kill_group(self.process.pid)  # what is left of its group, if it led one
        for pid, started in self.seen.items():
            if not pid_alive(pid, started):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == pid:  # it leads a group (a session) of its own
                    kill_group(pid)
                os.kill(pid, signal.SIGKILL)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM,
                 timeout: float = 20) -> int | None:
    """Stop `process` and its whole process group; return its exit status.

    Sends `sig` to the process (SIGTERM by default: unlike SIGINT it is never inherited as
    ignored, so it works however the caller was started), waits `timeout` seconds, then
    SIGKILLs the process; finally SIGKILLs whatever is left of its process group (when the
    process leads one of its own, as with start_new_session=True). Safe to call twice.
    """
    with contextlib.suppress(ProcessLookupError):
        if process.poll() is None:
            process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait()
    kill_group(process.pid)
    return process.returncode


def kill_group(pgid: int) -> None:
    """SIGKILL the process group `pgid`, if there is one (never the caller's own group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pgid != os.getpgrp():
            os.killpg(pgid, signal.SIGKILL)


class TcpProxy:
    """A TCP forwarder that can be cut (the database "goes away") and restored on its port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self.lock:
            if self.listener is not None:
                # wakes the thread blocked in accept(); close() alone does not on Linux
                with contextlib.suppress(OSError):
                    self.listener.shutdown(socket.SHUT_RDWR)
                self.listener.close()
                self.listener = None
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------------------------
# The client's retry loop


class NeverAnswered(Exception):
    """The deadline passed before the batch was answered with anything but 429/503."""


def retry_until_answered(url: str | Callable[[], str], key: str, payload: bytes, *,
                         deadline: float,
                         timeout: float = 20,
                         pause: Callable[[requests.Response | None], float] | None = None,
                         on_answer: Callable[[float, float, requests.Response], None] | None = None
                         ) -> tuple[requests.Response, bool, tuple[float, float] | None]:
    """POST a JSON batch to `url`/v1/events as a portal does: resend the same bytes (the same
    event ids) on 429, 503 and network failures until another answer comes. `url` may be a
    function, asked again before every attempt (a server restarted on another port).

    `deadline` is a time.monotonic() value; past it, NeverAnswered. `pause(response)` says how
    long to sleep before a resend (response is None after a network failure; default 0.05 s);
    `on_answer(started, ended, response)` sees every HTTP answer, the retried ones included.
    Returns (the final answer, whether a network failure happened on the way (an earlier
    attempt may then have committed), (started, ended) of the last 503 or None).
    """
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    ambiguous = False
    last_503: tuple[float, float] | None = None
    while True:
        base = url() if callable(url) else url
        if time.monotonic() > deadline:
            raise NeverAnswered(f"no answer but 429/503 or network failures from {base}")
        started = time.monotonic()
        try:
            response = requests.post(f"{base}/v1/events", data=payload, timeout=timeout,
                                     headers=headers)
        except requests.RequestException:
            ambiguous = True
            time.sleep(pause(None) if pause else 0.05)
            continue
        ended = time.monotonic()
        if on_answer is not None:
            on_answer(started, ended, response)
        if response.status_code in (429, 503):
            if response.status_code == 503:
                last_503 = (started, ended)
            time.sleep(pause(response) if pause else 0.05)
            continue
        return response, ambiguous, last_503
