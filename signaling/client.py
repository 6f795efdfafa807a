"""A small signalling client: one /ws connection, JSON in and out, a timeout on every
receive, and ``expect`` that keeps the messages it skips. Used by ``casa probe``, the tests
and the benchmarks."""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from typing import Any

import aiohttp


class SignalClient:
    """One /ws connection: JSON in and out, with a within on every receive."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 own_session: bool) -> None:
        self.session = session
        self.ws = ws
        self._own = own_session
        self.backlog: deque[dict[str, Any]] = deque()
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def connect(cls, url: str, *, cookies: dict[str, str] | None = None,
                      headers: dict[str, str] | None = None,
                      session: aiohttp.ClientSession | None = None) -> SignalClient:
        own = session is None
        if session is None:
            session = aiohttp.ClientSession(cookies=cookies)
        try:
            ws = await session.ws_connect(url, headers=headers, heartbeat=None,
                                          max_msg_size=1 << 20)
        except Exception:
            if own:
                await session.close()
            raise
        return cls(session, ws, own)

    async def send(self, kind: str, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"type": kind, **fields}))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        """The next message (backlog first); raises TimeoutError or ConnectionError."""
        if self.backlog:
            return self.backlog.popleft()
        msg = await self.ws.receive(timeout=within)
        if msg.type == aiohttp.WSMsgType.TEXT:
            data: dict[str, Any] = json.loads(msg.data)
            return data
        raise ConnectionError(f"socket closed ({self.ws.close_code})")

    async def expect(self, kind: str, within: float = 5.0) -> dict[str, Any]:
        """Wait for a message of this type; others are kept in the backlog, in order."""
        deadline = time.monotonic() + within
        skipped: list[dict[str, Any]] = []
        try:
            for i, queued in enumerate(self.backlog):
                if queued.get("type") == kind:
                    del self.backlog[i]
                    return queued
            pending = list(self.backlog)
            self.backlog.clear()
            skipped.extend(pending)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} within {within} s")
                msg = await self.ws.receive(timeout=left)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket closed ({self.ws.close_code}) waiting {kind}")
                m: dict[str, Any] = json.loads(msg.data)
                if m.get("type") == kind:
                    return m
                skipped.append(m)
        finally:
            self.backlog.extendleft(reversed(skipped))

    async def hello(self, **fields: Any) -> dict[str, Any]:
        """Send hello (version 1 unless given) and return the reply (welcome or error)."""
        within = float(fields.pop("within", 5.0))
        await self.send("hello", **{"version": 1, **fields})
        m = await self.recv(within)
        if m.get("type") == "welcome":
            self.welcome = m
        return m

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._own:
            await self.session.close()
