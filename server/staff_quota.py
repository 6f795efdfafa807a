"""Per-staff counters over fixed windows, kept in PostgreSQL so every instance sees the same
count. Taking one is a single upsert that returns the new count: two racing requests can never
both read "one left" (no count-then-insert)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

TAKE = """
INSERT INTO staff_quotas AS q (staff_id, kind, window_start, used)
VALUES ($1, $2, to_timestamp(floor(extract(epoch FROM now()) / $3) * $3), 1)
ON CONFLICT (staff_id, kind, window_start) DO UPDATE SET used = q.used + 1
RETURNING used
"""
# Old windows of the same staff member and kind, dropped when a new window starts.
FORGET_OLD = """
DELETE FROM staff_quotas
WHERE staff_id = $1 AND kind = $2 AND window_start < now() - make_interval(secs => $3)
"""


async def take(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int, kind: str,
               window: timedelta) -> int:
    """Count one ``kind`` action of ``staff_id`` in the current window; the count so far,
    this one included (the caller compares it with its limit)."""
    seconds = window.total_seconds()
    used: int = await conn.fetchval(TAKE, staff_id, kind, seconds)
    if used == 1:
        await conn.execute(FORGET_OLD, staff_id, kind, seconds)
    return used
