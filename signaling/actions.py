"""What a clinician does to a consultation: admit, send back, notice, invite, end. Each holds
the room's lock on this instance and writes PostgreSQL first (the consultation's lock taken
first, then presence rows and bookings' lifecycle, in one transaction), then tells the sockets
here and the other instances the rows as they now are."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import asyncpg

from server import staff as staff_store
from server.consultations import care
from server.consultations.care import staff_on
from server.consultations.store import Consultation
from server.db import with_retry
from signaling import errors, frames, presence
from signaling.directory import Directory
from signaling.errors import ProtocolError
from signaling.events import Direct, Ended, Invited
from signaling.hub import Hub
from signaling.messages import Admit, Invite, Notice, SendBack
from signaling.notices import NoticeText
from signaling.presence import Member
from signaling.rooms import Room, Socket
from signaling.states import Change, Kind, LeftReason, Place, Role
from signaling.views import Views


def _clinician_room(conn: Socket) -> tuple[Room, Consultation]:
    room = conn.room
    if conn.kind != Kind.CLINICIAN or room is None or room.consultation is None:
        raise ProtocolError(errors.NOT_ALLOWED)
    return room, room.consultation


def _patient(room: Room, peer_id: str) -> Member:
    m = room.members.get(peer_id)
    # A guest waiting in a sensitive consultation is admitted (and sent back) like the patient.
    if m is None or m.role not in (Role.PATIENT, Role.GUEST):
        raise ProtocolError(errors.UNKNOWN_PEER)
    return m


class Actions:
    """A clinician's actions, on this instance."""

    def __init__(self, pool: asyncpg.Pool, hub: Hub, views: Views, directory: Directory,
                 notice_text: NoticeText) -> None:
        self.pool = pool
        self.hub = hub
        self.views = views
        self.directory = directory
        self.notice_text = notice_text

    async def _move(self, conn: Socket, peer: str, src: Place, dst: Place, event: str,
                    refused: errors.SignalError) -> tuple[Room, Member]:
        room, c = _clinician_room(conn)
        m = _patient(room, peer)
        async def move(db: asyncpg.Connection) -> Member:
            await self.directory.lock(db, c.id)
            moved = await presence.move_patient(db, c.id, m.peer_id, src, dst)
            if moved is None:
                raise ProtocolError(refused)
            await self.directory.record_event(db, c.id, event, staff_id=conn.staff_id)
            return moved

        async with room.lock:
            moved = await with_retry(self.pool, move)
        # Whether the patient is connected is the room's view (the row names the instance that
        # held the socket last, which may since have died).
        return room, replace(moved, instance_id=room.members.get(m.peer_id, m).instance_id)

    async def admit(self, conn: Socket, msg: Admit) -> None:
        room, moved = await self._move(conn, msg.peer, Place.WAITING, Place.IN_CALL,
                                       "admitted", errors.NOT_WAITING)
        room.setup_started = time.perf_counter()
        self.hub.publish_change(room, moved, Change.ADMITTED)

    async def send_back(self, conn: Socket, msg: SendBack) -> None:
        room, moved = await self._move(conn, msg.peer, Place.IN_CALL, Place.WAITING,
                                       "sent_back", errors.UNKNOWN_PEER)
        self.hub.publish_change(room, moved, Change.SENT_BACK, LeftReason.SENT_BACK)

    def notice(self, conn: Socket, msg: Notice) -> None:
        room, _c = _clinician_room(conn)
        m = _patient(room, msg.peer)
        if m.status != Place.WAITING:
            raise ProtocolError(errors.NOT_WAITING)
        lang = str(m.detail.get("lang") or "it")
        text = frames.encode(frames.NoticeFrame(
            code=msg.code, minutes=msg.minutes,
            text=self.notice_text(lang, msg.code, msg.minutes)))
        local = room.local.get(m.peer_id)
        if local is not None:
            local.send(text)
        elif m.instance_id is not None:
            self.hub.outbox.publish(Direct(room=room.key, to=m.peer_id, text=text.decode()))

    async def invite(self, conn: Socket, msg: Invite) -> None:
        room, c = _clinician_room(conn)
        msg_id: Any = frames.unset_if_none(msg.id)
        if msg.guest:
            token, guest_id = await presence.create_guest(
                self.pool, c.id, conn.staff_id or 0, msg.label, c.join_closes_at)
            conn.send(frames.encode(frames.Invited(
                id=msg_id, link=f"/consultation/{c.room_id}#guest={token}",
                expires_at=c.join_closes_at.isoformat(), guest_id=guest_id)))
            return
        assert msg.staff_id is not None
        # An invitee is on the consultation, and so comes to care for the patient: the core's
        # rule (``care.may_be_added``). Unknown, inactive, other roles and other centres get
        # the same answer, so the reply does not tell them apart.
        person = await staff_store.get(self.pool, msg.staff_id)
        if person is None or not care.may_be_added(person, c.centre_id):
            raise ProtocolError(errors.NOT_ALLOWED)
        if msg.staff_id not in staff_on(c):
            async with self.pool.acquire() as db, db.transaction():
                await self.directory.add_participant(db, c.id, msg.staff_id)
            fresh = await self.directory.get(self.pool, c.id)
            if fresh is not None:
                room.consultation = c = fresh
        self.hub.invited(c.id, msg.staff_id, room)
        self.hub.outbox.publish(Invited(cid=c.id, staff_id=msg.staff_id))
        conn.send(frames.encode(frames.Invited(id=msg_id, staff_id=msg.staff_id)))

    async def end(self, conn: Socket) -> None:
        room, c = _clinician_room(conn)
        async with room.lock:
            present = sorted({m.participant for m in room.members.values()
                              if m.status == Place.IN_CALL})
            async def end(db: asyncpg.Connection) -> None:
                await self.directory.lock(db, c.id)
                await presence.end_all(db, c.id)
                await self.directory.record_event(db, c.id, "ended", staff_id=conn.staff_id,
                                                  detail={"present": present})

            await with_retry(self.pool, end)
            self.hub.outbox.publish(Ended(room=room.key, cid=c.id, staff=list(staff_on(c)),
                                          by=conn.peer_id))
            self.hub.end_local(room, conn.peer_id)
