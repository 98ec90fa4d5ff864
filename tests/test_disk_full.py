"""Disk full (docs/RELIABILITY.md; README "Durability"): 503 with Retry-After, nothing
acknowledged, and recovery without a restart once space is freed.

The server's data dir (SQLite store, its WAL, the metrics files) is put on a small tmpfs mounted
by the test, which then fills it to the last byte. Mounting needs root (CI runs as root); where
it is not permitted the test skips and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import requests
from sqlalchemy import func, select

from kpi.settings import Settings
from kpi.store.db import events, make_engine
from tests.helpers import event, post

BATCH = [event(f"df-{i}") for i in range(200)]
HEADROOM_MB = 16  # room for the WAL and the metrics files before the disk is filled


def mount_tmpfs(folder, size_mb: int) -> None:
    if os.geteuid() != 0:
        pytest.skip("disk-full test: mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}M", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"disk-full test: cannot mount a tmpfs here: {done.stderr.strip()}")


def unmount(folder) -> None:
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(path) -> int:
    """Write to `path` until the file system has not one byte left; return bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 4096, 512, 1):
            try:
                while True:
                    written += os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == 28, exc  # ENOSPC
    finally:
        os.close(fd)
    return written


def assert_503(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert "error" in response.json() and "accepted" not in response.json()


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def accepted(url: str, key: str) -> int:
    response = requests.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {key}"},
                            timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["accepted"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_disk_full_is_503_then_recovers_without_restart(server_factory, settings, engine,
                                                        api_key, tmp_path):
    # The store of the fixtures (catalogue and the implementer of api_key), in one file.
    with engine.connect() as conn:
        conn.exec_driver_sql("pragma wal_checkpoint(truncate)")
    engine.dispose()
    database = settings.data_dir / "ingest.sqlite3"
    small = tmp_path / "small"
    small.mkdir()
    mount_tmpfs(small, database.stat().st_size // (1 << 20) + 1 + HEADROOM_MB)
    server = None
    probe = None
    try:
        shutil.copy(database, small / "ingest.sqlite3")
        server = server_factory(storage__data_dir=str(small), ingest__store_timeout_seconds=1.0,
                                schedule__aggregate_minutes=60)
        probe = make_engine(Settings({"storage.data_dir": str(small)}))
        assert post(server.url, api_key, [event("warm-up")]).status_code == 202

        filler = small / "filler"
        assert fill(filler) > 0
        assert shutil.disk_usage(small).free == 0
        for body in (BATCH, BATCH[:2], BATCH):  # the same request again: still refused
            started = time.monotonic()
            assert_503(post(server.url, api_key, body))
            assert time.monotonic() - started < 5
        assert requests.get(f"{server.url}/v1/health", timeout=5).status_code == 200
        # Nothing of the refused requests was acknowledged or stored.
        assert stored(probe) == 1
        assert accepted(server.url, api_key) == 1

        filler.unlink()  # space is back; the same server, no restart
        response = post(server.url, api_key, BATCH)
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == len(BATCH)
        assert response.json()["duplicates"] == 0
        assert stored(probe) == 1 + len(BATCH)
        assert accepted(server.url, api_key) == 1 + len(BATCH)
        assert server.process.poll() is None
    finally:
        if probe is not None:
            probe.dispose()
        if server is not None:
            server.stop()
        unmount(small)
