"""Work that outlives the code that started it: one-off tasks (a grace expiry, a dropped
socket's bookkeeping, a health probe) and loops that run for the app's life (signalling's
duties, the outbox, the login-throttle purge, the audit anchor, the embedded database's
supervisor). One policy for all of them:

- a reference is kept until the task ends (the event loop holds only a weak one);
- a failure is logged with what was being done and the exception's type (server.logs keeps
  the type only: a database error's text may quote personal data);
- a loop backs off after a failure (the pause doubles from ``backoff_first`` up to
  ``backoff_max``) and never dies of one; only cancellation ends it;
- ``close`` cancels whatever is still running and waits for it.

Time is injected (``sleep``), so tests run loops without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("casa.background")

# After a failure a loop waits a little longer each time, up to this, before trying again.
MAX_BACKOFF_S = 30.0

Sleep = Callable[[float], Awaitable[None]]


class Background:
    """The background tasks of one owner (an app's feature)."""

    def __init__(self, name: str, *, sleep: Sleep = asyncio.sleep) -> None:
        self.name = name
        self.sleep = sleep
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
            log.error("%s: %s failed", self.name, what, exc_info=exc,
                      extra={"error": type(exc).__name__})

    def every(self, seconds: float, step: Callable[[], Awaitable[None]], what: str, *,
              wait: Sleep | None = None, first_after: float | None = None,
              backoff_first: float | None = None,
              backoff_max: float = MAX_BACKOFF_S) -> asyncio.Task[Any]:
        """Run ``step`` every ``seconds`` until closed (the first time at once, or after
        ``first_after``). Between steps ``wait(pause)`` is awaited (``sleep`` unless given: a
        loop woken early by an event passes its own). A failing step is logged and retried
        after ``backoff_first`` (twice ``seconds`` unless given), doubled after each further
        failure up to ``backoff_max``."""
        pause_for = wait or self.sleep
        first_backoff = seconds * 2 if backoff_first is None else backoff_first

        async def run() -> None:
            failures = 0
            if first_after is not None:
                await pause_for(first_after)
            while True:
                try:
                    await step()
                    failures = 0
                    pause = seconds
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    pause = min(backoff_max, first_backoff * 2 ** min(failures - 1, 16))
                    log.warning("%s: %s failed", self.name, what,
                                extra={"error": type(exc).__name__, "failures": failures,
                                       "retry_in_s": round(pause, 3)})
                await pause_for(pause)

        return self.spawn(run(), what)

    async def close(self) -> None:
        """Cancel every task still running and wait for them."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


@contextlib.asynccontextmanager
async def running(name: str) -> AsyncIterator[Background]:
    """A Background closed when the block ends (an app's cleanup_ctx)."""
    background = Background(name)
    try:
        yield background
    finally:
        await background.close()
