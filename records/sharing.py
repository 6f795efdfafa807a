"""Shares of restricted notes, break-glass access and the author's notifications, and the
patient's summary links. SQL only; ``records.service`` applies the rules and audits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

# Long enough to deal with the emergency, short enough that access does not linger.
BREAK_GLASS_FOR = timedelta(hours=1)
# A patient reads the summary soon after the consultation; a link must not live forever.
SUMMARY_LINK_FOR = timedelta(days=30)
MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 1000

SHARE = """
INSERT INTO note_shares (note_id, staff_id, shared_by) VALUES ($1, $2, $3)
ON CONFLICT (note_id, staff_id) DO NOTHING
"""
SHARED_WITH = """
SELECT s.staff_id, st.full_name FROM note_shares s JOIN staff st ON st.id = s.staff_id
WHERE s.note_id = $1 ORDER BY st.full_name
"""


async def share(conn: asyncpg.Connection, note_id: int, staff_id: int, by: int) -> None:
    await conn.execute(SHARE, note_id, staff_id, by)


async def shared_with(conn: asyncpg.Connection, note_id: int) -> list[tuple[int, str]]:
    return [(r["staff_id"], r["full_name"]) for r in await conn.fetch(SHARED_WITH, note_id)]


INSERT_GLASS = """
INSERT INTO break_glass (note_id, staff_id, reason, expires_at) VALUES ($1, $2, $3, now() + $4)
RETURNING id
"""
NOTIFY = """
INSERT INTO records_notifications (staff_id, kind, note_id, actor_id, break_glass_id)
VALUES ($1, 'break_glass', $2, $3, $4)
"""


async def break_glass(conn: asyncpg.Connection, note_id: int, staff_id: int, author_id: int,
                      reason: str) -> int:
    """Grant ``staff_id`` a bounded read of the note and tell its author."""
    glass_id: int = await conn.fetchval(INSERT_GLASS, note_id, staff_id, reason, BREAK_GLASS_FOR)
    await conn.execute(NOTIFY, author_id, note_id, staff_id, glass_id)
    return glass_id


@dataclass(frozen=True)
class Notification:
    id: int
    kind: str
    note_id: int
    patient_id: int
    actor_name: str
    reason: str
    created_at: datetime
    read: bool


NOTIFICATIONS = """
SELECT n.id, n.kind, n.note_id, no.patient_id, st.full_name AS actor_name,
       coalesce(bg.reason, '') AS reason, n.created_at, n.read_at IS NOT NULL AS read
FROM records_notifications n JOIN staff st ON st.id = n.actor_id
JOIN notes no ON no.id = n.note_id LEFT JOIN break_glass bg ON bg.id = n.break_glass_id
WHERE n.staff_id = $1 ORDER BY n.created_at DESC LIMIT 100
"""
MARK_READ = """
UPDATE records_notifications SET read_at = now() WHERE staff_id = $1 AND read_at IS NULL
"""


async def notifications(conn: asyncpg.Connection | asyncpg.Pool,
                        staff_id: int) -> list[Notification]:
    return [Notification(**dict(r)) for r in await conn.fetch(NOTIFICATIONS, staff_id)]


async def mark_read(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> None:
    await conn.execute(MARK_READ, staff_id)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


INSERT_LINK = """
INSERT INTO summary_links (token_hash, note_id, version, created_by, expires_at)
VALUES ($1, $2, $3, $4, now() + $5)
"""
LOOKUP_LINK = """
SELECT note_id, version FROM summary_links WHERE token_hash = $1 AND expires_at > now()
"""


async def new_summary_link(conn: asyncpg.Connection, note_id: int, version: int,
                           by: int) -> str:
    """A random token; only its hash is stored, so a database dump opens no summary."""
    token = secrets.token_urlsafe(32)
    await conn.execute(INSERT_LINK, hash_token(token), note_id, version, by, SUMMARY_LINK_FOR)
    return token


async def summary_link(conn: asyncpg.Connection, token: str) -> tuple[int, int] | None:
    if not token or len(token) > 100:
        return None
    r = await conn.fetchrow(LOOKUP_LINK, hash_token(token))
    return (r["note_id"], r["version"]) if r else None
