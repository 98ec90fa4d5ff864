"""The `esco-kpi` command line, run as a real process: outputs, and one-line errors."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from collector.app import create_app
from kpi.review.decisions import trail
from kpi.store.db import api_keys
from kpi.store.registry import authenticate, check_user, user_role
from tests.conftest import write_config
from tests.helpers import days_ago, event
from tests.support import ProcessTree, default_signals, free_port, port_is_free


def run(config: Path | None, *args: str, stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "esco_kpi.cli"]
    if config:
        command += ["--config", str(config)]
    return subprocess.run(command + list(args), capture_output=True, text=True, input=stdin,
                          timeout=120, cwd=cwd)


@pytest.fixture
def config(settings, tmp_path) -> Path:
    return write_config(settings, tmp_path)


def one_line_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("esco-kpi: error: ")
    assert text in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_implementer_lifecycle(config, engine):
    added = run(config, "implementer", "add", "Jobs Nord", "--country", "de", "--sector",
                "job_portal", "--json")
    assert added.returncode == 0, added.stderr
    info = json.loads(added.stdout)
    assert set(info) == {"id", "name", "api_key"} and info["name"] == "Jobs Nord"
    key = info["api_key"]
    assert authenticate(engine, key).country == "DE"
    with engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.key_hash, api_keys.c.prefix)).all()
    assert all(key not in row.key_hash for row in stored)  # only the hash is kept
    assert key.startswith(stored[0].prefix)

    listed = json.loads(run(config, "implementer", "list", "--json").stdout)
    assert listed[0]["name"] == "Jobs Nord" and listed[0]["keys"][0]["prefix"] == stored[0].prefix
    assert key not in run(config, "implementer", "list").stdout

    rotated = json.loads(run(config, "implementer", "rotate-key", str(info["id"]),
                             "--json").stdout)
    assert authenticate(engine, rotated["api_key"]) is not None
    assert authenticate(engine, key) is not None  # still inside the grace period
    assert run(config, "implementer", "revoke", str(info["id"])).returncode == 0
    assert authenticate(engine, rotated["api_key"]) is None
    assert authenticate(engine, key) is None


def test_rotation_with_no_grace_ends_the_old_key(settings, tmp_path, engine):
    config = write_config(settings, tmp_path, keys__rotation_grace_hours=0)
    info = json.loads(run(config, "implementer", "add", "P", "--country", "FR", "--sector",
                          "pes", "--json").stdout)
    run(config, "implementer", "rotate-key", str(info["id"]))
    assert authenticate(engine, info["api_key"]) is None


def test_user_add_from_stdin(config, engine):
    result = run(config, "user", "add", "analyst", "--password-stdin", stdin="s3cret-pass\n")
    assert result.returncode == 0, result.stderr
    assert check_user(engine, "analyst", "s3cret-pass")
    assert not check_user(engine, "analyst", "wrong-pass")
    assert user_role(engine, "analyst") == "viewer"  # by default
    editor = run(config, "user", "add", "editor", "--password-stdin", "--role", "reviewer",
                 stdin="s3cret-pass\n")
    assert editor.returncode == 0, editor.stderr
    assert user_role(engine, "editor") == "reviewer"
    again = run(config, "user", "add", "analyst", "--password-stdin", stdin="another-pass\n")
    one_line_error(again, "already exists")
    short = run(config, "user", "add", "bob", "--password-stdin", stdin="short\n")
    one_line_error(short, "at least 8 characters")


@pytest.mark.parametrize(("args", "text"), [
    (("implementer", "add", "X", "--country", "Germany", "--sector", "pes"), "two-letter"),
    (("implementer", "add", "X", "--country", "QQ", "--sector", "pes"), "not an ISO 3166"),
    (("implementer", "add", "X", "--country", "DE", "--sector", "bank"), "sector must be one of"),
    (("implementer", "add", "X", "--sector", "pes"), "Missing option '--country'"),
    (("implementer", "revoke", "999"), "no implementer with id 999"),
    (("implementer", "revoke", "abc"), "'abc' is not a valid integer"),
    (("implementer", "rotate-key", "999"), "no implementer with id 999"),
    (("catalogue", "load", "/no/such/folder", "--version", "1.3.0"), "/no/such/folder"),
    (("catalogue", "load", ".", "--version", "one"), "version"),
    (("frobnicate",), "No such command 'frobnicate'"),
    (("user", "add", "x", "--role", "admin"), "Invalid value for '--role'"),
])
def test_errors_are_one_line(config, args, text):
    one_line_error(run(config, *args), text)


def test_duplicate_implementer_name(config):
    args = ("implementer", "add", "Same", "--country", "DE", "--sector", "pes")
    assert run(config, *args).returncode == 0
    one_line_error(run(config, *args), "already exists")


def test_bad_config_is_one_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  port: eighty\n")
    one_line_error(run(path, "implementer", "list"), "server.port: expected an integer")
    one_line_error(run(tmp_path / "missing.yaml", "implementer", "list"), "config file not found")


def test_init_is_safe_twice(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  data_dir: data\n")
    first = run(config, "init")
    assert first.returncode == 0, first.stderr
    assert "Loaded ESCO 1.2.0: 18237 concepts" in first.stdout
    # the labels' keys are kept for the first aggregation (kpi.warehouse.label_keys)
    kept = list((tmp_path / "data" / "cache" / "label-keys").iterdir())
    assert len(kept) == 1 and kept[0].suffix == ".parquet"
    second = run(config, "init")
    assert second.returncode == 0 and "already loaded" in second.stdout
    assert (tmp_path / "data" / "ingest.sqlite3").exists()


def test_store_down_is_one_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("storage:\n  database_url: postgresql+psycopg://nobody@127.0.0.1:1/none\n"
                      "ingest:\n  store_timeout_seconds: 1\n")
    one_line_error(run(config, "implementer", "list"), "the store failed")


def test_aggregate_and_export_commands(config, settings, engine, api_key, tmp_path):
    client = create_app(settings).test_client()
    response = client.post("/v1/events", headers={"Authorization": f"Bearer {api_key}"},
                           json={"events": [event(f"c-{i}", occurred_at=days_ago(1))
                                            for i in range(3)]})
    assert response.status_code == 202
    aggregated = run(config, "aggregate")
    assert aggregated.returncode == 0, aggregated.stderr
    assert aggregated.stdout.startswith("Aggregated 3 new events")
    day = datetime.now(UTC).date() - timedelta(days=1)
    quarter = f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    exported = run(config, "export", "--quarter", quarter, "--out", str(tmp_path / "exports"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "exports" / quarter / "manifest.json").exists()
    one_line_error(run(config, "export", "--quarter", "2026-Q9"), "quarter must look like")
    one_line_error(run(config, "export", "--quarter", "2001-Q1"), "no data for 2001-Q1")


@contextlib.contextmanager
def demo_process(config: Path, port: int, events: int, *extra: str, cwd: Path
                 ) -> Iterator[tuple[subprocess.Popen, ProcessTree, Path]]:
    """`esco-kpi demo` as a child in a session of its own, with SIGINT, SIGTERM and SIGHUP at
    their defaults however the tests were started, its output (both streams) in a file.
    Whatever happens, nothing of it (its server included) outlives the block."""
    output = cwd / f"demo-{time.monotonic_ns()}.out"
    command = [sys.executable, "-m", "esco_kpi.cli", "--config", str(config), "demo",
               "--events", str(events), "--port", str(port), *extra]
    with output.open("wb") as handle, default_signals():
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd,
                                   start_new_session=True)
    tree = ProcessTree(process)
    try:
        yield process, tree, output
    finally:
        tree.kill()


def wait_for(output: Path, process: subprocess.Popen, tree: ProcessTree, text: str,
             seconds: float = 300) -> str:
    """Wait until the demo has printed `text` (recording the processes it started meanwhile);
    return everything it printed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tree.refresh()
        printed = output.read_text(errors="replace")
        if text in printed:
            return printed
        assert process.poll() is None, f"the demo stopped before {text!r}:\n{printed[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} within {seconds:.0f} s:\n{printed[-3000:]}")


