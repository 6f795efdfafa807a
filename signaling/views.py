"""What an instance reads from the database to show a consultation: display names (the bus
carries ids only, so each instance looks names up itself and caches them in the room) and
the patient's state for dashboards, on a dashboard's ``hello`` and after the bus was lost."""

from __future__ import annotations

import asyncpg

from server import patients
from server import staff as staff_store
from signaling import presence
from signaling.directory import Consultation
from signaling.presence import Member
from signaling.rooms import ENDED, LEFT, Room


async def name_of(pool: asyncpg.Pool, c: Consultation, m: Member) -> str:
    """The display name of a member: the patient's, a staff member's or a guest's label."""
    if m.role == "patient":
        p = await patients.get(pool, c.patient_id)
        return p.full_name if p else ""
    if m.staff_id is not None:
        s = await staff_store.get(pool, m.staff_id)
        return s.full_name if s else ""
    label = m.detail.get("label")
    return str(label) if label else await presence.guest_label(pool, m.peer_id)


def finished(c: Consultation) -> bool:
    return c.state == "ended" or c.booking_status == "cancelled"


async def fill(pool: asyncpg.Pool, room: Room, c: Consultation,
               patient: tuple[Member, bool] | None, *, all_names: bool) -> None:
    """(Re)load a room's members and patient state from the database; names of newcomers
    (the patient's only, unless ``all_names``) are looked up and cached."""
    room.consultation = c
    room.members = {m.peer_id: m for m in await presence.members(pool, c.id)}
    if patient is not None:
        member, kept = patient
        room.last_patient = member
        room.gone = "" if kept else LEFT
    if finished(c):
        room.gone = ENDED
    wanted = list(room.members.values())
    if room.last_patient is not None:
        wanted.append(room.last_patient)
    for m in wanted:
        if m.peer_id not in room.names and (all_names or m.role == "patient"):
            room.names[m.peer_id] = await name_of(pool, c, m)


async def load(pool: asyncpg.Pool, c: Consultation, *, all_names: bool = False) -> Room:
    """A fresh Room for a consultation as the database has it."""
    room = Room(str(c.id), c)
    found = await presence.patients(pool, [c.id])
    await fill(pool, room, c, found.get(c.id), all_names=all_names)
    return room
