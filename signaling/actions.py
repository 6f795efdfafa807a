"""What a clinician does to a consultation: admit, send back, notice, invite, end. Each writes
PostgreSQL first (presence rows and bookings' lifecycle in one transaction), then tells the
sockets here and the other instances."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

from server import staff as staff_store
from signaling import errors, presence
from signaling.conn import Conn
from signaling.directory import Consultation, staff_ids
from signaling.errors import ProtocolError
from signaling.lifecycle import Lifecycle
from signaling.messages import Admit, Invite, Notice, SendBack, frame
from signaling.notices import notice_text
from signaling.presence import Member
from signaling.rooms import Room


def _clinician_room(conn: Conn) -> tuple[Room, Consultation]:
    room = conn.room
    if conn.kind != "clinician" or room is None or room.consultation is None:
        raise ProtocolError(errors.NOT_ALLOWED)
    return room, room.consultation

def _patient(room: Room, peer_id: str) -> Member:
    m = room.members.get(peer_id)
    if m is None or m.role != "patient":
        raise ProtocolError(errors.UNKNOWN_PEER)
    return m

async def admit(life: Lifecycle, conn: Conn, msg: Admit) -> None:
    room, c = _clinician_room(conn)
    m = _patient(room, msg.peer)
    async with room.lock:
        async with life.pool.acquire() as db, db.transaction():
            if not await presence.move_patient(db, c.id, m.peer_id, "waiting", "in_call"):
                raise ProtocolError(errors.NOT_WAITING)
            await life.directory.record_event(db, c.id, "admitted", staff_id=conn.staff_id)
        room.setup_started = time.perf_counter()
        member = replace(room.members.get(m.peer_id, m), status="in_call",
                         arrived_at=datetime.now(UTC))
        await life.hub.publish_change(room, member, "admitted")

async def send_back(life: Lifecycle, conn: Conn, msg: SendBack) -> None:
    room, c = _clinician_room(conn)
    m = _patient(room, msg.peer)
    async with room.lock:
        async with life.pool.acquire() as db, db.transaction():
            if not await presence.move_patient(db, c.id, m.peer_id, "in_call", "waiting"):
                raise ProtocolError(errors.UNKNOWN_PEER)
            await life.directory.record_event(db, c.id, "sent_back", staff_id=conn.staff_id)
        member = replace(room.members.get(m.peer_id, m), status="waiting",
                         arrived_at=datetime.now(UTC))
        await life.hub.publish_change(room, member, "sent_back", "sent_back")

async def notice(life: Lifecycle, conn: Conn, msg: Notice) -> None:
    room, _c = _clinician_room(conn)
    m = _patient(room, msg.peer)
    if m.status != "waiting":
        raise ProtocolError(errors.NOT_WAITING)
    lang = str(m.detail.get("lang") or "it")
    text = frame("notice", code=msg.code, minutes=msg.minutes,
                 text=notice_text(life.app, lang, msg.code, msg.minutes))
    local = room.local.get(m.peer_id)
    if local is not None:
        await local.send(text)
    elif m.instance_id is not None:
        life.hub.bus("direct", room=room.key, to=m.peer_id, text=text)

async def invite(life: Lifecycle, conn: Conn, msg: Invite) -> None:
    room, c = _clinician_room(conn)
    if msg.guest:
        token = await presence.create_guest(life.pool, c.id, conn.staff_id or 0, msg.label,
                                            c.join_closes_at)
        await conn.send(frame("invited", id=msg.id,
                              link=f"/consultation/{c.room_id}#guest={token}",
                              expires_at=c.join_closes_at.isoformat()))
        return
    assert msg.staff_id is not None
    # An invitee counts as caring for the patient (records' access): only active clinical
    # staff of the consultation's own centre. Unknown, inactive, other roles and other
    # centres get the same answer, so the reply does not tell them apart.
    person = await staff_store.get(life.pool, msg.staff_id)
    if person is None or not person.role.clinical or c.centre_id not in person.centres:
        raise ProtocolError(errors.NOT_ALLOWED)
    if msg.staff_id not in staff_ids(c):
        async with life.pool.acquire() as db, db.transaction():
            await life.directory.add_participant(db, c.id, msg.staff_id)
        fresh = await life.directory.get(life.pool, c.id)
        if fresh is not None:
            room.consultation = c = fresh
    await life.hub.invited(c.id, msg.staff_id, room)
    life.hub.bus("invited", cid=c.id, staff_id=msg.staff_id)
    await conn.send(frame("invited", id=msg.id, staff_id=msg.staff_id))

async def end(life: Lifecycle, conn: Conn) -> None:
    room, c = _clinician_room(conn)
    present = sorted({m.participant for m in room.members.values() if m.status == "in_call"})
    async with room.lock:
        async with life.pool.acquire() as db, db.transaction():
            await presence.end_all(db, c.id)
            await life.directory.record_event(db, c.id, "ended", staff_id=conn.staff_id,
                                              detail={"present": present})
        life.hub.bus("ended", room=room.key, cid=c.id, staff=list(staff_ids(c)),
                     by=conn.peer_id)
        await life.hub.end_local(room, conn.peer_id)
