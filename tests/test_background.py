"""The one policy of background work (server.background), with time injected: a failure is
logged with its type and never its text, a loop backs off and never dies of a failure, and
``close`` ends everything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest

from server import background
from server.background import Background
from server.logs import JsonFormatter

SECRET = "Rossi Maria, RSSMRA85T10A562S"


class Clock:
    """An injected sleep: records each pause, returns at once, and stops the loop (by
    blocking forever) after ``until`` pauses."""

    def __init__(self, until: int) -> None:
        self.pauses: list[float] = []
        self.until = until
        self.reached = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if len(self.pauses) >= self.until:
            self.reached.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)


def failing_then(outcomes: Iterator[bool]) -> tuple[list[int], Callable[[], Awaitable[None]]]:
    """A step that fails (raising an error whose text holds personal data) or succeeds as
    ``outcomes`` says; returns the list of calls and the step."""
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)
        if not next(outcomes):
            raise RuntimeError(f"duplicate key value violates unique constraint: {SECRET}")

    return calls, step


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="casa.background")
    return caplog


async def test_a_failing_loop_backs_off_doubling_logs_the_type_and_recovers(
        logs: pytest.LogCaptureFixture) -> None:
    clock = Clock(until=8)
    tasks = Background("test", sleep=clock.sleep)
    # Four failures, a success, two failures, a success.
    calls, step = failing_then(iter([False] * 4 + [True] + [False] * 2 + [True] * 10))
    task = tasks.every(1.0, step, "sweeping", backoff_max=5.0)
    await asyncio.wait_for(clock.reached.wait(), 5)
    assert clock.pauses == [2.0, 4.0, 5.0, 5.0, 1.0, 2.0, 4.0, 1.0]
    assert len(calls) == 8 and not task.done()
    failures = [r for r in logs.records if r.levelno == logging.WARNING]
    assert [(r.getMessage(), r.error, r.failures) for r in failures][:5] == [  # type: ignore[attr-defined]
        ("test: sweeping failed", "RuntimeError", n) for n in (1, 2, 3, 4)] + [
        ("test: sweeping failed", "RuntimeError", 1)]
    formatted = "".join(JsonFormatter().format(r) for r in logs.records)
    assert SECRET not in formatted and "RuntimeError" in formatted
    await tasks.close()
    assert task.cancelled()


async def test_a_loop_waits_first_when_asked_and_with_its_own_wait() -> None:
    clock = Clock(until=3)
    woken: list[float] = []

    async def wait(seconds: float) -> None:
        woken.append(seconds)
        await clock.sleep(seconds)

    tasks = Background("test", sleep=clock.sleep)
    calls, step = failing_then(iter([True] * 10))
    tasks.every(30.0, step, "sending", wait=wait, first_after=30.0)
    await asyncio.wait_for(clock.reached.wait(), 5)
    assert woken == [30.0, 30.0, 30.0] and len(calls) == 2
    await tasks.close()


async def test_a_failed_one_off_task_is_logged_without_its_text(
        logs: pytest.LogCaptureFixture) -> None:
    tasks = Background("signaling")

    async def expire() -> None:
        raise LookupError(SECRET)

    task = tasks.spawn(expire(), "grace expiry")
    with pytest.raises(LookupError):
        await task
    await asyncio.sleep(0)
    [record] = [r for r in logs.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "signaling: grace expiry failed"
    assert record.error == "LookupError"  # type: ignore[attr-defined]
    formatted = JsonFormatter().format(record)
    assert SECRET not in formatted and "LookupError" in formatted


async def test_a_cancelled_task_is_not_a_failure_and_close_ends_everything(
        logs: pytest.LogCaptureFixture) -> None:
    async with background.running("test") as tasks:
        never = tasks.spawn(asyncio.Event().wait(), "waiting")
        async def forever() -> None:
            await asyncio.Event().wait()

        loop = tasks.every(3600, forever, "looping")
        await asyncio.sleep(0)
    assert never.cancelled() and loop.cancelled()
    assert [r for r in logs.records if r.levelno >= logging.WARNING] == []
