"""The registry: implementers and their API keys, and dashboard users.

API keys are random, shown once, and stored only as SHA-256 hashes (a key has 190 bits of
entropy, so a fast hash is enough; passwords, which people choose, get scrypt instead).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from kpi.store.db import api_keys, implementers, users
from kpi.vocabulary import COUNTRIES, COUNTRY_CODE, SECTORS

KEY_PREFIX = "esk_"
# A viewer reads the dashboard; a reviewer also decides on review items (kpi.review).
ROLES: tuple[str, ...] = ("viewer", "reviewer")


class RegistryError(Exception):
    """A registry request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Implementer:
    id: int
    name: str
    country: str
    sector: str


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _new_key() -> tuple[str, str]:
    """A fresh key and its visible prefix."""
    visible = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{visible}_{secrets.token_urlsafe(24)}"
    return key, f"{KEY_PREFIX}{visible}"


def _check_country(country: str) -> str:
    code = country.strip().upper()
    if not COUNTRY_CODE.fullmatch(code):
        raise RegistryError(f"country must be a two-letter ISO 3166 code, got {country!r}")
    if code not in COUNTRIES:
        raise RegistryError(f"country {country!r} is not an ISO 3166-1 alpha-2 code")
    return code


def add_implementer(
    engine: Engine, name: str, country: str, sector: str
) -> tuple[Implementer, str]:
    """Register an implementer; returns it and its first API key (shown only now)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise RegistryError("name must be 1 to 200 characters")
    if sector not in SECTORS:
        raise RegistryError(f"sector must be one of: {', '.join(SECTORS)}; got {sector!r}")
    code = _check_country(country)
    key, prefix = _new_key()
    now = utcnow()
    try:
        with engine.begin() as conn:
            new_id = conn.execute(
                insert(implementers).values(name=name, country=code, sector=sector, created_at=now)
            ).inserted_primary_key[0]
            conn.execute(insert(api_keys).values(
                implementer_id=new_id, prefix=prefix, key_hash=hash_key(key), created_at=now))
    except IntegrityError:
        raise RegistryError(f"an implementer named {name!r} already exists") from None
    return Implementer(new_id, name, code, sector), key


def list_implementers(engine: Engine) -> list[dict]:
    """Every implementer with its keys' prefixes and dates (never the keys)."""
    with engine.connect() as conn:
        rows = conn.execute(select(implementers).order_by(implementers.c.id)).mappings().all()
        keys = conn.execute(select(api_keys).order_by(api_keys.c.id)).mappings().all()
    out = []
    for row in rows:
        out.append({
            "id": row["id"],
            "name": row["name"],
            "country": row["country"],
            "sector": row["sector"],
            "created_at": _iso(row["created_at"]),
            "revoked_at": _iso(row["revoked_at"]),
            "keys": [
                {
                    "prefix": k["prefix"],
                    "created_at": _iso(k["created_at"]),
                    "last_used_at": _iso(k["last_used_at"]),
                    "revoked_at": _iso(k["revoked_at"]),
                    "expires_at": _iso(k["expires_at"]),
                }
                for k in keys if k["implementer_id"] == row["id"]
            ],
        })
    return out


def _iso(value: datetime | None) -> str | None:
    value = _as_utc(value)
    return value.isoformat(timespec="seconds") if value else None


def _get(conn, implementer_id: int):
    row = conn.execute(
        select(implementers).where(implementers.c.id == implementer_id)
    ).mappings().first()
    if row is None:
        raise RegistryError(f"no implementer with id {implementer_id}")
    return row


def revoke_implementer(engine: Engine, implementer_id: int) -> None:
    """Revoke every key of an implementer; its next request is refused."""
    now = utcnow()
    with engine.begin() as conn:
        row = _get(conn, implementer_id)
        if row["revoked_at"] is not None:
            raise RegistryError(f"implementer {implementer_id} is already revoked")
        conn.execute(update(implementers).where(implementers.c.id == implementer_id)
                     .values(revoked_at=now))
        conn.execute(update(api_keys).where(and_(api_keys.c.implementer_id == implementer_id,
                                                 api_keys.c.revoked_at.is_(None)))
                     .values(revoked_at=now))


