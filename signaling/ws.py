"""The ``/ws`` endpoint and the per-connection loop: Origin, a cap on sockets without hello per
address, hello within 2 s, frame size, one rate limit for every frame (text, binary, ping,
pong), error budget, validation at the edge and dispatch to small named handlers.

Nothing a client sends can crash the loop: every failure is a catalogued ``error``; fatal ones
close only this socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from aiohttp import WSMessage, WSMsgType, web

from server.errors import api_error
from server.keys import CONFIG
from server.request_info import client_ip, own_origin
from signaling import errors
from signaling.auth import identify
from signaling.conn import Conn
from signaling.engine import Engine
from signaling.errors import ProtocolError
from signaling.hub import Hub
from signaling.keys import ENGINE
from signaling.messages import PROTOCOL_VERSION, Hello
from signaling.rooms import Socket
from signaling.wire import parse, reply_id

log = logging.getLogger("casa.signaling.ws")

# An SDP is ~10 KiB; a frame this large is abuse, not signalling.
MAX_MESSAGE_BYTES = 64 * 1024
# Sustained frames per second and burst per socket, whatever their type: an offer, an answer
# and a trickle of 50 candidates fit in the burst; 200/s leaves room for a busy call, not for a
# flood. A larger burst lets every reconnecting flooder stall the loop for longer
# (bench/signaling_flood.py).
RATE_PER_S = 200.0
RATE_BURST = 100.0
# A socket throttled this long within FLOOD_WINDOW_S is disconnected.
FLOOD_LIMIT_S = 2.0
FLOOD_WINDOW_S = 10.0
# Invalid messages tolerated within ERROR_WINDOW_S before the socket is closed.
ERROR_BUDGET = 50
ERROR_WINDOW_S = 10.0
# Frames that end the socket's reading: the peer closed, or the transport failed.
_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})

def origin_allowed(request: web.Request) -> bool:
    """A browser always sends Origin on a WebSocket upgrade; it must be ours. Non-browser
    clients (probe, kiosk agents) send none."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    config = request.app[CONFIG]
    allowed = {own_origin(request)}
    if config.public_origin:
        allowed.add(config.public_origin)
    return origin.rstrip("/") in allowed


