"""What each client message does once validated: the relay of offer, answer and candidate
(the per-frame hot path, entered straight from ``ws._loop``), broadcasts (media state, chat)
and one small handler per other message type, most of them delegating to
``signaling.actions`` or ``signaling.lifecycle``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from signaling import actions, errors
from signaling.conn import Conn
from signaling.errors import ProtocolError
from signaling.hub import Hub
from signaling.lifecycle import Lifecycle
from signaling.messages import (
    Admit,
    Answer,
    Candidate,
    Chat,
    Invite,
    Message,
    Notice,
    Offer,
    SendBack,
    frame,
)

Handler = Callable[[Conn, Message, str], Awaitable[None]]


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
        assert isinstance(msg, Offer | Answer | Candidate)
        await relay(hub, conn, msg.TYPE, msg.to, text)

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
