"""In-process coalescing of identical work that is in flight at the same moment.

A storm of requests (500 attempts at one slot, all with the same bearer token) would otherwise
send 500 identical token lookups and 500 clash checks to PostgreSQL, and queue behind the pool
for them. With ``Flights``, the first caller for a key does the work and the callers that
arrive while it runs wait for its outcome instead. Nothing is cached: once the work is done the
key is forgotten, so a caller that arrives afterwards does the work again and sees the database
as it is then. A follower's answer is therefore never older than its own request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _LeaderGone(Exception):
    """The leader was cancelled before it had an outcome: the follower works for itself."""


class Flights(Generic[K, V]):
    """Work in flight by key. ``run(key, work)`` returns ``(outcome, led)``: ``led`` is True for
    the caller that did the work. A follower receives the leader's result, or its exception
    re-raised; when the leader was cancelled, the follower does the work itself."""

    def __init__(self) -> None:
        # key -> the followers' futures; each follower owns its own, so cancelling one
        # follower touches neither the leader nor the other followers.
        self._flights: dict[K, list[asyncio.Future[V]]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        followers = self._flights.get(key)
        if followers is not None:
            mine: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            followers.append(mine)
            try:
                return await mine, False
            except _LeaderGone:
                pass
            return await work(), True
        followers = self._flights[key] = []
        try:
            result = await work()
        except asyncio.CancelledError:
            self._release(key, followers, None, leader_gone=True)
            raise
        except BaseException as exc:
            self._release(key, followers, exc)
            raise
        self._release(key, followers, None, result=result)
        return result, True

    def _release(self, key: K, followers: list[asyncio.Future[V]], exc: BaseException | None,
                 *, result: V | None = None, leader_gone: bool = False) -> None:
        del self._flights[key]
        for f in followers:
            if f.done():
                continue  # that follower was cancelled
            if leader_gone:
                f.set_exception(_LeaderGone())
            elif exc is not None:
                f.set_exception(exc)
            else:
                f.set_result(result)  # type: ignore[arg-type]
