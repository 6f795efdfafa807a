"""The ``/ws`` endpoint and the per-connection loop: Origin, hello within 2 s, frame size,
rate limit, error budget, validation at the edge and dispatch to small named handlers.

Nothing a client sends can crash the loop: every failure is a catalogued ``error``; fatal ones
close only this socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from server.keys import CONFIG
from server.middleware import _own_origin
from signaling import actions, errors
from signaling.auth import identify
from signaling.conn import CLOSE_HANDSHAKE_S, Conn
from signaling.errors import ProtocolError
from signaling.hub import Hub
from signaling.keys import DIRECTORY, HUB, LIFECYCLE
from signaling.lifecycle import Lifecycle
from signaling.messages import (
    PROTOCOL_VERSION,
    Admit,
    Chat,
    Hello,
    Invite,
    Message,
    Notice,
    SendBack,
    decode,
    frame,
    from_dict,
    relay_target,
)

log = logging.getLogger("casa.signaling.ws")

# An SDP is ~10 KiB; a frame this large is abuse, not signalling.
MAX_MESSAGE_BYTES = 64 * 1024
# A real client sends hello at once; an idle unauthenticated socket only costs us memory.
HELLO_TIMEOUT_S = 2.0
# WebSocket ping; aiohttp closes a peer that has not answered within half the interval more.
PING_INTERVAL_S = 10.0
# Sustained messages per second and burst per socket: an offer, an answer and a trickle of
# 50 candidates fit in the burst; 200/s leaves room for a busy call, not for a flood. A larger
# burst lets every reconnecting flooder stall the loop for longer (bench/signaling_flood.py).
RATE_PER_S = 200.0
RATE_BURST = 100.0
# A socket throttled this long within FLOOD_WINDOW_S is disconnected.
FLOOD_LIMIT_S = 2.0
FLOOD_WINDOW_S = 10.0
# Invalid messages tolerated within ERROR_WINDOW_S before the socket is closed.
ERROR_BUDGET = 50
ERROR_WINDOW_S = 10.0

Handler = Callable[[Conn, Message, str], Awaitable[None]]


def origin_allowed(request: web.Request) -> bool:
    """A browser always sends Origin on a WebSocket upgrade; it must be ours. Non-browser
    clients (probe, kiosk agents) send none."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    config = request.app[CONFIG]
    allowed = {_own_origin(request)}
    if config.public_origin:
        allowed.add(config.public_origin)
    return origin.rstrip("/") in allowed