def rotate_key(engine: Engine, implementer_id: int, grace: timedelta) -> str:
    """A new key; the current ones keep working for `grace`, then stop."""
    key, prefix = _new_key()
    now = utcnow()
    with engine.begin() as conn:
        row = _get(conn, implementer_id)
        if row["revoked_at"] is not None:
            raise RegistryError(f"implementer {implementer_id} is revoked")
        live = and_(api_keys.c.implementer_id == implementer_id, api_keys.c.revoked_at.is_(None))
        # A key already on its way out keeps its earlier end.
        conn.execute(update(api_keys).where(live, api_keys.c.expires_at.is_(None))
                     .values(expires_at=now + grace))
        conn.execute(insert(api_keys).values(
            implementer_id=implementer_id, prefix=prefix, key_hash=hash_key(key), created_at=now))
    return key


def authenticate(engine: Engine, api_key: str) -> Implementer | None:
    """The implementer a key belongs to, or None for an unknown, revoked or expired key."""
    if not api_key.startswith(KEY_PREFIX) or len(api_key) > 100:
        return None
    digest = hash_key(api_key)
    now = utcnow()
    with engine.connect() as conn:
        row = conn.execute(
            select(api_keys.c.id.label("key_id"), api_keys.c.key_hash, api_keys.c.last_used_at,
                   implementers.c.id, implementers.c.name, implementers.c.country,
                   implementers.c.sector)
            .join(implementers, implementers.c.id == api_keys.c.implementer_id)
            .where(api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None),
                   implementers.c.revoked_at.is_(None),
                   or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
        ).mappings().first()
    # The index lookup finds the row; the comparison that decides is constant-time.
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        return None
    last = _as_utc(row["last_used_at"])
    if last is None or now - last > timedelta(minutes=1):
        _touch(engine, row["key_id"], now)
    return Implementer(row["id"], row["name"], row["country"], row["sector"])


def _touch(engine: Engine, key_id: int, now: datetime) -> None:
    """Record when a key was last used, at most once a minute; never fails a request."""
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))
    except Exception:  # noqa: BLE001 - bookkeeping only
        pass


def add_user(engine: Engine, username: str, password: str, role: str = "viewer") -> None:
    """A dashboard user with a role (ROLES); the password is stored as a scrypt hash."""
    username = username.strip()
    if not re.fullmatch(r"[A-Za-z0-9._@-]{1,100}", username):
        raise RegistryError("user name must be 1 to 100 letters, digits or . _ @ -")
    if role not in ROLES:
        raise RegistryError(f"role must be one of: {', '.join(ROLES)}; got {role!r}")
    if len(password) < 8:
        raise RegistryError("password must have at least 8 characters")
    try:
        with engine.begin() as conn:
            conn.execute(insert(users).values(
                username=username, password_hash=generate_password_hash(password),
                created_at=utcnow(), role=role))
    except IntegrityError:
        raise RegistryError(f"a user named {username!r} already exists") from None


def user_role(engine: Engine, username: str) -> str | None:
    """The role of a user (one of ROLES), or None when there is no such user."""
    with engine.connect() as conn:
        return conn.execute(select(users.c.role).where(users.c.username == username)).scalar()


def set_role(engine: Engine, username: str, role: str) -> None:
    """Give an existing user another role."""
    if role not in ROLES:
        raise RegistryError(f"role must be one of: {', '.join(ROLES)}; got {role!r}")
    with engine.begin() as conn:
        changed = conn.execute(update(users).where(users.c.username == username)
                               .values(role=role)).rowcount
    if not changed:
        raise RegistryError(f"no user named {username!r}")


def set_password(engine: Engine, username: str, password: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.username == username)
                     .values(password_hash=generate_password_hash(password)))


@cache
def _dummy_hash() -> str:
    """A fixed hash, so that an unknown user costs as much time as a wrong password. Made when
    a login server starts (prime_password_checks), not at import: scrypt costs ~0.1 CPU-s, and
    most processes that import the registry never check a password."""
    return generate_password_hash("not a real password")


def prime_password_checks() -> None:
    """Prepare check_user before the first login, so that even the first unknown user costs
    what a wrong password costs."""
    _dummy_hash()


def check_user(engine: Engine, username: str, password: str) -> bool:
    with engine.connect() as conn:
        stored = conn.execute(
            select(users.c.password_hash).where(users.c.username == username)
        ).scalar()
    if stored is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(stored, password)

