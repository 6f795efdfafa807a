"""One WebSocket of this instance: who is on it, its rate-limit and error-budget counters, and
how it is closed (politely, or cut off when abusive). Kept small: thousands are open at once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from signaling import errors

if TYPE_CHECKING:
    from signaling.rooms import Room

# A well-behaved client answers a close frame at once; waiting longer only reads more input.
CLOSE_HANDSHAKE_S = 5.0
# A flooder's close: its transport is closed at once; this bounds the wait for aiohttp.
ABUSIVE_CLOSE_S = 0.05


class Conn:
    """One WebSocket. Kept small: thousands are open at once."""

    __slots__ = ("close_done", "closed", "err_count", "err_window", "kind", "lang", "last",
                 "participant", "peer_id", "replaced", "room", "session_hash", "staff_id",
                 "throttle_s", "throttle_window", "tokens", "transport", "waiting", "warned",
                 "ws")

    def __init__(self, ws: web.WebSocketResponse,
                 transport: asyncio.BaseTransport | None = None) -> None:
        self.ws = ws
        self.transport = transport
        self.kind = ""                 # patient, clinician, guest, dashboard, probe
        self.peer_id = ""
        self.participant = ""
        self.room: Room | None = None
        self.staff_id: int | None = None
        self.session_hash: bytes | None = None
        self.lang = "it"
        self.closed = False
        # Set once a close started by another task (logout, replace, end) has finished, so the
        # socket's own handler does not return (and drop the connection) in the middle of it.
        self.close_done: asyncio.Event | None = None
        self.replaced = False
        self.tokens = 0.0
        self.last = 0.0
        self.throttle_s = 0.0
        self.throttle_window = 0.0
        self.warned = False
        self.err_count = 0
        self.err_window = 0.0
        # Dashboards only: waiting entries by consultation id.
        self.waiting: dict[int, list[dict[str, Any]]] | None = None

    @property
    def in_call(self) -> bool:
        room = self.room
        if room is None:
            return False
        m = room.members.get(self.peer_id)
        return m is not None and m.status == "in_call"

    async def send(self, text: str) -> None:
        if self.closed:
            return
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            self.closed = True

    async def fail(self, kind: errors.SignalError, msg_id: str | None = None,
                   details: dict[str, Any] | None = None) -> None:
        """Send a catalogued error; close the socket when it is fatal."""
        await self.send(errors.error_frame(kind, msg_id, details))
        if kind in errors.CUT_OFF:
            await self.cut(kind.close_code)
        elif kind.fatal:
            await self.close(kind.close_code)

    async def cut(self, code: int) -> None:
        """Close an abusive peer without a close handshake: aiohttp would go on reading (and
        parsing) its flood while waiting for the peer's close frame, in a loop that need not
        yield while input is queued. Our close frame is written, then the transport closed."""
        self.closed = True
        closing = asyncio.ensure_future(self.ws.close(code=code))
        await asyncio.sleep(0)   # ws.close writes the close frame before its first wait
        if self.transport is not None:
            self.transport.close()   # flushes what is written; reads nothing more
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closing, ABUSIVE_CLOSE_S)

    async def close(self, code: int = 1000, within: float = CLOSE_HANDSHAKE_S) -> None:
        """Close, waiting at most ``within`` for the peer's close frame: aiohttp reads (and
        parses) everything the peer still sends until then, which a flooder would abuse."""
        self.closed = True
        done = self.close_done = asyncio.Event()
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code=code), within)
        finally:
            done.set()
