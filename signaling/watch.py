"""Background duties of one instance: close the sockets of staff sessions that ended (a logout
or revocation is announced by the database, migration 0311, and closes that person's sockets
at once on every instance; expiry by time is caught by a sweep), beat the instance's heart,
take over the sockets of dead instances, and purge old relay payloads. Each is a loop of
``server.background`` (logged, backed off, never dying of a failure)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from server.background import Background
from signaling import errors, presence, relaystore
from signaling.conn import PING_INTERVAL_S
from signaling.departures import Departures
from signaling.hub import Hub

# A session reaching its absolute expiry (or its idle limit, which an open socket's touches
# hold off) is noticed within this. Logouts and revocations are announced, not swept for.
SESSION_SWEEP_S = 30.0
# Instances beat every second; INSTANCE_DEAD_S (5 s) without a beat is death.
HEARTBEAT_S = 1.0
# An open call counts as activity for the session's idle timer (a 50-minute session has no
# clicks); written at most this often.
TOUCH_SESSIONS_S = 30.0
PURGE_S = 30.0

# One query for every staff socket of this instance.
LIVE_SESSIONS = """
SELECT token_hash FROM staff_sessions
WHERE token_hash = ANY($1::bytea[]) AND revoked_at IS NULL AND NOT mfa_pending
  AND expires_at > now() AND last_seen_at > now() - $2::interval
"""
TOUCH_SESSIONS = """
UPDATE staff_sessions SET last_seen_at = now()
WHERE token_hash = ANY($1::bytea[]) AND revoked_at IS NULL
  AND last_seen_at < now() - interval '30 seconds'
"""


async def check_sessions(pool: asyncpg.Pool, hub: Hub, idle: timedelta,
                         staff_id: int | None = None) -> int:
    """Close the sockets whose staff session is no longer live (of ``staff_id`` only, when
    given); returns how many."""
    hashes = [h for h, conns in hub.sessions.items()
              if staff_id is None or any(c.staff_id == staff_id for c in conns)]
    if not hashes:
        return 0
    live = {r["token_hash"] for r in await pool.fetch(LIVE_SESSIONS, hashes, idle)}
    ended = [conn for h in hashes if h not in live for conn in hub.sessions.get(h, ())]
    for conn in ended:
        hub.metrics.errors.labels(errors.SESSION_ENDED.code).inc()
        hub.untrack(conn)   # checked once: its close handshake may take a moment
        conn.fail(errors.SESSION_ENDED)
    return len(ended)


class Watch:
    """The instance's periodic duties."""

    def __init__(self, pool: asyncpg.Pool, hub: Hub, departures: Departures, idle: timedelta,
                 background: Background) -> None:
        self.pool = pool
        self.hub = hub
        self.departures = departures
        self.idle = idle
        self.background = background
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        every = self.background.every
        self._tasks = [every(SESSION_SWEEP_S, self.sessions, "session sweep"),
                       every(HEARTBEAT_S, self.heartbeat, "heartbeat"),
                       every(TOUCH_SESSIONS_S, self.touch, "session touch"),
                       every(PURGE_S, self.purge, "relay purge"),
                       every(PING_INTERVAL_S, self.ping, "ping")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def sessions(self) -> None:
        await check_sessions(self.pool, self.hub, self.idle)

    def session_ended(self, staff_id: int) -> None:
        """The database announced that one of this person's sessions ended."""
        self.background.spawn(check_sessions(self.pool, self.hub, self.idle, staff_id),
                              "session check")

    async def heartbeat(self) -> None:
        await presence.heartbeat(self.pool, self.hub.instance_id)
        reaped = await presence.reap_dead_instances(self.pool)
        if reaped:
            await self.departures.reaped(reaped)

    async def touch(self) -> None:
        if self.hub.sessions:
            await self.pool.execute(TOUCH_SESSIONS, list(self.hub.sessions))

    async def ping(self) -> None:
        now = asyncio.get_running_loop().time()
        for conn in list(self.hub.conns):
            conn.heartbeat(now)

    async def purge(self) -> None:
        await relaystore.purge_relay(self.pool)
