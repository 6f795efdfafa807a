"""API bearer tokens for staff: random, shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from server.staff import Role, Staff

# Recognisable in logs and secret scanners, so a leaked one is found and revoked.
PREFIX = "casa_"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(b"casa-api:" + token.encode()).digest()


INSERT = "INSERT INTO api_tokens (staff_id, token_hash, label) VALUES ($1, $2, $3) RETURNING id"
# Written at most every few minutes: one hot token must not serialise every request on its row.
TOUCH = "UPDATE api_tokens SET last_used_at = now() WHERE id = $1"
REVOKE_ONE = "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
REVOKE_ALL = """
UPDATE api_tokens SET revoked_at = now() WHERE staff_id = $1 AND revoked_at IS NULL
"""
LIST = """
SELECT id, label, created_at, last_used_at, revoked_at FROM api_tokens WHERE staff_id = $1
ORDER BY id
"""


async def create(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                 label: str | None = None) -> tuple[int, str]:
    """A new token for a staff member: (its id, the token, to show once)."""
    token = PREFIX + secrets.token_urlsafe(32)
    token_id: int = await conn.fetchval(INSERT, staff_id, hash_token(token), label)
    return token_id, token


STAFF_FOR_TOKEN = """
SELECT s.id, s.email, s.full_name, s.role::text AS role, s.language,
       s.totp_secret IS NOT NULL AS totp_enabled,
       array(SELECT centre_id FROM staff_centres WHERE staff_id = s.id ORDER BY centre_id)
           AS centres,
       t.id AS token_id,
       t.last_used_at IS NULL OR t.last_used_at < now() - interval '5 minutes' AS stale
FROM api_tokens t JOIN staff s ON s.id = t.staff_id
WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND s.active
"""


async def staff_for_token(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> Staff | None:
    """The active staff member a live token belongs to, in one query (every API call pays it)."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    r = await conn.fetchrow(STAFF_FOR_TOKEN, hash_token(token))
    if r is None:
        return None
    if r["stale"]:
        await conn.execute(TOUCH, r["token_id"])
    return Staff(r["id"], r["email"], r["full_name"], Role(r["role"]), r["language"],
                 r["totp_enabled"], tuple(r["centres"]))


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, token_id: int) -> bool:
    return str(await conn.execute(REVOKE_ONE, token_id)) == "UPDATE 1"


async def revoke_all(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> int:
    return int(str(await conn.execute(REVOKE_ALL, staff_id)).split()[-1])


async def list_for(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> list[asyncpg.Record]:
    return list(await conn.fetch(LIST, staff_id))
