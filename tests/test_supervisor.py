"""The supervisor's back-off, with time injected: a server that will not start is retried
after 0.5 s, doubling to 10 s, and health says "restarting" until it is up. (The real kill -9
of a real postmaster is in test_embedded.py.)"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from server import supervisor as sup
from server.background import Background


class StubbornServer:
    """Stands in for the embedded server's start-up only: dead, then refuses ``failures``
    starts before one succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.alive = False
        self.attempts = 0

    def running(self) -> bool:
        return self.alive

    def restart(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise RuntimeError("backends of the dead server still attached")
        self.alive = True


async def test_restarts_back_off_doubling_to_the_maximum_and_health_says_restarting(
        db_url: str) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    assert pool is not None
    server = StubbornServer(failures=7)
    slept: list[float] = []
    states: list[bool] = []
    done = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        states.append(supervisor.restarting)
        if server.alive and seconds == sup.POLL_S:
            done.set()  # back up: end the watch
            await asyncio.Event().wait()
        await asyncio.sleep(0)

    supervisor = sup.EmbeddedSupervisor(server, pool)  # type: ignore[arg-type]
    tasks = Background("test", sleep=fake_sleep)
    try:
        task = supervisor.watch(tasks)
        await asyncio.wait_for(done.wait(), 5)
        backoffs = [s for s in slept if s != sup.POLL_S]
        assert backoffs == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
        assert server.attempts == 8 and supervisor.restarts == 1
        # "restarting" throughout the back-off, and no longer once the server is up.
        assert all(states[1:-1]) and not states[-1] and not supervisor.restarting
        # The pool still works: its connections to the old server were expired, not broken.
        assert await pool.fetchval("SELECT 1") == 1
        assert not task.done()
    finally:
        await tasks.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()
