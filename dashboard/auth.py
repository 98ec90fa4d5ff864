"""Dashboard login: the shared secret key, server-side sessions, and brute-force protection.

State lives in the ingest store (kpi.store.db's dashboard_sessions and dashboard_login_failures),
not in process memory: `serve` runs several gunicorn workers, and a lockout or a logout must
hold whichever worker answers the next request. The cookie itself only carries a random
session id (signed by Flask).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from kpi.store.db import dashboard_login_failures, dashboard_sessions, init_store, store_error

SESSION_SECONDS = 8 * 3600
# Per user name: this many failures are free, then each one doubles the wait, up to the cap.
FREE_FAILURES = 5
MAX_LOCK_SECONDS = 900
# A failure counter is forgotten after an hour without failures.
FAILURE_MEMORY_SECONDS = 3600
# All user names together: more failures than this in one minute refuses every login attempt
# for the rest of that minute (a slow-down for password spraying across many names).
GLOBAL_FAILURES_PER_MINUTE = 100
GLOBAL_KEY = "*"

login_failures = dashboard_login_failures
sessions = dashboard_sessions


def init_tables(engine: Engine) -> None:
    """Create the store's tables if missing (a store older than the dashboard lacks the
    dashboard's two); workers starting together may race, which is harmless."""
    for _ in range(3):
        try:
            init_store(engine)
            return
        except SQLAlchemyError:
            time.sleep(0.2)
    try:
        init_store(engine)
    except SQLAlchemyError as exc:
        # The store is down at start: serve anyway (health answers, logins get an error) and
        # let `esco-kpi serve` or `init` create the tables once it is back.
        logging.getLogger("esco_kpi.dashboard").warning(
            "the store is unavailable; dashboard tables not checked: %s", store_error(exc))


def load_secret_key(data_dir: Path) -> bytes:
    """The Flask secret key from data_dir/secret_key, created (0600) on first start.

    Written to a private temporary file and hard-linked into place, so a worker never reads a
    half-written key and the first worker to finish wins for all of them.
    """
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable secret key; delete it to make a new one")
    return key


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(engine: Engine, username: str) -> str:
    """A new session id for a user who just logged in (only its hash is stored)."""
    sid = secrets.token_urlsafe(32)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.expires_at < now))
        conn.execute(sessions.insert().values(id_hash=_hash(sid), username=username,
                                              created_at=now, expires_at=now + SESSION_SECONDS))
    return sid


def session_user(engine: Engine, sid: str | None) -> str | None:
    """The user a live session id belongs to, else None."""
    if not sid or not isinstance(sid, str):
        return None
    with engine.connect() as conn:
        return conn.execute(select(sessions.c.username).where(
            sessions.c.id_hash == _hash(sid), sessions.c.expires_at > time.time())).scalar()


def end_session(engine: Engine, sid: str | None) -> None:
    if sid and isinstance(sid, str):
        with engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id_hash == _hash(sid)))


@dataclass(frozen=True)
class Lock:
    """Why a login attempt is refused before its password is even checked."""

    seconds: int
    scope: str  # "user" or "global"


def _user_key(username: str) -> str:
    return "user:" + username.strip().lower()[:100]


def check_lock(engine: Engine, username: str, now: float | None = None) -> Lock | None:
    """A Lock if this user name (or every name) is locked right now, else None."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(select(login_failures).where(
            login_failures.c.key.in_([_user_key(username), GLOBAL_KEY])))}
    glob = rows.get(GLOBAL_KEY)
    if glob is not None and glob.locked_until > now:
        return Lock(int(glob.locked_until - now) + 1, "global")
    user = rows.get(_user_key(username))
    if user is not None and user.locked_until > now:
        return Lock(int(user.locked_until - now) + 1, "user")
    return None


def _upsert(engine: Engine, key: str, compute) -> None:
    """Read-modify-write one counter row in a transaction (insert when absent)."""
    with engine.begin() as conn:
        query = select(login_failures).where(login_failures.c.key == key)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        values = compute(row)
        if row is None:
            ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(
                login_failures).values(key=key, **values)
            conn.execute(ins.on_conflict_do_update(index_elements=["key"], set_=values))
        else:
            conn.execute(update(login_failures).where(login_failures.c.key == key)
                         .values(**values))


def record_failure(engine: Engine, username: str, now: float | None = None) -> None:
    """Count a failed attempt for the name and globally; lock when over the limits."""
    now = time.time() if now is None else now

    def per_user(row) -> dict:
        failures = 1
        if row is not None and now - row.last_failure < FAILURE_MEMORY_SECONDS:
            failures = row.failures + 1
        over = failures - FREE_FAILURES
        lock = min(2 ** (over - 1), MAX_LOCK_SECONDS) if over > 0 else 0
        return {"failures": failures, "window_start": now, "last_failure": now,
                "locked_until": now + lock}

    def overall(row) -> dict:
        if row is None or now - row.window_start >= 60:
            return {"failures": 1, "window_start": now, "last_failure": now,
                    "locked_until": 0.0}
        failures = row.failures + 1
        locked = row.window_start + 60 if failures > GLOBAL_FAILURES_PER_MINUTE else 0.0
        return {"failures": failures, "window_start": row.window_start, "last_failure": now,
                "locked_until": locked}

    _upsert(engine, _user_key(username), per_user)
    _upsert(engine, GLOBAL_KEY, overall)


def record_success(engine: Engine, username: str) -> None:
    """A successful login forgets the name's failures."""
    with engine.begin() as conn:
        conn.execute(delete(login_failures).where(login_failures.c.key == _user_key(username)))
