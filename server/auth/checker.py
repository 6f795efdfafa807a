"""Password checks off the event loop, in a bounded pool with a bounded queue in front.

Argon2id costs tens of milliseconds of CPU and 64 MiB per check. Run on the event loop, a
burst of wrong logins froze every WebSocket and health check for as long as the burst lasted.
The checks run in a small pool of worker processes at a lower priority than the server, so the
relay of a live call and the health check do not wait behind a storm of logins. Not threads:
cryptography's Argon2id does release the GIL, but it hands its lanes to OpenSSL's process-wide
thread pool (sized to the CPU count), and two derivations at once in one process wait on each
other for ever; one check at a time per process cannot. Checks beyond the pool wait in a queue
of ``QUEUE_LIMIT``; when that is full, a login is answered 429 at once, before any hashing or
database work, so a storm costs the server almost nothing past its limit.
bench/resilience_logins.py measures the loop's stalls on the loop, in threads and in processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from server.auth import passwords
from server.keys import METRICS

# cryptography already spreads one check's four lanes over the cores (OpenSSL threads), so one
# worker per four cores, and two at least: on two cores, two workers checked 16 passwords in
# 3.3 s with a 14 ms worst loop stall, one worker in 6.4 s with 53 ms (bench/resilience_logins).
WORKERS = max(2, (os.cpu_count() or 1) // passwords.LANES)
# Enough for a centre's morning logins arriving together (each waits < a second); beyond
# this the server is under attack or overload, and waiting longer would help no one.
QUEUE_LIMIT = 16
# Hashing yields the CPU to the server's event loop: a login may wait a little longer, a call's
# relay and the health check do not wait behind a storm of logins.
WORKER_NICENESS = 10
# What a shed login is told: the queue drains in well under a second.
SHED_RETRY_AFTER_S = 1


@dataclass
class CheckMetrics:
    checks: Counter
    shed: Counter
    pending: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> CheckMetrics:
        return cls(
            checks=Counter("casa_auth_checks", "Passwords and codes actually checked",
                           ["kind"], registry=registry),
            shed=Counter("casa_auth_shed", "Logins answered 429 because the password-check "
                         "queue was full", registry=registry),
            pending=Gauge("casa_auth_pending_checks", "Password checks running or queued",
                          registry=registry))


class Overloaded(Exception):
    """The queue of password checks is full: answer 429 now."""


class PasswordChecker:
    """Runs ``passwords.verify_password`` in an executor, at most ``workers + queue_limit``
    checks pending at once."""

    def __init__(self, executor: concurrent.futures.Executor, metrics: CheckMetrics,
                 limit: int = WORKERS + QUEUE_LIMIT) -> None:
        self._executor = executor
        self._metrics = metrics
        self.limit = limit
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A place in the queue, or Overloaded at once. Taken before the attempt is counted
        in the database, so a shed login costs neither a query nor a hash."""
        if self._pending >= self.limit:
            self._metrics.shed.inc()
            raise Overloaded
        self._pending += 1
        self._metrics.pending.set(self._pending)
        try:
            yield
        finally:
            self._pending -= 1
            self._metrics.pending.set(self._pending)

    async def verify(self, password: str, encoded: str) -> bool:
        """Check one password (call inside ``slot``)."""
        self._metrics.checks.labels("password").inc()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, passwords.verify_password, password,
                                          encoded)

    def count(self, kind: str) -> None:
        """Count a check of another kind (second factor, join code) in the same metric."""
        self._metrics.checks.labels(kind).inc()


CHECKER = web.AppKey("password_checker", PasswordChecker)
ExecutorFactory = Callable[[int], concurrent.futures.Executor]


def _lower_priority() -> None:
    os.nice(WORKER_NICENESS)


def process_pool(workers: int) -> concurrent.futures.Executor:
    # Spawned, not forked: a fork would copy the server's event loop, sockets and OpenSSL state.
    return concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority)


def setup(app: web.Application, executor: ExecutorFactory = process_pool,
          shared: concurrent.futures.Executor | None = None) -> None:
    """The app's checker, over a pool of its own (``executor``), or over ``shared``, an
    executor its caller owns and shuts down (a test session's, so that each test app does not
    spawn worker processes of its own)."""
    metrics = CheckMetrics.create(app[METRICS])

    async def pool(app: web.Application) -> AsyncIterator[None]:
        ex = shared if shared is not None else executor(WORKERS)
        app[CHECKER] = PasswordChecker(ex, metrics)
        yield
        if shared is None:
            ex.shutdown(wait=True, cancel_futures=True)

    app.cleanup_ctx.append(pool)
