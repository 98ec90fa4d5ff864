"""Settings: declared once as (name, default, help), read from config.yaml, validated at start-up.

Every key is documented here and in the shipped `config.yaml`; an unknown key or a bad value
stops start-up with one line that names the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """A config file or value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: type | tuple[type, ...]
    check: Callable[[Any], str | None] | None = None


def _at_least(minimum: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= minimum else f"must be at least {minimum:g}"


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be a port number from 0 to 65535"


def _db_url(v: str | None) -> str | None:
    if v is None or re.match(r"^(sqlite|postgresql)(\+\w+)?://", v):
        return None
    return "must be a SQLAlchemy URL starting with sqlite:// or postgresql+psycopg://"


def _log_level(v: str) -> str | None:
    ok = {"DEBUG", "INFO", "WARNING", "ERROR"}
    return None if v.upper() in ok else f"must be one of {', '.join(sorted(ok))}"


SETTINGS: tuple[Setting, ...] = (
    Setting("storage.data_dir", "var", "where the embedded stores live", str),
    Setting("storage.database_url", None,
            "SQLAlchemy URL of the ingest store and registry; empty means a SQLite file in "
            "data_dir", (str, type(None)), _db_url),
    Setting("storage.retention_days", 800,
            "raw events older than this (by day of use) are pruned; daily rollups are kept",
            int, _at_least(1)),
    Setting("server.host", "127.0.0.1", "where `serve` listens", str),
    Setting("server.port", 8050, "port `serve` listens on", int, _port),
    Setting("server.workers", None,
            "WSGI worker processes of `serve`; empty: one per CPU core, plus one",
            (int, type(None)), _at_least(1)),
    Setting("server.threads", 4, "threads per worker process", int, _at_least(1)),
    Setting("ingest.max_events_per_request", 1000, "events per request, at most", int,
            _at_least(1)),
    Setting("ingest.max_body_bytes", 5_000_000, "request body size after decompression", int,
            _at_least(1024)),
    Setting("ingest.max_age_days", 400, "events that occurred longer ago are rejected", int,
            _at_least(1)),
    Setting("ingest.rate_limit_events_per_minute", 600_000,
            "per implementer: a token bucket of this many events, refilled continuously",
            int, _at_least(1)),
    Setting("ingest.retry_after_seconds", 5,
            "Retry-After sent with 503 when the store cannot commit", int, _at_least(1)),
    Setting("ingest.store_timeout_seconds", 10.0,
            "how long a request waits for the store before answering 503", (int, float),
            _at_least(0.1)),
    Setting("keys.rotation_grace_hours", 24.0,
            "after `rotate-key`, the old key keeps working this long", (int, float),
            _at_least(0)),
    Setting("schedule.aggregate_minutes", 5.0, "how often `serve` runs the aggregation",
            (int, float), _at_least(0.05)),
    Setting("privacy.export_min_implementers", 3,
            "free-text rows, countries and sectors need this many distinct implementers",
            int, _at_least(1)),
    Setting("privacy.export_min_count", 5, "counts below this are published as <N", int,
            _at_least(1)),
    Setting("dashboard.warm_up", True,
            "after each aggregation, each worker renders every page's default views", bool),
    Setting("logging.level", "INFO", "DEBUG, INFO, WARNING or ERROR", str, _log_level),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class Settings:
    """Validated settings. Read with `settings["ingest.max_age_days"]`."""

    def __init__(self, values: dict[str, Any] | None = None, base_dir: Path | None = None):
        self.base_dir = (base_dir or Path.cwd()).resolve()
        self._values = {s.name: s.default for s in SETTINGS}
        for name, value in (values or {}).items():
            self._values[name] = _validate(name, value)
        self._check_together()

    def _check_together(self) -> None:
        # A bucket smaller than one allowed request would refuse that request forever.
        rate = self._values["ingest.rate_limit_events_per_minute"]
        batch = self._values["ingest.max_events_per_request"]
        if rate < batch:
            raise ConfigError(f"ingest.rate_limit_events_per_minute: must be at least "
                              f"ingest.max_events_per_request ({batch}), got {rate}")
        # A pruned event must stay too old to be accepted again, or a resend would count twice.
        retention = self._values["storage.retention_days"]
        max_age = self._values["ingest.max_age_days"]
        if retention <= max_age + 1:
            raise ConfigError(f"storage.retention_days: must be more than ingest.max_age_days + 1 "
                              f"({max_age + 1}), got {retention}")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def replace(self, **values: Any) -> Settings:
        """A copy with some keys changed; keys use `__` for dots (`ingest__max_age_days`)."""
        merged = dict(self._values)
        merged.update({k.replace("__", "."): v for k, v in values.items()})
        return Settings(merged, self.base_dir)

    @property
    def data_dir(self) -> Path:
        return (self.base_dir / self["storage.data_dir"]).resolve()

    @property
    def database_url(self) -> str:
        url = self["storage.database_url"]
        if url:
            return url
        return f"sqlite:///{self.data_dir / 'ingest.sqlite3'}"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse"


def _validate(name: str, value: Any) -> Any:
    setting = _BY_NAME.get(name)
    if setting is None:
        raise ConfigError(f"{name}: unknown setting")
    kind = setting.kind if isinstance(setting.kind, tuple) else (setting.kind,)
    # bool is an int in Python; a `true` where a number belongs is a mistake.
    if isinstance(value, bool) and bool not in kind:
        raise ConfigError(f"{name}: expected {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{name}: expected {_kind_name(kind)}, got {value!r}")
    if setting.check and value is not None:
        problem = setting.check(value)
        if problem:
            raise ConfigError(f"{name}: {problem} (got {value!r})")
    return value


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             type(None): "empty"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if not value:
                continue
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def find_config(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The config file to read: --config, else ./config.yaml, else $ESCO_KPI_CONFIG."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    local = Path("config.yaml")
    if local.is_file():
        return local
    env = os.environ.get("ESCO_KPI_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from ESCO_KPI_CONFIG)")
        return path
    return None


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate a config file; relative paths in it are relative to its folder."""
    found = find_config(path)
    if found is None:
        return Settings()
    try:
        tree = yaml.safe_load(found.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{found}:{where} is not valid YAML") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{found}: is not UTF-8 text") from exc
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{found}: expected a mapping of sections at the top level")
    for section, body in tree.items():
        if not isinstance(body, dict | None):
            raise ConfigError(f"{section}: expected a section of keys, got {body!r}")
    flat = _flatten({k: v for k, v in tree.items() if v is not None})
    try:
        return Settings(flat, found.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{found}: {exc}") from None


def render_default_config() -> str:
    """config.yaml with every key, its default and a one-line comment."""
    lines = ["# esco-kpi configuration. Relative paths are relative to this file's folder.", ""]
    section = None
    for s in SETTINGS:
        head, key = s.name.split(".", 1)
        if head != section:
            if section is not None:
                lines.append("")
            lines.append(f"{head}:")
            section = head
        value = "" if s.default is None else yaml.safe_dump(s.default).strip().removesuffix(
            "\n...").strip()
        lines.append(f"  # {s.help}")
        lines.append(f"  {key}: {value}".rstrip())
    return "\n".join(lines) + "\n"
