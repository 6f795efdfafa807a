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

import asyncpg

from server.background import Background
from server.embedded import EmbeddedDatabase

log = logging.getLogger("casa.db")

# How often the postmaster is looked at: a dead server is noticed within this.
POLL_S = 0.2
# A failed start is retried after this, doubled each time up to the maximum.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0


class EmbeddedSupervisor:
    def __init__(self, embedded: EmbeddedDatabase, pool: asyncpg.Pool) -> None:
        self._embedded = embedded
        self._pool = pool
        self.restarting = False
        self.restarts = 0
        self._down_since = 0.0

    def watch(self, tasks: Background) -> asyncio.Task[None]:
        """Look at the postmaster every ``POLL_S`` in ``tasks``; a failed start is retried by
        its back-off (``BACKOFF_FIRST_S`` doubling to ``BACKOFF_MAX_S``)."""
        return tasks.every(POLL_S, self.check, "embedded PostgreSQL start",
                           first_after=POLL_S, backoff_first=BACKOFF_FIRST_S,
                           backoff_max=BACKOFF_MAX_S)

    async def check(self) -> None:
        """Start the server again if it is gone (raises when it will not start)."""
        if not self.restarting:
            if self._embedded.running():
                return
            self.restarting = True
            self._down_since = time.monotonic()
            log.error("embedded PostgreSQL died; restarting it")
        await asyncio.to_thread(self._embedded.restart)
        await self._pool.expire_connections()
        self.restarts += 1
        self.restarting = False
        log.warning("embedded PostgreSQL back after %.2f s", time.monotonic() - self._down_since)
