"""Work that outlives the code that started it: one-off tasks (a grace expiry, a dropped
socket's bookkeeping) and loops that run for the app's life. One policy for all of them: a
reference is kept until the task ends (the event loop holds only a weak one), a failure is
logged with what was being done, a loop backs off after a failure and never dies of one, and
``close`` cancels whatever is still running."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("casa.background")

# After a failure a loop waits a little longer each time, up to this, before trying again.
MAX_BACKOFF_S = 30.0


class Background:
    """The background tasks of one owner (an app's feature)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run ``coro`` on its own; a failure is logged as ``what`` failing."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, what))
        return task

    def _done(self, task: asyncio.Task[Any], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: %s failed", self.name, what, exc_info=exc)

    def every(self, seconds: float, step: Callable[[], Awaitable[None]], what: str,
              sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> asyncio.Task[Any]:
        """Run ``step`` every ``seconds`` until closed; a failing step is logged (its
        exception's type only: a database error's text may quote data) and retried after a
        growing pause."""

        async def run() -> None:
            failures = 0
            while True:
                try:
                    await step()
                    failures = 0
                    pause = seconds
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    pause = min(MAX_BACKOFF_S, seconds * 2 ** min(failures, 8))
                    log.warning("%s: %s failed", self.name, what,
                                extra={"error": type(exc).__name__, "failures": failures})
                await sleep(pause)

        return self.spawn(run(), what)

    async def close(self) -> None:
        """Cancel every task still running and wait for them."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
