"""Background duties of one instance: re-check the staff sessions behind open sockets (so a
logout or revocation closes them within a second on every instance), beat the instance's
heart, take over the sockets of dead instances, and purge old relay payloads. Each is a loop
of ``server.background`` (logged, backed off, never dying of a failure)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from server.background import Background
from signaling import errors, presence, relaystore
from signaling.departures import Departures
from signaling.hub import Hub

# Twice a second, so a revoked session's sockets close well within a second.
SESSION_CHECK_S = 0.5
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


async def check_sessions(pool: asyncpg.Pool, hub: Hub, idle: timedelta) -> int:
    """Close the sockets whose staff session is no longer live; returns how many."""
    hashes = list(hub.sessions)
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
        self._tasks = [every(SESSION_CHECK_S, self.sessions, "session check"),
                       every(HEARTBEAT_S, self.heartbeat, "heartbeat"),
                       every(TOUCH_SESSIONS_S, self.touch, "session touch"),
                       every(PURGE_S, self.purge, "relay purge")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def sessions(self) -> None:
        await check_sessions(self.pool, self.hub, self.idle)

    async def heartbeat(self) -> None:
        await presence.heartbeat(self.pool, self.hub.instance_id)
        reaped = await presence.reap_dead_instances(self.pool)
        if reaped:
            await self.departures.reaped(reaped)

    async def touch(self) -> None:
        if self.hub.sessions:
            await self.pool.execute(TOUCH_SESSIONS, list(self.hub.sessions))

    async def purge(self) -> None:
        await relaystore.purge_relay(self.pool)
