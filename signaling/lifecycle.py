"""State changes of a consultation that go through the database: join, drop, the end of the
grace, leave, admit, send back, notice, invite, end. Each writes PostgreSQL first (bookings'
lifecycle and our presence rows, in one transaction), then tells this instance's sockets and
the other instances (``Hub.publish_change``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from records import audit
from server import staff as staff_store
from server.keys import CONFIG, POOL
from signaling import errors, presence, turn
from signaling.auth import Identity, check_window
from signaling.directory import Consultation, Directory, staff_ids
from signaling.errors import ProtocolError
from signaling.messages import (
    CHAT_MAX_CHARS,
    CHAT_MAX_RELAY_BYTES,
    MAX_SDP_CHARS,
    PROTOCOL_VERSION,
    frame,
)
from signaling.presence import Member
from signaling.rooms import Conn, Hub, Room

log = logging.getLogger("casa.signaling")
ROME = ZoneInfo("Europe/Rome")


class Lifecycle:
    """The database-backed transitions of one instance."""

    def __init__(self, app: web.Application, hub: Hub, directory: Directory,
                 limits: dict[str, Any]) -> None:
        self.app = app
        self.hub = hub
        self.directory = directory
        self.limits = limits
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app[POOL]

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
        key = str(c.id)
        room = self.hub.rooms.get(key)
        if room is not None:
            room.consultation = c
            return room
        members = await presence.members(self.pool, c.id)
        names = {m.peer_id: await self.name_of(c, m) for m in members}
        room = self.hub.rooms.get(key)  # another join may have made it meanwhile
        if room is None:
            room = Room(key, c)
            room.members = {m.peer_id: m for m in members}
            room.names = names
            self.hub.rooms[key] = room
        return room

    async def name_of(self, c: Consultation, m: Member) -> str:
        if m.role == "patient":
            from server import patients

            p = await patients.get(self.pool, c.patient_id)
            return p.full_name if p else ""
        if m.staff_id is not None:
            s = await staff_store.get(self.pool, m.staff_id)
            return s.full_name if s else ""
        return str(m.detail.get("label") or "")

    async def join_probe(self, conn: Conn, who: Identity) -> None:
        """Probe peers meet in a room held in memory only: no booking, no waiting room."""
        room = self.hub.rooms.get(who.probe_room)
        if room is None:
            room = self.hub.rooms[who.probe_room] = Room(who.probe_room, None)
        member = Member(presence.new_peer_id(), "probe", "clinician", "in_call",
                        self.hub.instance_id, datetime.now(UTC), {})
        conn.peer_id, conn.room = member.peer_id, room
        room.local[member.peer_id] = conn
        room.members[member.peer_id] = member
        room.names[member.peer_id] = "probe"
        await conn.send(self.welcome(conn, room, member, False, None))
        await self.hub.apply_change(room.key, member, "joined", "probe")

    async def dashboard(self, conn: Conn, who: Identity) -> None:
        """A clinician's dashboard: the live waiting list of all their consultations today."""
        assert who.staff_id is not None
        today = datetime.now(ROME).date()
        conn.waiting = {}
        for c in await self.directory.list_for_clinician_day(self.pool, who.staff_id, today):
            if c.state == "ended":
                continue
            room = self.hub.rooms.get(str(c.id))
            if room is None:
                room = Room(str(c.id), c)
                for m in await presence.members(self.pool, c.id):
                    room.members[m.peer_id] = m
                    if m.role == "patient":
                        room.names[m.peer_id] = await self.name_of(c, m)
            conn.waiting[c.id] = room.waiting_entries()
        from signaling.rooms import dashboard_entries

        self.hub.track(conn)
        await conn.send(frame("welcome", version=PROTOCOL_VERSION, peer_id="", role="dashboard",
                              state="dashboard", room=None, peers=[], ice_servers=[],
                              resumed=False, since=None, limits=self.limits))
        await conn.send(frame("waiting_list", entries=dashboard_entries(conn)))

    # --- leaving ---

    async def dropped(self, conn: Conn) -> None:
        """The socket closed without ``leave``: keep the place for the grace period."""
        room = conn.room
        if room is None or conn.replaced or not conn.peer_id:
            return
        if room.local.get(conn.peer_id) is conn:
            del room.local[conn.peer_id]
        if room.consultation is None:   # probe room
            member = room.members.pop(conn.peer_id, None)
            if member is not None:
                await self.hub.apply_change(room.key, member, "left", "", "left")
            self._forget_if_empty(room)
            return
        member = room.members.get(conn.peer_id)
        if member is not None and await presence.drop(self.pool, conn.peer_id,
                                                      self.hub.instance_id):
            await self.hub.publish_change(room, replace(member, instance_id=None), "away")
            self.expire_later(room.consultation, member)
        self._forget_if_empty(room)

    def _forget_if_empty(self, room: Room) -> None:
        if not room.local and self.hub.rooms.get(room.key) is room:
            del self.hub.rooms[room.key]

    def expire_later(self, c: Consultation, member: Member) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            task = asyncio.ensure_future(self.expire(c, member))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

        handle = loop.call_later(presence.GRACE_S, fire)
        self._timers.add(handle)

    async def expire(self, c: Consultation, member: Member) -> None:
        """The grace is over: the person has left, unless they came back meanwhile."""
        async with self.pool.acquire() as db, db.transaction():
            if not await presence.expire(db, member.peer_id):
                return
            await self.directory.record_event(
                db, c.id, "participant_left", staff_id=member.staff_id,
                detail={"participant": member.participant, "reason": "timeout"})
        await self._announce_left(c, member, "timeout")

    async def _announce_left(self, c: Consultation, member: Member, reason: str) -> None:
        room = self.hub.rooms.get(str(c.id))
        if room is None:   # nobody here: a scratch room to compute what others must see
            room = Room(str(c.id), c)
            room.members = {m.peer_id: m for m in await presence.members(self.pool, c.id)}
            for m in room.members.values():
                if m.role == "patient":
                    room.names[m.peer_id] = await self.name_of(c, m)
        await self.hub.publish_change(room, member, "left", reason)
        if self.hub.rooms.get(room.key) is not room:
            await self.hub.dashboards_update(c.id, staff_ids(c), room.waiting_entries())

    async def leave(self, conn: Conn) -> None:
        room = conn.room
        if room is None or room.consultation is None:
            await conn.close(1000)
            return
        c = room.consultation
        member = room.members.get(conn.peer_id)
        conn.replaced = True   # nothing to keep for a deliberate leave
        if room.local.get(conn.peer_id) is conn:
            del room.local[conn.peer_id]
        async with self.pool.acquire() as db, db.transaction():
            if await presence.leave(db, conn.peer_id) and member is not None:
                await self.directory.record_event(
                    db, c.id, "participant_left", staff_id=member.staff_id,
                    detail={"participant": member.participant, "reason": "left"})
        if member is not None:
            await self._announce_left(c, member, "left")
        self._forget_if_empty(room)
        await conn.close(1000)

    async def reaped(self, pairs: list[tuple[int, str]]) -> None:
        """Sockets of a dead instance: announce them away and start their grace."""
        for consultation_id, peer_id in pairs:
            c = await self.directory.get(self.pool, consultation_id)
            if c is None:
                continue
            room = self.hub.rooms.get(str(c.id)) or Room(str(c.id), c)
            if room.consultation is None:
                continue
            members = await presence.members(self.pool, c.id)
            room.members.update({m.peer_id: m for m in members})
            member = room.members.get(peer_id)
            if member is None:
                continue
            if member.role == "patient" and member.peer_id not in room.names:
                room.names[member.peer_id] = await self.name_of(c, member)
            await self.hub.publish_change(room, replace(member, instance_id=None), "away")
            self.expire_later(c, member)

    def cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

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
            if c.state == "ended" or c.booking_status == "cancelled":
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
