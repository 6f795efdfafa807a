"""Login rate limits, per account and per client address, counted in PostgreSQL so that
every instance behind a load balancer sees the same count."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

WINDOW = timedelta(minutes=15)
# Five wrong passwords per account per window stops guessing yet forgives a few typos.
MAX_PER_ACCOUNT = 5
# A centre's kiosk network is shared by many staff: allow more per address.
MAX_PER_IP = 30

COUNT = """
SELECT count(*) AS n, min(at) AS oldest FROM login_failures
WHERE scope = $1 AND subject = $2 AND at > now() - $3::interval
"""
INSERT = "INSERT INTO login_failures (scope, subject) VALUES ($1, $2)"
CLEAR = "DELETE FROM login_failures WHERE scope = 'account' AND subject = $1"
PURGE = "DELETE FROM login_failures WHERE at < now() - $1::interval"


async def retry_after(conn: asyncpg.Connection | asyncpg.Pool, email: str, ip: str) -> int:
    """Seconds until a new attempt is allowed, 0 when it is allowed now."""
    wait = 0
    for scope, subject, limit in (("account", email.lower(), MAX_PER_ACCOUNT),
                                  ("ip", ip, MAX_PER_IP)):
        r = await conn.fetchrow(COUNT, scope, subject, WINDOW)
        if r["n"] >= limit:
            remaining = await conn.fetchval("SELECT extract(epoch FROM $1::timestamptz "
                                            "+ $2::interval - now())::int", r["oldest"], WINDOW)
            wait = max(wait, int(remaining) + 1)
    return wait


async def record_failure(conn: asyncpg.Connection | asyncpg.Pool, email: str, ip: str) -> None:
    await conn.execute(INSERT, "account", email.lower())
    await conn.execute(INSERT, "ip", ip)


async def clear_account(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> None:
    await conn.execute(CLEAR, email.lower())


async def purge(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    await conn.execute(PURGE, WINDOW * 4)
