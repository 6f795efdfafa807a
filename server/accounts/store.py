"""The accounts' SQL: listing staff (disabled ones too), changing an account under the
last-admin guard, sessions as the admin sees them, and one-time password links.

Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from server import staff as staff_store
from server.auth import passwords
from server.staff import Role

# Long enough to hand a link over on a day's shift, short enough that a forgotten one dies.
LINK_VALID = timedelta(hours=24)


class LastAdmin(Exception):
    """The change would leave Casa with no active admin: nobody could run the accounts."""


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    full_name: str
    role: Role
    centres: tuple[str, ...]
    active: bool
    totp_enabled: bool
    last_sign_in: datetime | None


# Last sign-in is the audit log's: sessions are purged a week after they expire.
SELECT_ACCOUNTS = """
SELECT s.id, s.email, s.full_name, s.role::text AS role, s.active,
       s.totp_secret IS NOT NULL AS totp_enabled,
       coalesce(array(SELECT sc.centre_id FROM staff_centres sc WHERE sc.staff_id = s.id
                      ORDER BY sc.centre_id), '{}') AS centres,
       (SELECT max(a.at) FROM audit_log a
        WHERE a.actor_staff_id = s.id AND a.action = 'staff_login') AS last_sign_in
FROM staff s
"""
SEARCH = SELECT_ACCOUNTS + """
WHERE ($1 = '' OR strpos(lower(s.full_name), lower($1)) > 0
                OR strpos(lower(s.email), lower($1)) > 0)
  AND ($2 = '' OR s.role::text = $2)
  AND ($3 = '' OR s.active = ($3 = 'active'))
