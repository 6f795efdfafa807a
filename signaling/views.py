"""What an instance reads from the database to show a consultation: display names (the bus
carries ids only, so each instance looks names up itself and caches them in the room) and its
members and patient's state, when a room is first used here, on a dashboard's ``hello`` and
after the bus was lost."""

from __future__ import annotations

import asyncpg

from server import patients
from server import staff as staff_store
from server.consultations.store import Consultation
from signaling import presence
from signaling.directory import Directory
from signaling.presence import Member
from signaling.rooms import Room
from signaling.states import EntryState, Role


def finished(c: Consultation) -> bool:
    return c.state == "ended" or c.booking_status == "cancelled"


class Views:
    """Reads rooms and names from the database (one per instance)."""

    def __init__(self, pool: asyncpg.Pool, directory: Directory) -> None:
        self.pool = pool
        self.directory = directory

    async def name_of(self, c: Consultation, m: Member) -> str:
        """The display name of a member: the patient's, a staff member's or a guest's label."""
        if m.role == Role.PATIENT:
            p = await patients.get(self.pool, c.patient_id)
            return p.full_name if p else ""
        if m.staff_id is not None:
            s = await staff_store.get(self.pool, m.staff_id)
            return s.full_name if s else ""
        label = m.detail.get("label")
        return str(label) if label else await presence.guest_label(self.pool, m.peer_id)

    async def name(self, room: Room, m: Member) -> None:
        """Look up and cache a member's name in the room, once."""
        if m.peer_id not in room.names and room.consultation is not None:
            room.names[m.peer_id] = await self.name_of(room.consultation, m)

    async def fill(self, room: Room, c: Consultation,
                   patient: tuple[Member, bool] | None = None, *, all_names: bool,
                   members: list[tuple[Member, bool]] | None = None) -> None:
        """(Re)load a room's members and patient state from the database; names of newcomers
        (the patient's only, unless ``all_names``) are looked up and cached. A change heard
        while this reads is newer than what it read, and is kept (``Room.reload``)."""
        room.consultation = c
        rows = members if members is not None else await presence.members(self.pool, c.id)
        room.reload(rows)
        if patient is None:
            patient = next(((m, kept) for m, kept in rows if m.role == Role.PATIENT), None)
        if patient is not None and patient[0].version >= room.versions.get(patient[0].peer_id,
                                                                            -1):
            member, kept = patient
            room.last_patient = member
            room.gone = None if kept else EntryState.LEFT
        if finished(c):
            room.gone = EntryState.ENDED
        wanted = list(room.members.values())
        if room.last_patient is not None:
            wanted.append(room.last_patient)
        for m in wanted:
            if all_names or m.role == Role.PATIENT:
                await self.name(room, m)

    async def load(self, c: Consultation, *, all_names: bool = False) -> Room:
        """A fresh Room for a consultation as the database has it."""
        room = Room(str(c.id), c)
        await self.fill(room, c, all_names=all_names)
        return room

    async def load_id(self, consultation_id: int) -> Room | None:
        c = await self.directory.get(self.pool, consultation_id)
        return await self.load(c) if c is not None else None
