"""config.yaml: every key documented, every mistake named in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from esco_kpi.server import (
    METRICS_PREFIX,
    default_workers,
    gunicorn_options,
    metrics_folder,
    remove_metrics_folder,
)
from kpi.processes import pid_alive
from kpi.settings import SETTINGS, ConfigError, Settings, load_settings, render_default_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_lists_every_key_with_its_default():
    shipped = (ROOT / "config.yaml").read_text(encoding="utf-8")
    assert shipped == render_default_config()
    settings = load_settings(ROOT / "config.yaml")
    for setting in SETTINGS:
        assert settings[setting.name] == setting.default
        assert f"# {setting.help}" in shipped


def test_contract_defaults():
    settings = Settings()
    assert settings["server.host"] == "127.0.0.1" and settings["server.port"] == 8050
    assert settings["ingest.max_events_per_request"] == 1000
    assert settings["ingest.max_body_bytes"] == 5_000_000
    assert settings["ingest.max_age_days"] == 400
    assert settings["ingest.rate_limit_events_per_minute"] == 600_000
    assert settings["schedule.aggregate_minutes"] == 5
    assert settings["privacy.export_min_implementers"] == 3
    assert settings["privacy.export_min_count"] == 5


def test_relative_paths_follow_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write(folder, "storage:\n  data_dir: ../data\n")
    monkeypatch.chdir(tmp_path.parent)
    settings = load_settings(path)
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'ingest.sqlite3'}"


def test_env_variable_used_when_no_local_file(tmp_path, monkeypatch):
    path = write(tmp_path, "server:\n  port: 9000\n")
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setenv("ESCO_KPI_CONFIG", str(path))
    assert load_settings()["server.port"] == 9000


def test_serve_runs_one_worker_per_core_plus_one_unless_told(tmp_path, monkeypatch):
    # gunicorn_options points prometheus_client at its metrics folder through the
    # environment: restored after the test
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    assert default_workers() == len(os.sched_getaffinity(0)) + 1
    empty = load_settings(write(tmp_path, f"storage:\n  data_dir: {tmp_path}\n"
                                          "server:\n  workers:\n"))
    assert empty["server.workers"] is None
    assert gunicorn_options(empty)["workers"] == default_workers()
    five = load_settings(write(tmp_path, f"storage:\n  data_dir: {tmp_path}\n"
                                         "server:\n  workers: 5\n"))
    assert gunicorn_options(five)["workers"] == 5
    assert gunicorn_options(five, workers=7)["workers"] == 7  # serve --workers 7
    remove_metrics_folder()


def test_each_serve_has_its_own_metrics_folder_and_dead_ones_are_removed(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    settings = load_settings(write(tmp_path, f"storage:\n  data_dir: {tmp_path}\n"))
    gone = subprocess.Popen(["true"])
    gone.wait()
    running = subprocess.Popen(["sleep", "60"])
    own = metrics_folder(settings)
    parent, tag = own.parent, own.name.rsplit("-", 1)[1]
    try:
        assert own.name == f"{METRICS_PREFIX}{os.getpid()}-{tag}"
        # another serve of the same data folder that is running, one that was killed, one of
        # another data folder that was killed, and an earlier version's folder (no pid)
        others = {name: parent / name for name in (
            f"{METRICS_PREFIX}{running.pid}-{tag}", f"{METRICS_PREFIX}{gone.pid}-{tag}",
            f"{METRICS_PREFIX}{gone.pid}-0123456789ab", f"{METRICS_PREFIX}{tag}")}
        for folder in others.values():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "counter_1.db").write_bytes(b"metrics")
        options = gunicorn_options(settings)
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(own) and own.is_dir()
        assert options["workers"] == default_workers()
        left = sorted(p.name for p in others.values() if p.exists())
        assert left == [f"{METRICS_PREFIX}{running.pid}-{tag}"]  # the running one, untouched
        assert (others[left[0]] / "counter_1.db").exists()
        remove_metrics_folder()  # as serve does when it stops
        assert not own.exists()
        assert others[left[0]].exists()
    finally:
        running.kill()
        running.wait()
        shutil.rmtree(parent / f"{METRICS_PREFIX}{running.pid}-{tag}", ignore_errors=True)


def test_a_number_no_process_can_have_is_not_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(10**12)  # what the hex tag of an earlier version's folder can be


@pytest.mark.parametrize(("text", "message"), [
    ("server:\n  port: eighty\n", "server.port: expected an integer, got 'eighty'"),
    ("server:\n  port: 70000\n", "server.port: must be a port number"),
    ("server:\n  prot: 80\n", "server.prot: unknown setting"),
    ("server:\n  workers: 0\n", "server.workers: must be at least 1"),
    ("server:\n  workers: two\n", "server.workers: expected an integer or empty, got 'two'"),
    ("sever:\n  port: 80\n", "sever.port: unknown setting"),
    ("ingest:\n  max_age_days: true\n", "ingest.max_age_days: expected an integer, got True"),
    ("ingest:\n  max_events_per_request: 0\n", "ingest.max_events_per_request: must be at least"),
    ("storage:\n  database_url: mysql://x\n", "storage.database_url: must be a SQLAlchemy URL"),
    ("logging:\n  level: LOUD\n", "logging.level: must be one of"),
    ("dashboard:\n  warm_up: sometimes\n",
     "dashboard.warm_up: expected true or false, got 'sometimes'"),
    ("server: [1, 2]\n", "server: expected a section of keys"),
    ("- a\n- b\n", "expected a mapping of sections"),
    ("server:\n  port: [\n", "is not valid YAML"),
])
def test_bad_config_names_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_not_utf8_and_missing_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"server:\n  host: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_empty_file_and_empty_section_mean_defaults(tmp_path):
    assert load_settings(write(tmp_path, ""))["server.port"] == 8050
    assert load_settings(write(tmp_path, "server:\n"))["server.port"] == 8050


def test_rate_limit_must_cover_one_full_request(tmp_path):
    text = "ingest:\n  max_events_per_request: 1000\n  rate_limit_events_per_minute: 10\n"
    with pytest.raises(ConfigError, match="ingest.rate_limit_events_per_minute"):
        load_settings(write(tmp_path, text))
