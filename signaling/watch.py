"""Background duties of one instance: re-check the staff sessions behind open sockets (so a
logout or revocation closes them within a second on every instance), beat the instance's
heart, take over the sockets of dead instances, and purge old relay payloads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import asyncpg

from signaling import errors, presence, relaystore
from signaling.hub import Hub
from signaling.lifecycle import Lifecycle

log = logging.getLogger("casa.signaling.watch")

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
    # Concurrently: one slow close handshake must not hold up the others.
    await asyncio.gather(*(conn.fail(errors.SESSION_ENDED) for conn in ended))
    return len(ended)


async def run(pool: asyncpg.Pool, hub: Hub, life: Lifecycle, idle: timedelta) -> None:
    loop = asyncio.get_running_loop()
    next_beat = next_touch = next_purge = 0.0
    while True:
        try:
            await check_sessions(pool, hub, idle)
            now = loop.time()
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S
                await presence.heartbeat(pool, hub.instance_id)
                reaped = await presence.reap_dead_instances(pool)
                if reaped:
                    await life.reaped(reaped)
            if now >= next_touch:
                next_touch = now + TOUCH_SESSIONS_S
                if hub.sessions:
                    await pool.execute(TOUCH_SESSIONS, list(hub.sessions))
            if now >= next_purge:
                next_purge = now + PURGE_S
                await relaystore.purge_relay(pool)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be briefly away; keep watching
            log.warning("signalling watch failed", extra={"error": type(exc).__name__})
        await asyncio.sleep(SESSION_CHECK_S)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
