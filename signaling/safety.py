"""Safety for people at risk (docs/protocol.md, "Safety"): "is it safe to talk now?" asked of a
waiting patient and answered silently, the revocation of a guest link, and the code word that,
typed by the patient in a sensitive consultation's chat, raises an alert on the clinicians'
screens only.

Nothing here writes the chat's text or the code word anywhere: the word is compared by its
keyed hash (``server.consultations.code_word``) and the alert says only that it was typed."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg

from server.consultations import code_word
from server.db import with_retry
from signaling import errors, frames, presence
from signaling.directory import Directory
from signaling.errors import ProtocolError
from signaling.events import Direct
from signaling.hub import Hub
from signaling.messages import RevokeGuest, SafeAnswer, SafeAsk
from signaling.presence import Member
from signaling.rooms import Room, Socket
from signaling.states import Change, Kind, LeftReason, Place, Role

log = logging.getLogger("casa.signaling.safety")


class Safety:
    """Safe-to-talk, guest revocation and code-word alerts, on this instance."""

    def __init__(self, pool: asyncpg.Pool, hub: Hub, directory: Directory,
                 secret_key: str) -> None:
        self.pool = pool
        self.hub = hub
        self.directory = directory
        self.secret_key = secret_key

    def _send(self, room: Room, m: Member, text: bytes) -> None:
        """One server frame for one member, here or on the instance holding their socket."""
        local = room.local.get(m.peer_id)
        if local is not None:
            local.send(text)
        elif m.instance_id is not None:
            self.hub.outbox.publish(Direct(room=room.key, to=m.peer_id, text=text.decode()))

    async def _set_safe(self, room: Room, peer_id: str, value: str) -> None:
        c = room.consultation
        assert c is not None
        async with room.lock:
            moved = await with_retry(self.pool, lambda db: presence.set_detail(
                db, c.id, peer_id, {"safe": value}))
        if moved is None:
            raise ProtocolError(errors.NOT_WAITING)
        # Whether they are connected is the room's view (as in ``signaling.actions``).
        known = room.members.get(peer_id)
        if known is not None:
            moved = replace(moved, instance_id=known.instance_id)
        self.hub.publish_change(room, moved, Change.UPDATED)

    async def ask(self, conn: Socket, msg: SafeAsk) -> None:
        """A clinician asks a waiting patient whether it is safe to talk."""
        room = conn.room
        if conn.kind != Kind.CLINICIAN or room is None or room.consultation is None:
            raise ProtocolError(errors.NOT_ALLOWED)
        m = room.members.get(msg.peer)
        if m is None or m.role != Role.PATIENT:
            raise ProtocolError(errors.UNKNOWN_PEER)
        if m.status != Place.WAITING:
            raise ProtocolError(errors.NOT_WAITING)
        await self._set_safe(room, m.peer_id, "asked")
        self._send(room, m, frames.encode(frames.SafeAskFrame()))

    async def answer(self, conn: Socket, msg: SafeAnswer) -> None:
        """The waiting patient's silent answer: to the clinicians' waiting list only."""
        room = conn.room
        if conn.kind != Kind.PATIENT or room is None or room.consultation is None:
            raise ProtocolError(errors.NOT_ALLOWED)
        me = room.members.get(conn.peer_id)
        if me is None or me.status != Place.WAITING:
            raise ProtocolError(errors.NOT_WAITING)
        if me.detail.get("safe") is None:
            raise ProtocolError(errors.NOT_ALLOWED)   # nobody asked
        await self._set_safe(room, me.peer_id, msg.answer)

    async def revoke_guest(self, conn: Socket, msg: RevokeGuest) -> None:
        """The guest link stops working; a guest of it present is removed from the room."""
        room = conn.room
        if conn.kind != Kind.CLINICIAN or room is None or room.consultation is None:
            raise ProtocolError(errors.NOT_ALLOWED)
        c = room.consultation
        if not await presence.revoke_guest(self.pool, msg.guest, c.id):
            raise ProtocolError(errors.UNKNOWN_PEER)
        participant = f"guest:{msg.guest}"
        m = next((m for m in room.members.values() if m.participant == participant), None)
        if m is not None and m.status != Place.LEFT:
            was = m.status
            async with room.lock:
                gone = await with_retry(self.pool, lambda db: presence.leave(db, m.peer_id))
            if gone is not None:
                self.hub.publish_change(room, gone, Change.LEFT, LeftReason.LEFT)
            local = room.local.pop(m.peer_id, None)
            if local is not None:
                local.replaced = True   # its place is already given up
                local.fail(errors.GUEST_REVOKED)
            elif m.instance_id is not None:
                self.hub.outbox.publish(Direct(room=room.key, to=m.peer_id, text=errors.error_frame(
                    errors.GUEST_REVOKED).decode()))
            log.info("guest link revoked", extra={"peer_id": m.peer_id, "place": was})

    async def chat_said(self, conn: Socket, text: str) -> None:
        """After a patient's chat line in a sensitive consultation: when it contains the
        booking's code word, alert the clinicians in the call (nobody else; the line itself
        was relayed as usual, so nothing changes on the patient's screen)."""
        room = conn.room
        c = room.consultation if room is not None else None
        if conn.kind != Kind.PATIENT or room is None or c is None or not c.sensitive:
            return
        wanted = await code_word.for_consultation(self.pool, c.id)
        if wanted is None or not code_word.said_in(self.secret_key, wanted, text):
            return
        alert = frames.encode(frames.SafetyAlert(code="code_word",
                                                 at=datetime.now(UTC).isoformat()))
        for m in room.in_call(conn.peer_id):
            if m.role == Role.CLINICIAN:
                self._send(room, m, alert)
        # The fact only, for the record: never the word, never the line.
        log.warning("code word alert", extra={"consultation_id": c.id})
