"""Server-side staff sessions stored in PostgreSQL.

The cookie holds 32 random bytes; the table holds their SHA-256. A session expires after
``session_idle_minutes`` without a request and ``session_absolute_hours`` after login,
whichever comes first. Login always issues a new id (no fixation).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from server import staff

COOKIE = "casa_session"
# last_seen is only written when it is older than this, so browsing does not write each time.
TOUCH_EVERY_S = 60


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Session:
    token_hash: bytes
    staff_id: int
    mfa_pending: bool


INSERT = """
INSERT INTO staff_sessions (token_hash, staff_id, expires_at, mfa_pending, device)
VALUES ($1, $2, now() + $3::interval, $4, $5)
"""

# Families only, most specific first (Edge and Opera also say Chrome; Chrome says Safari).
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("SamsungBrowser/", "Samsung Internet"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))


def device_summary(user_agent: str) -> str | None:
    """"Firefox on Android" from a User-Agent header: enough for its owner to recognise a
    session in the admin's list, not a fingerprint (no versions, nothing else kept)."""
    ua = user_agent[:512]
    browser = next((name for mark, name in _BROWSERS if mark in ua), None)
    system = next((name for mark, name in _SYSTEMS if mark in ua), None)
    if browser and system:
        return f"{browser} / {system}"
    return browser or system


async def create(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int, absolute: timedelta,
                 mfa_pending: bool, device: str | None = None) -> str:
    token = secrets.token_urlsafe(32)
    await conn.execute(INSERT, hash_token(token), staff_id, absolute, mfa_pending, device)
    return token


LOOKUP = """
UPDATE staff_sessions SET last_seen_at = CASE
        WHEN last_seen_at < now() - make_interval(secs => $3) THEN now() ELSE last_seen_at END
WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()
  AND last_seen_at > now() - $2::interval
RETURNING token_hash, staff_id, mfa_pending
"""


async def lookup(conn: asyncpg.Connection | asyncpg.Pool, token: str,
                 idle: timedelta) -> Session | None:
    """The live session for a cookie value, touching its idle timer; None when expired."""
    if not token or len(token) > 100:
        return None
    r = await conn.fetchrow(LOOKUP, hash_token(token), idle, TOUCH_EVERY_S)
    return Session(r["token_hash"], r["staff_id"], r["mfa_pending"]) if r else None


# The session and its staff member in one round trip: every staff request needs both.
LOOKUP_WITH_STAFF = f"""
WITH live AS ({LOOKUP})
SELECT live.token_hash, live.staff_id, live.mfa_pending, st.*
FROM live LEFT JOIN LATERAL (
    {staff.SELECT_STAFF} WHERE s.id = live.staff_id AND s.active AND NOT live.mfa_pending
    GROUP BY s.id) st ON true
"""


async def lookup_with_staff(conn: asyncpg.Connection | asyncpg.Pool, token: str,
                            idle: timedelta) -> tuple[Session, staff.Staff | None] | None:
    """Like :func:`lookup`, with the session's active staff member (None while the second
    factor is still owed or the account is disabled)."""
    if not token or len(token) > 100:
        return None
    r = await conn.fetchrow(LOOKUP_WITH_STAFF, hash_token(token), idle, TOUCH_EVERY_S)
    if r is None:
        return None
    session = Session(r["token_hash"], r["staff_id"], r["mfa_pending"])
    return session, (staff.from_row(r) if r["id"] is not None else None)


COMPLETE_MFA = "UPDATE staff_sessions SET mfa_pending = false WHERE token_hash = $1"
REVOKE = "UPDATE staff_sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL"
REVOKE_ALL = """
UPDATE staff_sessions SET revoked_at = now() WHERE staff_id = $1 AND revoked_at IS NULL
"""
PURGE = "DELETE FROM staff_sessions WHERE expires_at < now() - interval '7 days'"


async def complete_mfa(conn: asyncpg.Connection | asyncpg.Pool, token_hash: bytes) -> None:
    await conn.execute(COMPLETE_MFA, token_hash)


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, token_hash: bytes) -> None:
    await conn.execute(REVOKE, token_hash)


async def revoke_all(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> None:
    await conn.execute(REVOKE_ALL, staff_id)


async def purge_expired(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    await conn.execute(PURGE)
