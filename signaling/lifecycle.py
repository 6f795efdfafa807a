"""State changes of a consultation that go through the database: joining (a consultation, a
dashboard, a probe room) here; leaving in ``signaling.departures``; a clinician's actions in
``signaling.actions``. Each writes PostgreSQL first (bookings' lifecycle and our presence rows,
in one transaction), then tells this instance's sockets and the other instances
(``Hub.publish_change``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from records import audit
from server.keys import CONFIG, POOL
from signaling import errors, presence, turn, views
from signaling.auth import Identity, check_window
from signaling.conn import Conn
from signaling.departures import Departures
from signaling.directory import GONE_BOOKING_STATUSES, Consultation, Directory
from signaling.errors import ProtocolError
from signaling.hub import Hub, dashboard_entries
from signaling.messages import (
    CHAT_MAX_CHARS,
    CHAT_MAX_RELAY_BYTES,
    MAX_SDP_CHARS,
    PROTOCOL_VERSION,
    frame,
)
from signaling.presence import Member
from signaling.probes import Probes
from signaling.rooms import Room

log = logging.getLogger("casa.signaling")
ROME = ZoneInfo("Europe/Rome")


class Lifecycle(Probes, Departures):
    """The database-backed transitions of one instance."""

    def __init__(self, app: web.Application, hub: Hub, directory: Directory,
                 limits: dict[str, Any]) -> None:
        self.app = app
        self.hub = hub
        self.directory = directory
        self.limits = limits
        self._timers: set[asyncio.TimerHandle] = set()
        hub.resolve_name = self.name_of
        hub.load_view = self.load_view

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app[POOL]

    async def name_of(self, c: Consultation, m: Member) -> str:
        return await views.name_of(self.pool, c, m)

    async def load_view(self, consultation_id: int) -> Room | None:
        c = await self.directory.get(self.pool, consultation_id)
        return await views.load(self.pool, c) if c is not None else None

    # --- entering ---

    async def join(self, conn: Conn, who: Identity, detail: dict[str, Any]) -> None:
        """A socket enters its consultation (waiting or in the call) and gets ``welcome``."""
        c = who.consultation
        assert c is not None
        role = {"patient": "patient", "guest": "guest"}.get(who.kind, "clinician")
        async with self.pool.acquire() as db, db.transaction():
            arrival = await presence.arrive(db, c.id, who.participant, role,
                                            self.hub.instance_id, detail)
            if not arrival.resumed:
                if role == "patient":
                    await self.directory.record_event(db, c.id, "arrived")
                else:
                    await self.directory.record_event(
                        db, c.id, "participant_joined", staff_id=who.staff_id,
                        detail={"participant": who.participant, "role": role})
            await _audit_join(db, who, c, arrival.resumed)
        member = arrival.member
        room = await self.room_for(c)
        room.names[member.peer_id] = who.name
        await self.hub.close_replaced(room.key, member.peer_id)
        if arrival.previous_instance and arrival.previous_instance != self.hub.instance_id:
            self.hub.bus("replace", room=room.key, peer_id=member.peer_id,
                         target=arrival.previous_instance)
        conn.peer_id = member.peer_id
        conn.room = room
        room.local[member.peer_id] = conn
        room.members[member.peer_id] = member
        await conn.send(self.welcome(conn, room, member, arrival.resumed, c))
        change = "resumed" if arrival.resumed else (
            "waiting" if member.status == "waiting" else "joined")
        if change == "joined" and role == "clinician" and room.setup_started is None:
            room.setup_started = time.perf_counter()
        await self.hub.publish_change(room, member, change)
        if conn.kind == "clinician":
            await conn.send(frame("waiting_list", entries=room.waiting_entries()))

    def welcome(self, conn: Conn, room: Room, member: Member, resumed: bool,
                c: Consultation | None) -> str:
        expires = c.join_closes_at.timestamp() if c is not None else None
        peers = ([room.peer_object(m, conn) for m in room.in_call(member.peer_id)]
                 if member.status == "in_call" else [])
        return frame("welcome", version=PROTOCOL_VERSION, peer_id=member.peer_id,
                     role=member.role, state=member.status,
                     room=c.room_id if c is not None else room.key, peers=peers,
                     ice_servers=turn.ice_servers(self.app[CONFIG], member.peer_id, expires),
                     resumed=resumed, since=member.arrived_at.isoformat(), limits=self.limits)

    async def room_for(self, c: Consultation) -> Room:
        """The consultation's room here: the one a socket or a dashboard here already uses
        (kept current by the bus), or one read from the database."""
        room = self.hub.view(c.id)
        if room is None:
            room = await views.load(self.pool, c, all_names=True)
        else:
            for m in list(room.members.values()):
                if m.peer_id not in room.names:
                    room.names[m.peer_id] = await self.name_of(c, m)
        room.consultation = c
        current = self.hub.view(c.id)   # another join may have made one meanwhile
        if current is not None and current is not room:
            room = current
        self.hub.rooms[room.key] = room
        return room

    async def dashboard(self, conn: Conn, who: Identity) -> None:
        """A clinician's dashboard: the live state of all their consultations today."""
        assert who.staff_id is not None
        conn.waiting = {}
        await self.fill_dashboard(conn)
        self.hub.track(conn)
        await conn.send(frame("welcome", version=PROTOCOL_VERSION, peer_id="", role="dashboard",
                              state="dashboard", room=None, peers=[], ice_servers=[],
                              resumed=False, since=None, limits=self.limits))
        await conn.send(frame("waiting_list", entries=dashboard_entries(conn)))

    async def fill_dashboard(self, conn: Conn) -> None:
        """(Re)compute a dashboard's entries from the rooms here or from the database."""
        assert conn.staff_id is not None and conn.waiting is not None
        today = datetime.now(ROME).date()
        listed = [c for c in await self.directory.list_for_clinician_day(self.pool,
                                                                         conn.staff_id, today)
                  if c.booking_status not in GONE_BOOKING_STATUSES]
        missing = [c for c in listed if self.hub.view(c.id) is None]
        found = await presence.patients(self.pool, [c.id for c in missing]) if missing else {}
        for c in listed:
            room = self.hub.view(c.id)
            if room is None:
                room = Room(str(c.id), c)
                await views.fill(self.pool, room, c, found.get(c.id), all_names=False)
            self.hub.views[c.id] = room
            conn.waiting[c.id] = room.dashboard_entries()

    async def resync(self) -> None:
        """After the bus was lost: what other instances did meanwhile was not heard. Re-read
        every room and dashboard here from the database and send full waiting lists."""
        rooms = {id(r): r for r in [*self.hub.rooms.values(), *self.hub.views.values()]}
        ids = [r.consultation.id for r in rooms.values() if r.consultation is not None]
        found = await presence.patients(self.pool, ids) if ids else {}
        for room in rooms.values():
            if room.consultation is None:
                continue
            c = await self.directory.get(self.pool, room.consultation.id) or room.consultation
            await views.fill(self.pool, room, c, found.get(c.id), all_names=bool(room.local))
            if views.finished(c) and room.local:
                await self.hub.end_local(room, "")
        for room in list(self.hub.rooms.values()):
            if room.consultation is not None:
                text = frame("waiting_list", entries=room.waiting_entries(), refresh=True)
                for conn in list(room.local.values()):
                    if conn.kind == "clinician":
                        await conn.send(text)
        for conns in list(self.hub.dashboards.values()):
            for conn in list(conns):
                if conn.waiting is None:
                    continue
                await self.fill_dashboard(conn)
                await conn.send(frame("waiting_list", entries=dashboard_entries(conn),
                                      refresh=True))

    async def enter(self, conn: Conn, who: Identity, nurse_present: bool | None) -> None:
        """Route an authenticated hello: probe, dashboard, or a consultation."""
        conn.kind = who.kind
        conn.staff_id = who.staff_id
        conn.session_hash = who.session_hash
        conn.participant = who.participant
        if who.kind == "probe":
            self.hub.track(conn)
            await self.join_probe(conn, who)
            return
        if who.kind == "dashboard":
            await self.dashboard(conn, who)
            return
        c = who.consultation
        assert c is not None
        if who.kind == "patient":
            check_window(c)
        else:
            with contextlib.suppress(ProtocolError):
                check_window(c)  # staff and guests may open the room before the window
            if views.finished(c):
                raise ProtocolError(errors.CONSULTATION_ENDED)
            if time.time() > c.join_closes_at.timestamp():
                raise ProtocolError(errors.TOO_LATE)
        detail: dict[str, Any] = {"lang": conn.lang}
        if who.kind == "patient":
            kiosk = c.mode == "kiosk_video"
            detail.update({"from": "kiosk" if kiosk else "home", "kiosk_id": c.kiosk_id,
                           "nurse_present": bool(nurse_present if nurse_present is not None
                                                 else kiosk and c.nurse_id)})
        elif who.kind == "guest":
            detail["label"] = who.name
        self.hub.track(conn)
        await self.join(conn, who, detail)


LIMITS: dict[str, Any] = {"max_message_bytes": 64 * 1024, "chat_max_chars": CHAT_MAX_CHARS,
                          "chat_max_relay_bytes": CHAT_MAX_RELAY_BYTES,
                          "sdp_max_chars": MAX_SDP_CHARS, "grace_s": presence.GRACE_S}


async def _audit_join(db: asyncpg.Connection, who: Identity, c: Consultation,
                      resumed: bool) -> None:
    """Record 'consultation_join' in records' append-only audit log."""
    kind = {"clinician": "staff", "patient": "patient"}.get(who.kind, "system")
    await audit.append(db, action="consultation_join", actor_staff_id=who.staff_id,
                       actor_kind=kind, patient_id=c.patient_id, booking_id=c.booking_id,
                       detail={"participant": who.participant, "resumed": resumed})
