"""Shares of restricted notes, break-glass access and the author's notifications, and the
patient's summary links. SQL only; ``records.service`` applies the rules and audits."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from records.crypto import Sealed

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


# The id is drawn first because the sealed reason is bound to it (``crypto.GlassId``).
NEXT_GLASS_ID = "SELECT nextval(pg_get_serial_sequence('break_glass', 'id'))"
INSERT_GLASS = """
INSERT INTO break_glass (id, note_id, staff_id, reason_ciphertext, reason_wrapped_key,
                         reason_kek_id, expires_at)
OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, now() + $7)
"""
NOTIFY = """
INSERT INTO records_notifications (staff_id, kind, note_id, actor_id, break_glass_id)
VALUES ($1, 'break_glass', $2, $3, $4)
"""


async def next_glass_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(NEXT_GLASS_ID))


async def break_glass(conn: asyncpg.Connection, glass_id: int, note_id: int, staff_id: int,
                      author_id: int, reason: Sealed) -> None:
    """Grant ``staff_id`` a bounded read of the note and tell its author; ``reason`` is
    sealed by the caller for ``crypto.GlassId(glass_id, ...)``."""
    await conn.execute(INSERT_GLASS, glass_id, note_id, staff_id, reason.ciphertext,
                       reason.wrapped_key, reason.kek_id, BREAK_GLASS_FOR)
    await conn.execute(NOTIFY, author_id, note_id, staff_id, glass_id)


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


@dataclass(frozen=True)
class SealedNotification:
    """A notification as stored: the break-glass reason still sealed (or, for a row written
    before reasons were sealed, in ``legacy_reason``)."""

    id: int
    kind: str
    note_id: int
    patient_id: int
    actor_name: str
    created_at: datetime
    read: bool
    glass_id: int | None
    reason: Sealed | None
    legacy_reason: str | None


NOTIFICATIONS = """
SELECT n.id, n.kind, n.note_id, no.patient_id, st.full_name AS actor_name, n.created_at,
       n.read_at IS NOT NULL AS read, bg.id AS glass_id, bg.reason AS legacy_reason,
       bg.reason_ciphertext, bg.reason_wrapped_key, bg.reason_kek_id
FROM records_notifications n JOIN staff st ON st.id = n.actor_id
JOIN notes no ON no.id = n.note_id LEFT JOIN break_glass bg ON bg.id = n.break_glass_id
WHERE n.staff_id = $1 ORDER BY n.created_at DESC LIMIT 100
"""
MARK_READ = """
UPDATE records_notifications SET read_at = now() WHERE staff_id = $1 AND read_at IS NULL
"""


async def notifications(conn: asyncpg.Connection | asyncpg.Pool,
                        staff_id: int) -> list[SealedNotification]:
    """Unopened: ``records.service.Records.notifications`` opens the reasons."""
    out = []
    for r in await conn.fetch(NOTIFICATIONS, staff_id):
        sealed = None
        if r["reason_ciphertext"] is not None:
            wrapped = r["reason_wrapped_key"]
            sealed = Sealed(bytes(r["reason_ciphertext"]),
                            bytes(wrapped) if wrapped is not None else None,
                            r["reason_kek_id"])
        out.append(SealedNotification(
            r["id"], r["kind"], r["note_id"], r["patient_id"], r["actor_name"],
            r["created_at"], r["read"], r["glass_id"], sealed, r["legacy_reason"]))
    return out


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
