"""Entering: a consultation (waiting room or call), a dashboard, and the whole-instance
refresh after the bus was lost.

An arrival is one serialised step per consultation. On this instance the room's lock is held
from reading the room to the ``welcome``; in PostgreSQL the arrival's transaction takes the
consultation's row locks before anything else, so two people arriving at once in the same
consultation (on any instances) queue instead of deadlocking. The socket is registered in its
room before the first await after the commit, and its ``welcome`` says the newest state known
of it (an admit heard meanwhile included), so an admit can never be lost in between."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from records import audit
from server.config import Config
from server.consultations.status import CALLED_OFF
from server.consultations.store import Consultation
from server.db import with_retry
from signaling import errors, frames, presence, turn
from signaling.auth import Identity, check_window
from signaling.directory import Directory
from signaling.errors import ProtocolError
from signaling.events import Replace
from signaling.frames import Limits
from signaling.hub import Hub, send_dashboard
from signaling.messages import (
    CHAT_MAX_CHARS,
    CHAT_MAX_RELAY_BYTES,
    MAX_SDP_CHARS,
    PROTOCOL_VERSION,
)
from signaling.presence import Member
from signaling.probes import Probes
from signaling.rooms import Room, Socket
from signaling.states import Change, Kind, Place, Role
from signaling.views import Views, finished

ROME = ZoneInfo("Europe/Rome")
LIMITS = Limits(max_message_bytes=64 * 1024, chat_max_chars=CHAT_MAX_CHARS,
                chat_max_relay_bytes=CHAT_MAX_RELAY_BYTES, sdp_max_chars=MAX_SDP_CHARS,
                grace_s=presence.GRACE_S)


class Arrivals:
    """Sockets entering their consultation or dashboard on this instance."""

    def __init__(self, pool: asyncpg.Pool, config: Config, hub: Hub, views: Views,
                 directory: Directory, probes: Probes) -> None:
        self.pool = pool
        self.config = config
        self.hub = hub
        self.views = views
        self.directory = directory
        self.probes = probes

    async def enter(self, conn: Socket, who: Identity, nurse_present: bool | None) -> None:
        """Route an authenticated hello: probe, dashboard, or a consultation."""
        conn.kind = who.kind
        conn.staff_id = who.staff_id
        conn.session_hash = who.session_hash
        conn.participant = who.participant
        if who.kind == Kind.PROBE:
            self.hub.track(conn)
            self.probes.join(conn, who.probe_room, self.welcome)
            return
        if who.kind == Kind.DASHBOARD:
            await self.dashboard(conn, who)
            return
        c = who.consultation
        assert c is not None
        if who.kind == Kind.PATIENT:
            check_window(c)
        else:
            with contextlib.suppress(ProtocolError):
                check_window(c)  # staff and guests may open the room before the window
            if finished(c):
                raise ProtocolError(errors.CONSULTATION_ENDED)
            if time.time() > c.open_until().timestamp():
                raise ProtocolError(errors.TOO_LATE)
        detail: dict[str, Any] = {"lang": conn.lang}
        if who.kind == Kind.PATIENT:
            kiosk = c.mode == "kiosk_video"
            # The patient's own tick, or the nurse's declaration from her console.
            ticked = nurse_present if nurse_present is not None else kiosk and c.nurse_id
            detail.update({"from": "kiosk" if kiosk else "home", "kiosk_id": c.kiosk_id,
                           "nurse_present": bool(ticked) or c.nurse_present})
        elif who.kind == Kind.GUEST:
            detail["label"] = who.name
        self.hub.track(conn)
        await self.join(conn, who, detail)

    async def join(self, conn: Socket, who: Identity, detail: dict[str, Any]) -> None:
        """A socket enters its consultation (waiting or in the call) and gets ``welcome``."""
        c = who.consultation
        assert c is not None
        role = {Kind.PATIENT: Role.PATIENT, Kind.GUEST: Role.GUEST}.get(who.kind,
                                                                         Role.CLINICIAN)
        room = self.hub.room(c)
        room.arriving += 1
        try:
            await self._join(conn, who, detail, room, role)
        finally:
            room.arriving -= 1
            self.hub.forget_if_empty(room)

    async def _join(self, conn: Socket, who: Identity, detail: dict[str, Any], room: Room,
                    role: Role) -> None:
        c = who.consultation
        assert c is not None
        async with room.lock:
            if not room.filled:
                await self.views.fill(room, c, all_names=True)
                room.filled = True
            else:
                for m in list(room.members.values()):
                    await self.views.name(room, m)
            async def arrive(db: asyncpg.Connection) -> presence.Arrival:
                assert c is not None
                if not await self.directory.lock(db, c.id):
                    raise ProtocolError(errors.ROOM_NOT_FOUND)
                said = detail
                if (role == Role.PATIENT and c.mode == "kiosk_video"
                        and not detail.get("nurse_present")
                        and await self.directory.nurse_present(db, c.id)):
                    # The nurse declared herself present after this hello loaded ``c``.
                    said = {**detail, "nurse_present": True}
                # A sensitive consultation's guests wait to be admitted, like the patient.
                arrival = await presence.arrive(db, c.id, who.participant, role,
                                                self.hub.instance_id, said, waits=c.sensitive)
                if not arrival.resumed:
                    if role == Role.PATIENT:
                        await self.directory.record_event(db, c.id, "arrived")
                    else:
                        await self.directory.record_event(
                            db, c.id, "participant_joined", staff_id=who.staff_id,
                            detail={"participant": who.participant, "role": role})
                await _audit_join(db, who, c, arrival.resumed)
                return arrival

            arrival = await with_retry(self.pool, arrive)
            # From here to the welcome nothing awaits: no event can come in between.
            member = arrival.member
            room.names[member.peer_id] = who.name
            self.hub.close_replaced(room.key, member.peer_id)
            if arrival.previous_instance and arrival.previous_instance != self.hub.instance_id:
                self.hub.outbox.publish(Replace(room=room.key, peer_id=member.peer_id,
                                                target=arrival.previous_instance))
            conn.peer_id = member.peer_id
            conn.room = room
            room.local[member.peer_id] = conn
            change = Change.RESUMED if arrival.resumed else (
                Change.WAITING if member.status == Place.WAITING else Change.JOINED)
            newest = room.newer(member)
            if newest:
                self.hub.publish_change(room, member, change)
            # An admit (or any change) heard while this arrival was committing is newer than
            # the arrival itself: the welcome says where the person now is.
            current = room.members.get(member.peer_id, member)
            conn.send(self.welcome(conn, room, current, arrival.resumed, c))
            if current.status == Place.IN_CALL and room.setup_started is None \
                    and role == Role.CLINICIAN:
                room.setup_started = time.perf_counter()
            if conn.kind == Kind.CLINICIAN:
                conn.send(frames.encode(frames.WaitingList(entries=room.waiting_entries())))

    def welcome(self, conn: Socket, room: Room, member: Member, resumed: bool,
                c: Consultation | None) -> bytes:
        # Relay credentials end with the join window; someone coming back to a consultation
        # under way after it closed gets them until the consultation's own limit.
        expires = None
        if c is not None:
            closes = c.join_closes_at.timestamp()
            expires = closes if time.time() <= closes else c.open_until().timestamp()
        peers = ([room.peer_object(m, conn) for m in room.in_call(member.peer_id)]
                 if member.status == Place.IN_CALL else [])
        return frames.encode(frames.Welcome(
            version=PROTOCOL_VERSION, peer_id=member.peer_id, role=member.role,
            state=member.status, room=c.room_id if c is not None else room.key, peers=peers,
            ice_servers=turn.ice_servers(self.config, member.peer_id, expires),
            resumed=resumed, since=member.arrived_at.isoformat(), limits=LIMITS))

    # --- dashboards ---

    async def dashboard(self, conn: Socket, who: Identity) -> None:
        """A clinician's dashboard: the live state of all their consultations today. Tracked
        before it is filled, so no change made meanwhile is missed (its entries are sent once
        it has had its welcome)."""
        assert who.staff_id is not None
        conn.waiting = {}
        conn.ready = False
        self.hub.track(conn)
        await self.fill_dashboard(conn)
        conn.send(frames.encode(frames.Welcome(
            version=PROTOCOL_VERSION, peer_id="", role="dashboard", state="dashboard",
            room=None, peers=[], ice_servers=[], resumed=False, since=None, limits=LIMITS)))
        conn.ready = True
        send_dashboard(conn)

    async def fill_dashboard(self, conn: Socket) -> None:
        """(Re)compute a dashboard's entries from the rooms here or from the database."""
        assert conn.staff_id is not None and conn.waiting is not None
        today = datetime.now(ROME).date()
        listed = [c for c in await self.directory.list_for_clinician_day(self.pool,
                                                                         conn.staff_id, today)
                  if c.booking_status not in CALLED_OFF]
        rooms = [(c, self.hub.view_room(c)) for c in listed]
        missing = [c.id for c, room in rooms if not room.filled]
        found = await presence.patients(self.pool, missing) if missing else {}
        for c, room in rooms:
            if not room.filled:
                await self.views.fill(room, c, found.get(c.id), all_names=False)
                room.filled = True
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
            await self.views.fill(room, c, found.get(c.id), all_names=bool(room.local))
            if finished(c) and room.local:
                self.hub.end_local(room, "")
        for room in list(self.hub.rooms.values()):
            if room.consultation is not None:
                text = frames.encode(frames.WaitingList(entries=room.waiting_entries(),
                                                        refresh=True))
                for conn in list(room.local.values()):
                    if conn.kind == Kind.CLINICIAN:
                        conn.send(text)
        for conns in list(self.hub.dashboards.values()):
            for conn in list(conns):
                if conn.waiting is None:
                    continue
                await self.fill_dashboard(conn)
                send_dashboard(conn, refresh=True)


async def _audit_join(db: asyncpg.Connection, who: Identity, c: Consultation,
                      resumed: bool) -> None:
    """Record 'consultation_join' in records' append-only audit log."""
    kind = {Kind.CLINICIAN: "staff", Kind.PATIENT: "patient"}.get(who.kind, "system")
    await audit.append(db, action="consultation_join", actor_staff_id=who.staff_id,
                       actor_kind=kind, patient_id=c.patient_id, booking_id=c.booking_id,
                       detail={"participant": who.participant, "resumed": resumed})
