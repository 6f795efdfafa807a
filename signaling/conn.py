"""One WebSocket of this instance: who is on it, its rate-limit and error-budget counters, and
its way out.

Nothing sends to a socket by awaiting it. ``send`` puts the frame on the socket's own bounded
queue and returns; one writer task per socket drains it, in order, with a deadline on every
write that has to wait for the peer. A peer that does not take what it is sent (its queue
overflows, or one write misses the deadline) is disconnected with ``too_slow`` and nobody
else ever waits for it: a relay, a fan-out to a waiting room or the bus consumer only append.

Kept small: thousands are open at once (the writer task exists once something was sent)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import WSMsgType, web

from signaling import errors
from signaling.metrics import SignalMetrics
from signaling.presence import Member
from signaling.states import Kind, Place

log = logging.getLogger("casa.signaling.conn")

# A well-behaved client answers a close frame at once; waiting longer only reads more input.
CLOSE_HANDSHAKE_S = 5.0
# A flooder's close: its transport is closed at once; this bounds the wait for aiohttp.
ABUSIVE_CLOSE_S = 0.05
# What one socket may have queued: a few dozen offers, far more than a call ever has in flight
# (an offer is ~10 KiB, a dashboard's list a few KiB and replaced by the next one).
MAX_QUEUE_BYTES = 1024 * 1024
MAX_QUEUE_FRAMES = 1000
# One write waiting for the peer to read: a phone on a poor uplink takes a second or two; ten
# without reading a byte is a dead uplink.
WRITE_DEADLINE_S = 10.0
# A real client sends hello at once; an idle unauthenticated socket only costs us memory.
# The engine holds the value in use (``Engine.hello_timeout_s``), so tests can set it.
HELLO_TIMEOUT_S = 2.0
# WebSocket pings: every PING_INTERVAL_S each socket is pinged, and one that has not answered
# PONG_WAIT_S after is dead (one loop for all sockets, ``Watch``, instead of a timer each).
PING_INTERVAL_S = 10.0
PONG_WAIT_S = 5.0
# A peer given up on (too slow, or abusive) may not read its close frame either: its transport
# is aborted after this. Its place's grace begins at once, but a phone whose uplink comes
# back within these seconds still reads why it was disconnected.
SLOW_ABORT_S = 15.0


class HasMembers(Protocol):
    """What a socket needs of its room (``signaling.rooms.Room``, which imports this module:
    the room's type is a parameter here rather than an import)."""

    @property
    def members(self) -> Mapping[str, Member]: ...


RoomT = TypeVar("RoomT", bound=HasMembers)


class Conn(Generic[RoomT]):
    """One WebSocket (``Socket``, in ``signaling.rooms``: a socket in a ``Room``)."""

    __slots__ = ("_bytes", "_closing", "_given_up", "_inflight", "_queue", "_wake", "_writer",
                 "close_done", "closed", "err_count", "err_window", "kind", "lang", "last",
                 "metrics", "on_gone", "participant", "peer_id", "pong_due", "ready", "replaced",
                 "room", "session_hash", "staff_id", "throttle_s", "throttle_window", "tokens",
                 "transport", "waiting", "warned", "write_deadline", "ws")

    def __init__(self, ws: web.WebSocketResponse,
                 transport: asyncio.Transport | None = None,
                 write_deadline: float = WRITE_DEADLINE_S,
                 metrics: SignalMetrics | None = None) -> None:
        self.ws = ws
        self.metrics = metrics
        self.transport = transport
        self.write_deadline = write_deadline
        self.kind = Kind.NONE
        self.peer_id = ""
        self.participant = ""
        self.room: RoomT | None = None
        self.staff_id: int | None = None
        self.session_hash: bytes | None = None
        self.lang = "it"
        # No more frames are accepted (closing, closed, or given up on).
        self.closed = False
        # Set once the close started on this socket (by it or by another task) has finished,
        # so its handler does not return (and drop the connection) in the middle of it.
        self.close_done: asyncio.Event | None = None
        self.replaced = False
        self.tokens = 0.0
        self.last = 0.0
        self.throttle_s = 0.0
        self.throttle_window = 0.0
        self.warned = False
        self.err_count = 0
        self.err_window = 0.0
        # Dashboards only: false until its welcome is out (its list is sent after it).
        self.ready = True
        # Dashboards only: waiting entries by consultation id.
        self.waiting: dict[int, list[Any]] | None = None
        self._queue: deque[bytes] = deque()
        self._bytes = 0
        self._closing: int | None = None
        self._given_up = False
        self._wake: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        # The socket's handler (``signaling.ws``), which reads its frames.
        # Told when this socket is given up on (too slow, no answer): its drop is recorded at
        # once, while its handler still reads what the peer sends until the close completes.
        self.on_gone: Callable[[Any], None] | None = None
        # When the pong to the last ping is due (loop time; 0: none outstanding; negative:
        # not pinged yet, its handler is still busy with hello and reads no pong).
        self.pong_due = -1.0
        # A write started in ``send`` that had to wait: (its coroutine, what it waits for).
        self._inflight: tuple[Coroutine[Any, Any, None], Any] | None = None

    @property
    def in_call(self) -> bool:
        room = self.room
        if room is None:
            return False
        m = room.members.get(self.peer_id)
        return m is not None and m.status == Place.IN_CALL

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    # --- sending ---

    def send(self, data: bytes) -> None:
        """Queue a text frame (UTF-8 JSON) for this socket; never waits."""
        if self.closed:
            return
        if not self._queue and self._inflight is None and self._idle():
            # Nothing is queued or being written and the transport has room: start the write
            # here. aiohttp's send only waits when the peer is behind (or to compress a large
            # frame); when it does not, the frame is on the transport now, without a task
            # switch. When it does, the writer task finishes it (``_resume``).
            coro = self.ws.send_frame(data, WSMsgType.TEXT)
            try:
                waiting = coro.send(None)
            except StopIteration:
                return
            except (ConnectionError, RuntimeError):
                self.closed = True
                return
            self._inflight = (coro, waiting)
            self._kick()
            return
        self._queue.append(data)
        self._bytes += len(data)
        if self._bytes > MAX_QUEUE_BYTES or len(self._queue) > MAX_QUEUE_FRAMES:
            self.give_up(errors.TOO_SLOW)
            return
        self._kick()

    def heartbeat(self, now: float) -> None:
        """Ping the peer, or give it up when it did not answer the last ping in time (as
        ``too_slow`` when frames wait for it: not reading is why it did not answer)."""
        if self.closed or self.pong_due < 0:
            return
        if self.pong_due:
            if now > self.pong_due:
                backlog = bool(self._queue) or self._inflight is not None or (
                    self.transport is not None and self.transport.get_write_buffer_size() > 0)
                self.give_up(errors.TOO_SLOW if backlog else errors.NO_ANSWER)
            return
        if self._inflight is not None or self._queue or not self._idle():
            return   # busy writing: the write deadline watches it; pinged next time
        self.pong_due = now + PONG_WAIT_S
        with contextlib.suppress(StopIteration, ConnectionError, RuntimeError):
            # A ping is small and never compressed: written at once, or not at all.
            self.ws.ping().send(None)

    def _idle(self) -> bool:
        """The writer is waiting for frames (or was never needed), and the transport holds
        nothing unsent."""
        if self._writer is not None and self._wake is None:
            return False
        transport = self.transport
        return transport is None or transport.get_write_buffer_size() == 0

    def _kick(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)
        elif self._writer is None:
            self._writer = asyncio.ensure_future(self._write_loop())

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        ws, queue = self.ws, self._queue
        try:
            while True:
                inflight = self._inflight
                if inflight is not None:
                    async with asyncio.timeout(self.write_deadline):
                        await _resume(*inflight)
                    self._inflight = None
                while queue:
                    data = queue.popleft()
                    self._bytes -= len(data)
                    transport = self.transport
                    if transport is None or transport.get_write_buffer_size() == 0:
                        # Nothing is waiting to go out: this write cannot wait for the peer.
                        await ws.send_frame(data, WSMsgType.TEXT)
                    else:
                        async with asyncio.timeout(self.write_deadline):
                            await ws.send_frame(data, WSMsgType.TEXT)
                if self._closing is not None:
                    await self._close_now(self._closing)
                    return
                self._wake = wake = loop.create_future()
                await wake
        except TimeoutError:
            self.give_up(errors.TOO_SLOW)
        except (ConnectionError, RuntimeError):
            self.closed = True
            self._queue.clear()
            self._bytes = 0
            if self.close_done is not None:
                self.close_done.set()

    # --- closing ---

    def fail(self, kind: errors.SignalError, msg_id: str | None = None,
             details: dict[str, Any] | None = None) -> None:
        """Send a catalogued error; close the socket after it when it is fatal."""
        if kind in errors.CUT_OFF:
            self.give_up(kind, close_within=ABUSIVE_CLOSE_S)
            return
        self.send(errors.error_frame(kind, msg_id, details))
        if kind.fatal:
            self.close(kind.close_code)

    def close(self, code: int = 1000) -> None:
        """Close once everything queued before is written (the close handshake bounded by
        ``CLOSE_HANDSHAKE_S``). ``wait_closed`` waits for it."""
        if self.closed:
            return
        self.closed = True
        self._closing = code
        self.close_done = asyncio.Event()
        self._kick()

    def detach(self) -> None:
        """The socket's handler is ending: nothing more will be written (an idle writer would
        otherwise wait for frames forever)."""
        self.closed = True
        self._queue.clear()
        self._bytes = 0
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            writer.cancel()

    async def wait_closed(self, within: float = CLOSE_HANDSHAKE_S + 1) -> None:
        done = self.close_done
        if done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), within)

    async def _close_now(self, code: int) -> None:
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code=code), CLOSE_HANDSHAKE_S)
        finally:
            if self.close_done is not None:
                self.close_done.set()

    def give_up(self, kind: errors.SignalError, close_within: float = CLOSE_HANDSHAKE_S) -> None:
        """Disconnect at once, dropping what is queued: the catalogued error and the close
        frame are written straight to the transport (behind whatever it already holds), the
        transport is closed (it reads nothing more: a flooder's input is not parsed) and
        aborted after ``close_within`` if the peer does not take them."""
        if self._given_up:
            return
        self._given_up = True
        if kind == errors.TOO_SLOW:
            # Fatal errors of the loop are counted there; this one starts here.
            if self.metrics is not None:
                self.metrics.errors.labels(kind.code).inc()
            log.info("socket too slow, disconnected", extra={"peer_id": self.peer_id})
        self.closed = True
        self._closing = kind.close_code
        self._queue.clear()
        self._bytes = 0
        done = self.close_done = self.close_done or asyncio.Event()
        writer, self._writer = self._writer, None
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
        self._wake = None
        task = asyncio.ensure_future(self._farewell(kind, close_within, done))
        # The farewell runs on its own; its result is of no interest.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _farewell(self, kind: errors.SignalError, within: float,
                        done: asyncio.Event) -> None:
        ws, transport = self.ws, self.transport
        try:
            # Each write happens before the coroutine's first wait, so both frames are in the
            # transport's buffer once these two tasks have started.
            sending = asyncio.ensure_future(
                ws.send_frame(errors.error_frame(kind), WSMsgType.TEXT))
            await asyncio.sleep(0)
            closing: asyncio.Future[Any]
            if kind in errors.CUT_OFF:
                closing = asyncio.ensure_future(ws.close(code=kind.close_code))
                await asyncio.sleep(0)
                if transport is not None:
                    transport.close()   # flushes what is written; reads no more of a flood
            else:
                # The close frame alone: the socket's handler goes on reading (and dropping)
                # what the peer still sends, its pongs and then its own close, so the
                # connection ends cleanly once the peer has read everything (a socket closed
                # with unread input is reset, and the peer would lose the reason).
                closing = asyncio.ensure_future(ws.send_frame(
                    struct.pack("!H", kind.close_code), WSMsgType.CLOSE))
                await asyncio.sleep(0)
                if self.on_gone is not None:
                    self.on_gone(self)   # its place is marked away now, not at the close
            if transport is not None:
                # A peer that never reads would keep the unflushed transport open for good.
                asyncio.get_running_loop().call_later(SLOW_ABORT_S, _abort, transport)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(sending, closing, return_exceptions=True),
                                       within)
        finally:
            done.set()


async def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Finish a coroutine that was started by hand and is waiting for ``waiting`` (what it
    yielded: a future, or None for a bare yield), resuming it as an asyncio task would. Being
    cancelled (the write deadline) closes it."""
    while True:
        if waiting is None:
            await asyncio.sleep(0)
        else:
            # Waiting without taking the outcome (the coroutine takes it when resumed).
            done = asyncio.ensure_future(waiting)
            try:
                await asyncio.wait((done,))
            except asyncio.CancelledError:
                coro.close()
                raise
        try:
            waiting = coro.send(None)
        except StopIteration:
            return


def _abort(transport: asyncio.Transport) -> None:
    """Abort a transport that is still open (asyncio's abort fails on one already gone)."""
    if not transport.is_closing() or transport.get_write_buffer_size() > 0:
        with contextlib.suppress(AttributeError, OSError):
            transport.abort()