async def ws_view(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    engine = request.app[ENGINE]
    hub = engine.hub
    address = client_ip(request)
    if not hub.pending.enter(address):
        hub.metrics.unauthenticated_refused.inc()
        retry = str(math.ceil(engine.hello_timeout_s))
        raise web.HTTPTooManyRequests(text="too many sockets without hello",
                                      headers={"Retry-After": retry})
    pending = True

    def said_hello() -> None:
        nonlocal pending
        hub.pending.leave(address)
        pending = False

    try:
        return await _serve(request, engine, said_hello)
    finally:
        if pending:
            hub.pending.leave(address)


async def _serve(request: web.Request, engine: Engine, said_hello: Callable[[], None]
                 ) -> web.StreamResponse:
    # Frames up to twice the limit reach us, so we can answer with our catalogued error;
    # anything larger aiohttp closes with 1009 itself.
    # autoping off: aiohttp would answer every ping itself, a flood of them unseen and unpaid
    # for; ``_receive`` answers them within the socket's budget.
    # No heartbeat of aiohttp's (a timer per socket): ``Watch`` pings every socket in one loop
    # and gives up on the ones that do not answer, with a catalogued reason.
    ws = web.WebSocketResponse(heartbeat=None, max_msg_size=2 * MAX_MESSAGE_BYTES,
                               autoping=False)
    await ws.prepare(request)
    conn: Socket = Conn(ws, request.transport, engine.write_deadline_s, engine.metrics)
    conn.on_gone = engine.on_socket_gone
    conn.tokens = RATE_BURST
    conn.last = asyncio.get_running_loop().time()
    hub = engine.hub
    try:
        if await _hello(request, engine, conn):
            said_hello()
            conn.pong_due = 0.0   # reading from now on: it may be pinged
            await _loop(engine, conn)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("signalling loop failed", extra={"peer_id": conn.peer_id})
    finally:
        hub.untrack(conn)
        # aiohttp cancels this handler when the peer's TCP connection goes away; recording the
        # drop must not be cancelled with it.
        drop = engine.background.spawn(engine.departures.dropped(conn),
                                       "recording a dropped socket")
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(drop)
        with contextlib.suppress(asyncio.CancelledError):
            await conn.wait_closed()
        conn.detach()
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
    return ws


async def _hello(request: web.Request, engine: Engine, conn: Socket) -> bool:
    hub = engine.hub
    try:
        msg = await asyncio.wait_for(_receive(hub, conn), engine.hello_timeout_s)
    except TimeoutError:
        _fail(hub, conn, errors.HELLO_REQUIRED)
        return False
    if msg is None or msg.type != WSMsgType.TEXT:
        if msg is not None and msg.type == WSMsgType.BINARY:
            _fail(hub, conn, errors.BINARY_FRAME)
        return False
    started = time.perf_counter()
    try:
        if len(msg.data) > MAX_MESSAGE_BYTES:
            raise ProtocolError(errors.MESSAGE_TOO_LARGE)
        hello = parse(msg.data)
        if not isinstance(hello, Hello):
            raise ProtocolError(errors.HELLO_REQUIRED)
        if hello.version != PROTOCOL_VERSION:
            raise ProtocolError(errors.UNSUPPORTED_VERSION, {"supported": [PROTOCOL_VERSION]})
        conn.lang = hello.lang or "it"
        who = await identify(request, hello, engine.arrivals.directory)
        await engine.arrivals.enter(conn, who, hello.nurse_present)
    except ProtocolError as exc:
        if exc.kind.fatal:
            _fail(hub, conn, exc.kind, exc.details)
        else:  # an invalid hello cannot be retried on this socket
            if exc.kind not in (errors.BAD_JSON, errors.UNKNOWN_TYPE):
                hub.metrics.errors.labels(exc.kind.code).inc()
                conn.send(errors.error_frame(exc.kind, None, exc.details))
            _fail(hub, conn, errors.HELLO_REQUIRED)
        return False
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("hello failed", extra={"peer_id": conn.peer_id})
        _fail(hub, conn, errors.TRY_AGAIN)
        return False
    hub.metrics.hello_seconds.observe(time.perf_counter() - started)
    return True


def _fail(hub: Hub, conn: Socket, kind: errors.SignalError,
          details: dict[str, object] | None = None, msg_id: str | None = None) -> None:
    hub.metrics.errors.labels(kind.code).inc()
    conn.fail(kind, msg_id, details)


async def _receive(hub: Hub, conn: Socket) -> WSMessage | None:
    """The next text or binary frame, or the frame that ended the socket; None once the socket
    was cut for flooding. Every frame is paid for from one token bucket, pings and pongs too
    (aiohttp has already joined continuation frames into their message, whose size is
    capped): a client over its rate waits here, unread (TCP pushes back on it)."""
    loop = asyncio.get_running_loop()
    ws = conn.ws
    while True:
        msg = await ws.receive()
        if msg.type in _ENDED:
            return msg
        now = loop.time()
        tokens = conn.tokens + (now - conn.last) * RATE_PER_S
        conn.tokens = tokens if tokens < RATE_BURST else RATE_BURST
        conn.last = now
        if tokens < 1.0:
            if now - conn.throttle_window > FLOOD_WINDOW_S:
                conn.throttle_window, conn.throttle_s = now, 0.0
            wait = (1.0 - conn.tokens) / RATE_PER_S
            conn.throttle_s += wait
            if conn.throttle_s > FLOOD_LIMIT_S:
                _fail(hub, conn, errors.FLOODING)
                return None
            if not conn.warned:
                conn.warned = True
                _fail(hub, conn, errors.RATE_LIMITED)
            await asyncio.sleep(wait)
            conn.tokens, conn.last = 1.0, loop.time()
        conn.tokens -= 1.0
        if msg.type == WSMsgType.PING:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.pong(msg.data)
        elif msg.type == WSMsgType.PONG:   # a pong only says the peer is there
            conn.pong_due = 0.0
        else:
            return msg


async def _loop(engine: Engine, conn: Socket) -> None:
    loop = asyncio.get_running_loop()
    hub = engine.hub
    handlers = engine.handlers.by_type
    while True:
        msg = await _receive(hub, conn)
        if msg is None or msg.type != WSMsgType.TEXT:
            if msg is not None and msg.type == WSMsgType.BINARY and not conn.closed:
                _fail(hub, conn, errors.BINARY_FRAME)
            return  # cut, closed, or an error (aiohttp has already closed oversized frames)
        if conn.closed:
            continue   # closing: what the peer still sends is read until its close, not acted on
        text: str = msg.data
        parsed = None
        try:
            if len(text) > MAX_MESSAGE_BYTES:
                _fail(hub, conn, errors.MESSAGE_TOO_LARGE)
                return
            parsed = parse(text)
            await handlers[type(parsed)](conn, parsed, text)
        except ProtocolError as exc:
            _fail(hub, conn, exc.kind, exc.details, _echo_id(parsed, text))
            if exc.kind.fatal:
                return
            if _over_budget(hub, conn, loop.time()):
                return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A domain failure the registry maps (server.errors) is answered as its catalogued
            # error, as on HTTP; anything else is a fault, logged.
            mapped = api_error(exc)
            if mapped is None:
                log.exception("signalling handler failed", extra={"peer_id": conn.peer_id})
                _fail(hub, conn, errors.INTERNAL)
                continue
            _fail(hub, conn, mapped.kind, mapped.details or None, _echo_id(parsed, text))
            if mapped.kind.fatal:
                return


def _echo_id(parsed: object, text: str) -> str | None:
    """The id to echo with an error: the message's, once parsed; for a frame refused by
    validation, its ``id`` if that alone is a valid one."""
    if parsed is not None:
        msg_id = getattr(parsed, "id", None)
        return msg_id if isinstance(msg_id, str) else None
    return reply_id(text)


def _over_budget(hub: Hub, conn: Socket, now: float) -> bool:
    if now - conn.err_window > ERROR_WINDOW_S:
        conn.err_window, conn.err_count = now, 0
    conn.err_count += 1
    if conn.err_count > ERROR_BUDGET:
        _fail(hub, conn, errors.TOO_MANY_ERRORS)
        return True
    return False
