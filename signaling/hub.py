"""Everything signalling holds in memory on one instance: its sockets, the rooms they are in,
the consultations its dashboards show, and the fan-out of changes to the sockets here and to
the other instances.

The fan-out never waits: a socket's ``send`` only queues (``signaling.conn``), so applying a
change is one synchronous step, which no other change can interleave with. Changes that touch
the database are made by ``signaling.arrivals``, ``signaling.departures`` and
``signaling.actions``; events from other instances come through ``signaling.inbound``."""

from __future__ import annotations

import secrets
from dataclasses import replace

import msgspec

from server.consultations.care import staff_on
from server.consultations.store import Consultation
from signaling import errors, events, frames
from signaling.bus import Outbox
from signaling.frames import WaitingEntry
from signaling.metrics import SignalMetrics
from signaling.pending import Pending
from signaling.presence import Member
from signaling.rooms import Room, Socket
from signaling.states import Change, EntryState, Kind, Place, Role


class Hub:
    """The in-memory state of one instance."""

    def __init__(self, metrics: SignalMetrics, outbox: Outbox,
                 instance_id: str | None = None) -> None:
        self.instance_id = instance_id or "i_" + secrets.token_urlsafe(9)
        self.metrics = metrics
        self.outbox = outbox
        self.rooms: dict[str, Room] = {}
        # Consultations shown on a dashboard here, by id (the same Room as in ``rooms`` when
        # a socket here is in it), kept current by the bus like the rooms.
        self.views: dict[int, Room] = {}
        self.conns: set[Socket] = set()
        # Sockets not yet past hello, by client address (capped per address in ws.py).
        self.pending = Pending()
        self.dashboards: dict[int, set[Socket]] = {}
        self.sessions: dict[bytes, set[Socket]] = {}
        metrics.bind(lambda: len(self.conns), self._count_waiting, self._count_in_call,
                     lambda: len(self.pending))

    def _count_waiting(self) -> int:
        return sum(1 for r in self.rooms.values() if r.waiting_entries())

    def _count_in_call(self) -> int:
        return sum(1 for r in self.rooms.values()
                   if any(m.role == Role.PATIENT for m in r.in_call()))

    def view(self, consultation_id: int) -> Room | None:
        """This instance's Room for a consultation, if a socket or a dashboard here uses it."""
        return self.rooms.get(str(consultation_id)) or self.views.get(consultation_id)

    def room(self, c: Consultation) -> Room:
        """The consultation's room here for a socket, made now (empty, not ``filled``) if
        none. Synchronous, so two arrivals get the same room."""
        room = self.view(c.id)
        if room is None:
            room = Room(str(c.id), c)
        room.consultation = c
        self.rooms[room.key] = room
        return room

    def view_room(self, c: Consultation) -> Room:
        """The consultation's room here for a dashboard, made now (empty) if none."""
        room = self.view(c.id)
        if room is None:
            room = Room(str(c.id), c)
        self.views[c.id] = room
        return room

    def forget_if_empty(self, room: Room) -> None:
        if not room.local and not room.arriving and self.rooms.get(room.key) is room:
            del self.rooms[room.key]

    # --- sockets by session and dashboards ---

    def track(self, conn: Socket) -> None:
        self.conns.add(conn)
        if conn.session_hash is not None:
            self.sessions.setdefault(conn.session_hash, set()).add(conn)
        if conn.kind == Kind.DASHBOARD and conn.staff_id is not None:
            self.dashboards.setdefault(conn.staff_id, set()).add(conn)

    def untrack(self, conn: Socket) -> None:
        self.conns.discard(conn)
        h = conn.session_hash
        if h is not None and h in self.sessions:
            self.sessions[h].discard(conn)
            if not self.sessions[h]:
                del self.sessions[h]
        s = conn.staff_id
        if conn.kind == Kind.DASHBOARD and s is not None and s in self.dashboards:
            self.dashboards[s].discard(conn)
            if not self.dashboards[s]:
                del self.dashboards[s]
            self._prune_views()

    def _prune_views(self) -> None:
        shown = {cid for conns in self.dashboards.values() for c in conns
                 for cid in (c.waiting or ())}
        for cid in [cid for cid in self.views if cid not in shown]:
            del self.views[cid]

    # --- fan-out of member changes (from this instance or from the bus) ---

    def apply_change(self, room: Room, member: Member, change: Change, reason: str = "",
                     staff: list[int] | None = None) -> bool:
        """Update this instance's view of a member and tell the local sockets concerned.
        False (and nothing told) when this instance already knows a newer view of it."""
        before = room.members.get(member.peer_id)
        if not room.newer(member):
            return False
        room.merge(member)
        if member.role == Role.PATIENT:
            room.note_patient(member, member.status == Place.LEFT)
        was_in_call = before is not None and before.status == Place.IN_CALL
        peer = None
        for c in list(room.local.values()):
            if c.peer_id == member.peer_id or not c.in_call:
                continue
            if change in (Change.JOINED, Change.ADMITTED) or (
                    change == Change.RESUMED and member.status == Place.IN_CALL
                    and not was_in_call):
                peer = room.peer_object(member, c)
                c.send(frames.encode(frames.PeerJoined(peer=peer)))
            elif change == Change.RESUMED and member.status == Place.IN_CALL:
                c.send(frames.encode(frames.PeerResumed(peer_id=member.peer_id)))
            elif change == Change.AWAY and was_in_call:
                c.send(frames.encode(frames.PeerAway(peer_id=member.peer_id)))
            elif change in (Change.LEFT, Change.SENT_BACK) and was_in_call:
                c.send(frames.encode(frames.PeerLeft(peer_id=member.peer_id,
                                                     reason=reason or change)))
        own = room.local.get(member.peer_id)
        if own is not None and change == Change.ADMITTED:
            peers = [room.peer_object(m, own) for m in room.in_call(member.peer_id)]
            own.send(frames.encode(frames.Admitted(peers=peers)))
        elif own is not None and change == Change.SENT_BACK:
            own.send(frames.encode(frames.SentBack()))
        if member.role != Role.CLINICIAN:   # the patient, or a guest who may be waiting
            self.waiting_changed(room, staff)
        return True

    def waiting_changed(self, room: Room, staff: list[int] | None = None,
                        refresh: bool = False) -> None:
        """Send the consultation's waiting entries to its clinicians here, and its patient's
        state to the dashboards here."""
        c = room.consultation
        if c is None:
            return
        text = frames.encode(frames.WaitingList(entries=room.waiting_entries(),
                                                refresh=True if refresh else msgspec.UNSET))
        for conn in list(room.local.values()):
            if conn.kind == Kind.CLINICIAN:
                conn.send(text)
        self.dashboards_update(c.id, staff if staff is not None else list(staff_on(c)),
                               room.dashboard_entries())

    def dashboards_update(self, consultation_id: int, staff: list[int],
                          entries: list[WaitingEntry]) -> None:
        for staff_id in staff:
            for conn in list(self.dashboards.get(staff_id, ())):
                if conn.waiting is None:
                    continue
                conn.waiting[consultation_id] = entries
                if conn.ready:
                    send_dashboard(conn)

    def relay_local(self, room_key: str, to: str | None, data: bytes, sender: str = "") -> None:
        """Deliver a relayed frame to this instance's socket(s) in the room."""
        room = self.rooms.get(room_key)
        if room is None:
            return
        if to is not None:
            target = room.local.get(to)
            if target is not None and target.in_call:
                target.send(data)
                self.metrics.relayed += 1
            return
        for c in list(room.local.values()):
            if c.peer_id != sender and c.in_call:
                c.send(data)
                self.metrics.relayed += 1

    def direct_local(self, room_key: str, to: str, data: bytes) -> None:
        """A server message for one local socket, whatever its state (notices)."""
        room = self.rooms.get(room_key)
        target = room.local.get(to) if room is not None else None
        if target is not None:
            target.send(data)

    def end_local(self, room: Room, by: str, staff: list[int] | None = None) -> None:
        """The consultation ended: tell its sockets and dashboards here, then close the
        sockets (each after its ``ended``; nobody waits for their close handshakes)."""
        if self.rooms.get(room.key) is room:
            del self.rooms[room.key]
        conns = list(room.local.values())
        room.local.clear()
        room.last_patient = room.patient() or room.last_patient
        room.gone = EntryState.ENDED
        for m in room.members.values():
            room.versions[m.peer_id] = max(room.versions.get(m.peer_id, 0), m.version + 1)
        room.members.clear()
        text = frames.encode(frames.Ended(by=by))
        for conn in conns:
            conn.replaced = True  # nothing left to mark as dropped
            conn.send(text)
            conn.close(1000)
        c = room.consultation
        if c is not None:
            self.dashboards_update(c.id, staff if staff is not None else list(staff_on(c)),
                                   room.dashboard_entries())

    def close_replaced(self, room_key: str, peer_id: str) -> None:
        room = self.rooms.get(room_key)
        old = room.local.pop(peer_id, None) if room is not None else None
        if old is not None:
            old.replaced = True
            old.fail(errors.REPLACED)

    def publish_change(self, room: Room, member: Member, change: Change,
                       reason: str = "") -> None:
        """Apply a change here and send it to every other instance (ids only)."""
        self.apply_change(room, member, change, reason)
        c = room.consultation
        if c is not None:
            self.outbox.publish(events.MemberChanged(
                room=room.key, cid=c.id, member=events.to_wire(member), change=change,
                reason=reason, staff=list(staff_on(c))))

    def invited(self, consultation_id: int, staff_id: int, room: Room) -> None:
        """A colleague was added to a consultation: their dashboards here now show it."""
        if not self.dashboards.get(staff_id):
            return
        self.views[consultation_id] = room
        self.dashboards_update(consultation_id, [staff_id], room.dashboard_entries())


def away(member: Member) -> Member:
    return replace(member, instance_id=None)


def send_dashboard(conn: Socket, refresh: bool = False) -> None:
    """A dashboard's whole list (the protocol sends the full list, never a delta)."""
    assert conn.waiting is not None
    out = [e for entries in conn.waiting.values() for e in entries]
    out.sort(key=lambda e: (e.starts_at, e.room))
    conn.send(frames.encode(frames.WaitingList(entries=out,
                                               refresh=True if refresh else msgspec.UNSET)))
