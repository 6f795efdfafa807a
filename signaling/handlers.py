"""What each client message does once ``signaling.wire.parse`` has validated it: the relay of
offer, answer and candidate (the per-frame hot path), broadcasts (media state, chat) and one
entry per other message type, most of them delegating to ``signaling.actions`` or
``signaling.departures``. docs/protocol.md names, per message, the module handling it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from signaling import errors, frames
from signaling.actions import Actions
from signaling.departures import Departures
from signaling.errors import ProtocolError
from signaling.events import Relay
from signaling.hub import Hub
from signaling.media import MediaReports
from signaling.messages import (
    Admit,
    Answer,
    Candidate,
    Chat,
    End,
    Hello,
    Invite,
    Leave,
    MediaReport,
    MediaState,
    Notice,
    Offer,
    Ping,
    RevokeGuest,
    SafeAnswer,
    SafeAsk,
    SendBack,
)
from signaling.rooms import Socket
from signaling.safety import Safety
from signaling.states import Place

Handler = Callable[[Socket, Any, str], Awaitable[None]]
_PONG = frames.encode(frames.Pong())


def stamp(text: str, peer_id: str) -> bytes:
    """The frame as sent, with the server's ``from`` appended: the text was validated, so it
    is one JSON object with no ``from`` of its own (and a peer id needs no escaping);
    splicing avoids re-encoding every relay."""
    end = text.rindex("}")
    return f'{text[:end]},"from":"{peer_id}"}}'.encode()


def chat_frame(msg: Chat, peer_id: str, at: str | None = None) -> bytes:
    """A chat as relayed: re-encoded rather than the client's own spelling, whose whitespace
    or escapes could make it outgrow a NOTIFY payload and go through the database (the text's
    size is capped by ``Chat``'s validation)."""
    return frames.encode(frames.ChatFrame(id=frames.unset_if_none(msg.id), text=msg.text,
                                          at=at or datetime.now(UTC).isoformat(),
                                          from_=peer_id))


def relay(hub: Hub, conn: Socket, msg: Offer | Answer | Candidate, text: str) -> None:
    """Relay an offer, answer or candidate to ``msg.to``, inside the sender's consultation
    only, with the server's ``from`` (the per-frame hot path: it only queues)."""
    room = conn.room
    if room is None:
        raise ProtocolError(errors.NOT_IN_CALL)
    members = room.members
    me = members.get(conn.peer_id)
    if me is None or me.status != Place.IN_CALL:
        raise ProtocolError(errors.NOT_IN_CALL)
    to = msg.to
    target = members.get(to)
    if target is None or target.status != Place.IN_CALL or to == conn.peer_id:
        raise ProtocolError(errors.UNKNOWN_PEER)
    local = room.local.get(to)
    if local is not None:
        local.send(stamp(text, conn.peer_id))
        hub.metrics.relayed += 1
    elif target.instance_id is not None:
        hub.outbox.publish(Relay(room=room.key, to=to, text=stamp(text, conn.peer_id).decode()),
                           target.instance_id)
    # else: the peer is away; it renegotiates when it resumes
    if room.setup_started is not None and isinstance(msg, Answer):
        hub.metrics.setup_seconds.observe(time.perf_counter() - room.setup_started)
        room.setup_started = None


class Handlers:
    """The handler of each client message type after hello."""

    def __init__(self, hub: Hub, actions: Actions, departures: Departures,
                 safety: Safety, media: MediaReports) -> None:
        self.hub = hub
        self.media = media
        self.actions = actions
        self.departures = departures
        self.safety = safety
        self.by_type: dict[type[Any], Handler] = {
            Offer: self.relay, Answer: self.relay, Candidate: self.relay,
            MediaState: self.broadcast, Chat: self.broadcast, Ping: self.ping,
            Hello: self.hello, Admit: self.admit, SendBack: self.send_back,
            Notice: self.notice, Invite: self.invite, Leave: self.leave, End: self.end,
            SafeAsk: self.safe_ask, SafeAnswer: self.safe_answer,
            RevokeGuest: self.revoke_guest, MediaReport: self.media_report}

    async def relay(self, conn: Socket, msg: Offer | Answer | Candidate, text: str) -> None:
        relay(self.hub, conn, msg, text)

    async def broadcast(self, conn: Socket, msg: MediaState | Chat, text: str) -> None:
        room = conn.room
        if room is None or not conn.in_call:
            raise ProtocolError(errors.NOT_IN_CALL)
        at = datetime.now(UTC).isoformat()
        out = chat_frame(msg, conn.peer_id, at) if isinstance(msg, Chat) \
            else stamp(text, conn.peer_id)
        delivered = 0
        remote = False
        for m in room.in_call(conn.peer_id):
            local = room.local.get(m.peer_id)
            if local is not None:
                local.send(out)
                self.hub.metrics.relayed += 1
                delivered += 1
            elif m.instance_id is not None:
                remote = True
                delivered += 1
            # else: away in the grace; a chat is not kept for them (never stored)
        if remote:
            self.hub.outbox.publish(Relay(room=room.key, to=None, from_=conn.peer_id,
                                          text=out.decode()))
        if isinstance(msg, Chat):
            # The sender's answer, before the code-word check (which may wait for the
            # database): its line is on its screen as "sending" until this comes.
            conn.send(frames.encode(frames.ChatSent(id=frames.unset_if_none(msg.id), at=at,
                                                    delivered=delivered)))
            await self.safety.chat_said(conn, msg.text)

    async def ping(self, conn: Socket, msg: Ping, text: str) -> None:
        conn.send(frames.encode(frames.Pong(id=msg.id)) if msg.id else _PONG)

    async def hello(self, conn: Socket, msg: Hello, text: str) -> None:
        raise ProtocolError(errors.DUPLICATE_HELLO)

    async def admit(self, conn: Socket, msg: Admit, text: str) -> None:
        await self.actions.admit(conn, msg)

    async def send_back(self, conn: Socket, msg: SendBack, text: str) -> None:
        await self.actions.send_back(conn, msg)

    async def notice(self, conn: Socket, msg: Notice, text: str) -> None:
        self.actions.notice(conn, msg)

    async def invite(self, conn: Socket, msg: Invite, text: str) -> None:
        await self.actions.invite(conn, msg)

    async def safe_ask(self, conn: Socket, msg: SafeAsk, text: str) -> None:
        await self.safety.ask(conn, msg)

    async def safe_answer(self, conn: Socket, msg: SafeAnswer, text: str) -> None:
        await self.safety.answer(conn, msg)

    async def revoke_guest(self, conn: Socket, msg: RevokeGuest, text: str) -> None:
        await self.safety.revoke_guest(conn, msg)

    async def media_report(self, conn: Socket, msg: MediaReport, text: str) -> None:
        await self.media.report(conn, msg)

    async def leave(self, conn: Socket, msg: Leave, text: str) -> None:
        await self.departures.leave(conn)

    async def end(self, conn: Socket, msg: End, text: str) -> None:
        await self.actions.end(conn)