@pytest.mark.slow
def test_demo_twice_on_a_fresh_machine_does_not_double_the_data(tmp_path):
    """The README's first command, on an empty data folder, then again."""
    from kpi.settings import load_settings
    from kpi.store.db import make_engine
    from kpi.warehouse.indicators import INDICATORS, Period, query

    config = tmp_path / "config.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'var'}\n")
    port = free_port()

    def demo() -> str:
        with demo_process(config, port, 4000, "--no-serve", cwd=tmp_path) as (process, _, out):
            try:
                returncode = process.wait(timeout=600)
            except subprocess.TimeoutExpired:
                raise AssertionError(out.read_text()[-3000:]) from None
            assert returncode == 0, out.read_text()[-3000:]
            return out.read_text()

    first = demo()
    assert "Registered 12 demo implementers" in first
    sent = re.search(r"Sent (\d+) events: (\d+) accepted, (\d+) duplicates, (\d+) quarantined, "
                     r"(\d+) rejected", first)
    assert sent and int(sent[1]) == 4000 and int(sent[2]) > 0 and int(sent[5]) > 0
    login = re.search(rf"Dashboard: +http://127\.0\.0\.1:{port}/dashboard/ +login: demo / (\S+)",
                      first)
    assert login, first
    settings = load_settings(config)
    engine = make_engine(settings)
    assert check_user(engine, "demo", login[1])
    quarter = Period.custom(days_ago(181), days_ago(0))
    used = sum(r["usage"] for r in query(settings, "most_used_concepts", quarter).rows)
    rejected = query(settings, "data_quality", quarter).rows
    assert used > 0 and any(r["outcome"] == "rejected" for r in rejected)
    assert all(query(settings, name, quarter).columns for name in INDICATORS)
    # a share of the suggestions decided by two reviewers: every human status has examples
    decided = re.search(r"Decided (\d+) suggestions as two reviewers: (\d+) accepted, "
                        r"(\d+) rejected, (\d+) deferred\.", first)
    assert decided and all(int(n) > 0 for n in decided.groups()), first
    audit = trail(engine)
    assert len(audit) == int(decided[1])
    assert {r["status"] for r in audit} == {"accepted", "rejected", "deferred"}
    assert {r["decided_by"] for r in audit} == {"demo", "demo-editor"}
    assert all(r["reason"] for r in audit if r["status"] == "rejected")
    # taken over several weeks, not all at once
    assert len({r["decided_at"].date() for r in audit}) > 5

    engine.dispose()
    with pytest.raises(requests.ConnectionError):  # --no-serve: nothing left listening
        requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)

    # again, as the README runs it: it keeps serving the dashboard until interrupted
    with demo_process(config, port, 4000, cwd=tmp_path) as (process, tree, output):
        try:
            second = wait_for(output, process, tree, "Serving")
            again = re.search(r"Sent (\d+) events: (\d+) accepted, (\d+) duplicates", second)
            # every event stored the first time (accepted or quarantined) is a duplicate now
            assert again and int(again[2]) == 0 and int(again[3]) == int(sent[2]) + int(sent[4])
            assert sum(r["usage"] for r in query(settings, "most_used_concepts",
                                                 quarter).rows) == used
            assert "No new suggestions to decide" in second
            assert len(trail(make_engine(settings))) == len(audit)  # nothing decided twice
            password = re.search(r"login: demo / (\S+)", second)[1]  # a fresh one each run
            browser = requests.Session()
            page = browser.get(f"http://127.0.0.1:{port}/login", timeout=10)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]
            answer = browser.post(f"http://127.0.0.1:{port}/login", timeout=10, data={
                "username": "demo", "password": password, "csrf_token": token})
            assert answer.status_code == 200 and answer.url.endswith("/dashboard/")
            assert "ESCO KPI dashboard" in answer.text
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C
            assert process.wait(timeout=60) == 0
    with pytest.raises(requests.ConnectionError):  # the server went with it
        requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)


