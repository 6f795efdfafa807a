"""Kiosk enrolment codes and credentials (migration 0500), stored only as hashes.

An enrolment code is typed once on the kiosk, so it is short; it carries 50 random bits, is
single-use, expires after a day and is guessed at no faster than the per-address limit, and is
kept as an HMAC under the server's key (a short code is easy to reverse from a plain hash). The
credential the kiosk then holds carries 256 random bits, so a plain SHA-256 is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

CODE_AGE = timedelta(hours=24)
# Crockford's base32 without the letters people confuse (I, L, O, U): what is read off one
# screen and typed on another.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_CHARS = 10
# A kiosk's last_seen_at is written at most this often: every page and API call of a kiosk
# would otherwise be a write.
SEEN_EVERY = timedelta(minutes=1)


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return raw[:5] + "-" + raw[5:]


def normalise_code(typed: str) -> str:
    """What a person typed, as the code was made: upper case, no spaces or dashes, and the
    letters that look like digits read as those digits."""
    text = typed.upper().translate(str.maketrans("OIL", "011"))
    return "".join(ch for ch in text if ch in ALPHABET)


def code_hash(secret_key: str, code: str) -> bytes:
    return hmac.new(secret_key.encode(), b"casa-kiosk-enrol:" + normalise_code(code).encode(),
                    hashlib.sha256).digest()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(b"casa-kiosk:" + token.encode()).digest()


@dataclass(frozen=True)
class Kiosk:
    id: int
    centre_id: str
    name: str
    enrolled: bool
    last_seen_at: datetime | None
    code_expires_at: datetime | None


LIST = """
SELECT r.id, r.centre_id, r.name, kc.last_seen_at, kc.id IS NOT NULL AS enrolled,
       (SELECT max(expires_at) FROM kiosk_enrolment_codes e
        WHERE e.kiosk_id = r.id AND e.used_at IS NULL AND e.expires_at > $2) AS code_expires_at
FROM resources r
LEFT JOIN kiosk_credentials kc ON kc.kiosk_id = r.id AND kc.revoked_at IS NULL
WHERE r.kind = 'kiosk' AND ($1::text[] IS NULL OR r.centre_id = ANY($1::text[]))
ORDER BY r.centre_id, r.name, r.id
"""


async def list_kiosks(conn: asyncpg.Connection | asyncpg.Pool, centres: list[str] | None,
                      now: datetime) -> list[Kiosk]:
    """The kiosks of ``centres`` (every centre's when None)."""
    return [Kiosk(r["id"], r["centre_id"], r["name"], r["enrolled"], r["last_seen_at"],
                  r["code_expires_at"]) for r in await conn.fetch(LIST, centres, now)]


async def kiosk_centre(conn: asyncpg.Connection | asyncpg.Pool, kiosk_id: int) -> str | None:
    centre: str | None = await conn.fetchval(
        "SELECT centre_id FROM resources WHERE id = $1 AND kind = 'kiosk'", kiosk_id)
    return centre


INSERT_CODE = """
INSERT INTO kiosk_enrolment_codes (kiosk_id, code_hash, created_by, expires_at)
VALUES ($1, $2, $3, $4)
"""
# A new code makes the kiosk's earlier unused ones worthless: only the newest one shown works.
RETIRE_CODES = """
UPDATE kiosk_enrolment_codes SET expires_at = least(expires_at, $2)
WHERE kiosk_id = $1 AND used_at IS NULL
"""


async def issue_code(conn: asyncpg.Connection, secret_key: str, kiosk_id: int, staff_id: int,
                     now: datetime) -> str:
    code = new_code()
    async with conn.transaction():
        await conn.execute(RETIRE_CODES, kiosk_id, now)
        await conn.execute(INSERT_CODE, kiosk_id, code_hash(secret_key, code), staff_id,
                           now + CODE_AGE)
    return code


# Takes the code (single use) in the same statement that checks it, so two kiosks typing the
# same code at once cannot both enrol.
USE_CODE = """
UPDATE kiosk_enrolment_codes SET used_at = $2
WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
RETURNING kiosk_id, created_by
"""
REVOKE_LIVE = """
UPDATE kiosk_credentials SET revoked_at = $2 WHERE kiosk_id = $1 AND revoked_at IS NULL
"""
INSERT_CREDENTIAL = """
INSERT INTO kiosk_credentials (kiosk_id, token_hash, enrolled_at, enrolled_by, last_seen_at)
VALUES ($1, $2, $3, $4, $3)
"""


async def enrol(conn: asyncpg.Connection, secret_key: str, code: str,
                now: datetime) -> str | None:
    """A new kiosk credential for the kiosk ``code`` was made for, or None (unknown, used or
    expired). The kiosk's earlier browser, if any, stops being that kiosk."""
    async with conn.transaction():
        found = await conn.fetchrow(USE_CODE, code_hash(secret_key, code), now)
        if found is None:
            return None
        token = secrets.token_urlsafe(32)
        await conn.execute(REVOKE_LIVE, found["kiosk_id"], now)
        await conn.execute(INSERT_CREDENTIAL, found["kiosk_id"], token_hash(token), now,
                           found["created_by"])
    return token


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, kiosk_id: int, now: datetime) -> None:
    """The kiosk's browser stops being a kiosk, and its unused codes stop working."""
    await conn.execute(REVOKE_LIVE, kiosk_id, now)
    await conn.execute(RETIRE_CODES, kiosk_id, now)


@dataclass(frozen=True)
class Device:
    """The kiosk a browser is, from its credential."""

    kiosk_id: int
    centre_id: str
    name: str


RESOLVE = """
SELECT kc.id, kc.kiosk_id, r.centre_id, r.name, kc.last_seen_at
FROM kiosk_credentials kc JOIN resources r ON r.id = kc.kiosk_id
WHERE kc.token_hash = $1 AND kc.revoked_at IS NULL
"""
SEEN = "UPDATE kiosk_credentials SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $3"


async def resolve(conn: asyncpg.Connection | asyncpg.Pool, token: str,
                  now: datetime) -> Device | None:
    """The kiosk holding ``token``, its last_seen_at moved on (at most once a minute)."""
    if not token or len(token) > 100:
        return None
    r = await conn.fetchrow(RESOLVE, token_hash(token))
    if r is None:
        return None
    if r["last_seen_at"] < now - SEEN_EVERY:
        await conn.execute(SEEN, r["id"], now, now - SEEN_EVERY)
    return Device(r["kiosk_id"], r["centre_id"], r["name"])
