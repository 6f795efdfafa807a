"""Keeps the embedded PostgreSQL alive while Casa serves.

A watcher notices the postmaster is gone within ``POLL_S`` and starts it again, waiting
``BACKOFF_FIRST_S`` doubled up to ``BACKOFF_MAX_S`` between attempts (a dead server's
backends may hold its memory for a moment). Meanwhile ``restarting`` is true, which /healthz
reports. Connections to the dead server are dropped from the pool, which opens new ones.
Nothing committed is lost: PostgreSQL replays its write-ahead log on start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from server.embedded import EmbeddedDatabase

log = logging.getLogger("casa.db")

# How often the postmaster is looked at: a dead server is noticed within this.
POLL_S = 0.2
# A failed start is retried after this, doubled each time up to the maximum.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0


class EmbeddedSupervisor:
    def __init__(self, embedded: EmbeddedDatabase, pool: asyncpg.Pool,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._embedded = embedded
        self._pool = pool
        self._sleep = sleep
        self.restarting = False
        self.restarts = 0

    async def run(self) -> None:
        while True:
            await self._sleep(POLL_S)
            if not self._embedded.running():
                await self._bring_back()

    async def _bring_back(self) -> None:
        self.restarting = True
        started = time.monotonic()
        log.error("embedded PostgreSQL died; restarting it")
        delay = BACKOFF_FIRST_S
        while True:
            try:
                await asyncio.to_thread(self._embedded.restart)
                break
            except Exception as exc:  # any failure to start is retried: the server is needed
                log.warning("embedded PostgreSQL did not start (%s); retrying in %.1f s",
                            type(exc).__name__, delay)
                await self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        await self._pool.expire_connections()
        self.restarts += 1
        self.restarting = False
        log.warning("embedded PostgreSQL back after %.2f s", time.monotonic() - started)