STOP_SECONDS = 15  # "at once": the server's master, workers and scheduler included


def assert_stops_completely(process: subprocess.Popen, tree: ProcessTree, port: int,
                            sig: int) -> None:
    """Send `sig` to the demo alone (as `timeout`, `kill` or a closing terminal do); it must
    exit promptly and take every process it started with it."""
    tree.refresh()
    assert len(tree.seen) >= 3, tree.seen  # the server's master, its workers, the scheduler
    started = time.monotonic()
    process.send_signal(sig)
    try:
        returncode = process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the demo still runs {STOP_SECONDS} s after {sig!r}") from None
    assert returncode == 0
    deadline = started + STOP_SECONDS
    while tree.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tree.alive(), f"left running after {sig!r}: {tree.alive()}"
    assert port_is_free(port)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_demo_stops_at_once_on_sigterm_while_sending(settings, tmp_path):
    port = free_port()
    config = write_config(settings, tmp_path)
    with demo_process(config, port, 200_000, cwd=tmp_path) as (process, tree, output):
        wait_for(output, process, tree, "sending events")  # the first batches are answered
        assert_stops_completely(process, tree, port, signal.SIGTERM)
        assert "Sent " not in output.read_text(), "the demo had finished sending"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_demo_stops_at_once_on_sighup_while_serving(settings, tmp_path):
    port = free_port()
    config = write_config(settings, tmp_path)
    with demo_process(config, port, 1000, cwd=tmp_path) as (process, tree, output):
        wait_for(output, process, tree, "Serving")
        assert_stops_completely(process, tree, port, signal.SIGHUP)