async def ws_view(request: web.Request) -> web.StreamResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    hub = request.app[HUB]
    # Frames up to twice the limit reach us, so we can answer with our catalogued error;
    # anything larger aiohttp closes with 1009 itself.
    ws = web.WebSocketResponse(heartbeat=PING_INTERVAL_S, max_msg_size=2 * MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    conn = Conn(ws, request.transport)
    conn.tokens = RATE_BURST
    conn.last = asyncio.get_running_loop().time()
    try:
        if await _hello(request, conn):
            await _loop(request, hub, conn)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("signalling loop failed", extra={"peer_id": conn.peer_id})
    finally:
        hub.untrack(conn)
        # aiohttp cancels this handler when the peer's TCP connection goes away; recording the
        # drop must not be cancelled with it.
        drop = asyncio.ensure_future(_record_drop(request.app[LIFECYCLE], conn))
        hub.background.add(drop)
        drop.add_done_callback(hub.background.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(drop)
        if conn.close_done is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(conn.close_done.wait(), CLOSE_HANDSHAKE_S + 1)
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
    return ws


async def _record_drop(life: Lifecycle, conn: Conn) -> None:
    try:
        await life.dropped(conn)
    except Exception:
        log.warning("could not record a dropped socket", extra={"peer_id": conn.peer_id})


async def _hello(request: web.Request, conn: Conn) -> bool:
    hub = request.app[HUB]
    try:
        msg = await asyncio.wait_for(conn.ws.receive(), HELLO_TIMEOUT_S)
    except TimeoutError:
        await _fail(hub, conn, errors.HELLO_REQUIRED)
        return False
    if msg.type != WSMsgType.TEXT:
        if msg.type == WSMsgType.BINARY:
            await _fail(hub, conn, errors.HELLO_REQUIRED)
        return False
    started = time.perf_counter()
    try:
        if len(msg.data) > MAX_MESSAGE_BYTES:
            raise ProtocolError(errors.MESSAGE_TOO_LARGE)
        hello = from_dict(decode(msg.data))
        if not isinstance(hello, Hello):
            raise ProtocolError(errors.HELLO_REQUIRED)
        if hello.version != PROTOCOL_VERSION:
            raise ProtocolError(errors.UNSUPPORTED_VERSION, {"supported": [PROTOCOL_VERSION]})
        conn.lang = hello.lang or "it"
        who = await identify(request, hello, request.app[DIRECTORY])
        await request.app[LIFECYCLE].enter(conn, who, hello.nurse_present)
    except ProtocolError as exc:
        if exc.kind.fatal:
            await _fail(hub, conn, exc.kind, exc.details)
        else:  # an invalid hello cannot be retried on this socket
            if exc.kind not in (errors.BAD_JSON, errors.UNKNOWN_TYPE):
                hub.metrics.errors.labels(exc.kind.code).inc()
                await conn.send(errors.error_frame(exc.kind, None, exc.details))
            await _fail(hub, conn, errors.HELLO_REQUIRED)
        return False
    hub.metrics.hello_seconds.observe(time.perf_counter() - started)
    return True


async def _fail(hub: Hub, conn: Conn, kind: errors.SignalError,
                details: dict[str, object] | None = None, msg_id: str | None = None) -> None:
    hub.metrics.errors.labels(kind.code).inc()
    await conn.fail(kind, msg_id, details)


async def _loop(request: web.Request, hub: Hub, conn: Conn) -> None:
    loop = asyncio.get_running_loop()
    handlers = request.app[HANDLERS]
    ws = conn.ws
    while not conn.closed:
        msg = await ws.receive()
        if msg.type != WSMsgType.TEXT:
            if msg.type == WSMsgType.BINARY:
                await _fail(hub, conn, errors.BINARY_FRAME)
                continue
            return  # close, closing, error (aiohttp has already closed oversized frames)
        # Token bucket: a client over its rate waits here, unread (TCP pushes back on it).
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
                await _fail(hub, conn, errors.FLOODING)
                return
            if not conn.warned:
                conn.warned = True
                await _fail(hub, conn, errors.RATE_LIMITED)
            await asyncio.sleep(wait)
            conn.tokens, conn.last = 1.0, loop.time()
        conn.tokens -= 1.0
        text: str = msg.data
        obj = None
        try:
            if len(text) > MAX_MESSAGE_BYTES:
                await _fail(hub, conn, errors.MESSAGE_TOO_LARGE)
                return
            obj = decode(text)
            to = relay_target(obj)
            if to is not None:   # a valid offer, answer or candidate: no message object
                await relay(hub, conn, obj["type"], to, text)
            else:
                parsed = from_dict(obj)
                await handlers[parsed.TYPE](conn, parsed, text)
        except ProtocolError as exc:
            msg_id = obj.get("id") if obj is not None else None
            await _fail(hub, conn, exc.kind, exc.details,
                        msg_id if isinstance(msg_id, str) and len(msg_id) <= 64 else None)
            if exc.kind.fatal:
                return
            if await _over_budget(hub, conn, loop.time()):
                return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("signalling handler failed", extra={"peer_id": conn.peer_id})
            await _fail(hub, conn, errors.INTERNAL)


async def _over_budget(hub: Hub, conn: Conn, now: float) -> bool:
    if now - conn.err_window > ERROR_WINDOW_S:
        conn.err_window, conn.err_count = now, 0
    conn.err_count += 1
    if conn.err_count > ERROR_BUDGET:
        await _fail(hub, conn, errors.TOO_MANY_ERRORS)
        return True
    return False


# --- handlers: one small function per message type ---

def _stamp(text: str, peer_id: str, extra: str = "") -> str:
    """The frame as sent, with the server's ``from`` appended: the text was validated, so it is
    one JSON object with no ``from`` of its own; splicing avoids re-encoding every relay."""
    end = text.rindex("}")
    return f'{text[:end]},"from":"{peer_id}"{extra}}}'


def chat_frame(msg: Chat, peer_id: str) -> str:
    """A chat as relayed: re-encoded rather than the client's own spelling, whose whitespace
    or escapes could make it outgrow a NOTIFY payload and go through the database (the text's
    size is capped in ``Chat.check``)."""
    fields: dict[str, Any] = {"id": msg.id} if msg.id is not None else {}
    return frame("chat", **fields, text=msg.text, at=datetime.now(UTC).isoformat(),
                 **{"from": peer_id})


async def relay(hub: Hub, conn: Conn, kind: str, to: str, text: str) -> None:
    """Relay a validated offer, answer or candidate to ``to``, inside the sender's
    consultation only, with the server's ``from``. The per-frame hot path: checks and the send
    written inline (``Conn.in_call``, ``Conn.send``) rather than through helpers."""
    room = conn.room
    if room is None:
        raise ProtocolError(errors.NOT_IN_CALL)
    members = room.members
    me = members.get(conn.peer_id)
    if me is None or me.status != "in_call":
        raise ProtocolError(errors.NOT_IN_CALL)
    target = members.get(to)
    if target is None or target.status != "in_call" or to == conn.peer_id:
        raise ProtocolError(errors.UNKNOWN_PEER)
    out = _stamp(text, conn.peer_id)
    local = room.local.get(to)
    if local is not None:
        if not local.closed:
            try:
                await local.ws.send_str(out)
            except (ConnectionError, RuntimeError):
                local.closed = True
        hub.metrics.relayed += 1
    elif target.instance_id is not None:
        hub.bus("relay", target.instance_id, room=room.key, to=to, text=out)
    # else: the peer is away; it renegotiates when it resumes
    if kind == "answer" and room.setup_started is not None:
        hub.metrics.setup_seconds.observe(time.perf_counter() - room.setup_started)
        room.setup_started = None


def make_handlers(hub: Hub, life: Lifecycle) -> dict[str, Handler]:
    async def relay_to(conn: Conn, msg: Message, text: str) -> None:
        await relay(hub, conn, msg.TYPE, msg.to, text)  # type: ignore[attr-defined]

    async def broadcast(conn: Conn, msg: Message, text: str) -> None:
        room = conn.room
        if room is None or not conn.in_call:
            raise ProtocolError(errors.NOT_IN_CALL)
        if isinstance(msg, Chat):
            out = chat_frame(msg, conn.peer_id)
        else:
            out = _stamp(text, conn.peer_id)
        remote = False
        for m in room.in_call(conn.peer_id):
            local = room.local.get(m.peer_id)
            if local is not None:
                await local.send(out)
                hub.metrics.relayed += 1
            elif m.instance_id is not None:
                remote = True
        if remote:
            hub.bus("relay", room=room.key, to=None, text=out, **{"from": conn.peer_id})

    async def ping(conn: Conn, msg: Message, text: str) -> None:
        await conn.send(frame("pong", id=msg.id) if msg.id else '{"type":"pong"}')

    async def hello(conn: Conn, msg: Message, text: str) -> None:
        raise ProtocolError(errors.DUPLICATE_HELLO)

    async def admit(conn: Conn, msg: Message, text: str) -> None:
        assert isinstance(msg, Admit)
        await actions.admit(life, conn, msg)

    async def send_back(conn: Conn, msg: Message, text: str) -> None:
        assert isinstance(msg, SendBack)
        await actions.send_back(life, conn, msg)

    async def notice(conn: Conn, msg: Message, text: str) -> None:
        assert isinstance(msg, Notice)
        await actions.notice(life, conn, msg)

    async def invite(conn: Conn, msg: Message, text: str) -> None:
        assert isinstance(msg, Invite)
        await actions.invite(life, conn, msg)

    async def leave(conn: Conn, msg: Message, text: str) -> None:
        await life.leave(conn)

    async def end(conn: Conn, msg: Message, text: str) -> None:
        await actions.end(life, conn)

    return {"offer": relay_to, "answer": relay_to, "candidate": relay_to,
            "media_state": broadcast, "chat": broadcast, "ping": ping, "hello": hello,
            "admit": admit, "send_back": send_back, "notice": notice, "invite": invite,
            "leave": leave, "end": end}


HANDLERS: web.AppKey[dict[str, Handler]] = web.AppKey("signaling_handlers")