ORDER BY s.active DESC, s.full_name, s.id
LIMIT $4
"""
GET = SELECT_ACCOUNTS + " WHERE s.id = $1"


def _account(r: asyncpg.Record) -> Account:
    return Account(r["id"], r["email"], r["full_name"], Role(r["role"]), tuple(r["centres"]),
                   r["active"], r["totp_enabled"], r["last_sign_in"])


async def search(conn: asyncpg.Connection | asyncpg.Pool, text: str, role: str, state: str,
                 limit: int = 200) -> list[Account]:
    return [_account(r) for r in await conn.fetch(SEARCH, text, role, state, limit)]


async def get(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> Account | None:
    r = await conn.fetchrow(GET, staff_id)
    return _account(r) if r else None


# Every active admin row locked in id order: two admins demoting each other at once are
# serialised here, and the second sees the first's change.
LOCK_ADMINS = "SELECT id FROM staff WHERE role = 'admin' AND active ORDER BY id FOR UPDATE"


async def guard_last_admin(conn: asyncpg.Connection, staff_id: int) -> None:
    """Refuse, inside the caller's transaction, a change that takes ``staff_id`` out of the
    active admins when it is the last one."""
    admins = [r["id"] for r in await conn.fetch(LOCK_ADMINS)]
    if admins == [staff_id]:
        raise LastAdmin()


SET_ACTIVE = "UPDATE staff SET active = $2 WHERE id = $1 AND active <> $2"
VOID_LINKS = """
UPDATE staff_password_links SET used_at = now() WHERE staff_id = $1 AND used_at IS NULL
"""


async def set_active(conn: asyncpg.Connection, staff_id: int, active: bool) -> bool:
    """Enable or disable; True when it changed. Disabling revokes every session (the
    sessions' trigger closes the person's sockets on every instance) and voids links."""
    if not active:
        await guard_last_admin(conn, staff_id)
    changed = str(await conn.execute(SET_ACTIVE, staff_id, active)) == "UPDATE 1"
    if changed and not active:
        await conn.execute(VOID_LINKS, staff_id)
        await conn.execute(REVOKE_ALL, staff_id)
    return changed


SET_ROLE = "UPDATE staff SET role = $2::staff_role WHERE id = $1"
CLEAR_CENTRES = "DELETE FROM staff_centres WHERE staff_id = $1"


async def set_role_and_centres(conn: asyncpg.Connection, staff_id: int, role: Role,
                               centres: tuple[str, ...]) -> tuple[Role, tuple[str, ...]]:
    """Change both; returns what they were."""
    before = await get(conn, staff_id)
    if before is None:
        raise LookupError(staff_id)
    if before.role is Role.ADMIN and role is not Role.ADMIN:
        await guard_last_admin(conn, staff_id)
    await conn.execute(SET_ROLE, staff_id, role.value)
    await conn.execute(CLEAR_CENTRES, staff_id)
    for centre in centres:
        await conn.execute(staff_store.INSERT_STAFF_CENTRE, staff_id, centre)
    return before.role, before.centres


SET_PASSWORD = "UPDATE staff SET password_hash = $2 WHERE id = $1"


def unusable_hash() -> str:
    """A real Argon2 hash of a secret nobody keeps: no password matches it, and checking one
    costs what checking a real one costs (the login does not reveal an account waiting for
    its owner's first password)."""
    return passwords.hash_password(secrets.token_urlsafe(32))


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


INSERT_LINK = """
INSERT INTO staff_password_links (token_hash, staff_id, created_by, expires_at)
VALUES ($1, $2, $3, now() + $4::interval)
"""


async def new_link(conn: asyncpg.Connection, staff_id: int, by: int) -> str:
    """A new one-time link's token (older links of the account are void from now)."""
    await conn.execute(VOID_LINKS, staff_id)
    token = secrets.token_urlsafe(32)
    await conn.execute(INSERT_LINK, _hash(token), staff_id, by, LINK_VALID)
    return token


async def reset_password(conn: asyncpg.Connection, staff_id: int, by: int,
                         unusable: str) -> str:
    """The old password stops working, every session ends, and a link is issued."""
    await conn.execute(SET_PASSWORD, staff_id, unusable)
    await conn.execute(REVOKE_ALL, staff_id)
    return await new_link(conn, staff_id, by)


LINK_OWNER = """
SELECT l.staff_id FROM staff_password_links l JOIN staff s ON s.id = l.staff_id
WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > now() AND s.active
"""
USE_LINK = """
UPDATE staff_password_links SET used_at = now()
WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
RETURNING staff_id
"""


async def link_owner(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> int | None:
    if not token or len(token) > 100:
        return None
    owner: int | None = await conn.fetchval(LINK_OWNER, _hash(token))
    return owner


async def use_link(conn: asyncpg.Connection, token: str, password_hash: str) -> int | None:
    """Set the password through a live link, once; the account's sessions end (whoever
    held the old password is out). None when the link is used, expired or unknown."""
    owner = await link_owner(conn, token)
    if owner is None:
        return None
    used = await conn.fetchval(USE_LINK, _hash(token))
    if used is None:
        return None
    await conn.execute(SET_PASSWORD, owner, password_hash)
    await conn.execute(VOID_LINKS, owner)
    await conn.execute(REVOKE_ALL, owner)
    return owner


@dataclass(frozen=True)
class SessionRow:
    id: int
    device: str | None
    created_at: datetime
    last_seen_at: datetime
    mfa_pending: bool


# The token's hash is not selected: nothing on the page could be turned into a session.
LIVE_SESSIONS = """
SELECT id, device, created_at, last_seen_at, mfa_pending FROM staff_sessions
WHERE staff_id = $1 AND revoked_at IS NULL AND expires_at > now()
  AND last_seen_at > now() - $2::interval
ORDER BY last_seen_at DESC
"""
REVOKE_ONE = """
UPDATE staff_sessions SET revoked_at = now()
WHERE id = $1 AND staff_id = $2 AND revoked_at IS NULL
"""
REVOKE_ALL = """
UPDATE staff_sessions SET revoked_at = now() WHERE staff_id = $1 AND revoked_at IS NULL
"""


async def live_sessions(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                        idle: timedelta) -> list[SessionRow]:
    return [SessionRow(**dict(r)) for r in await conn.fetch(LIVE_SESSIONS, staff_id, idle)]


async def revoke_session(conn: asyncpg.Connection, staff_id: int, session_id: int) -> bool:
    return str(await conn.execute(REVOKE_ONE, session_id, staff_id)) == "UPDATE 1"


async def revoke_all(conn: asyncpg.Connection, staff_id: int) -> int:
    return int(str(await conn.execute(REVOKE_ALL, staff_id)).split()[-1])


async def reset_totp(conn: asyncpg.Connection, staff_id: int) -> None:
    """The second factor is gone and every session ends: the next sign-in is by password,
    and an admin is sent to enrol again before anything else (server.pages)."""
    await staff_store.set_totp(conn, staff_id, None)
    await conn.execute(REVOKE_ALL, staff_id)
