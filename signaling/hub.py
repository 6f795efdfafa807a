"""Everything signalling holds in memory on one instance: its sockets, the rooms they are in,
the consultations its dashboards show, and the fan-out of changes to sockets here and to the
other instances (whose events arrive in ``on_bus_event``).

Bus events carry ids and states only: a name is looked up here, in the database, when a
member first appears (``resolve_name``) and cached in the room. Member lists are copied
before sending (no await while iterating shared state); changes that touch the database are
in ``signaling.lifecycle``."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from signaling import errors
from signaling.conn import Conn
from signaling.directory import Consultation, staff_ids
from signaling.messages import frame
from signaling.metrics import SignalMetrics
from signaling.pending import Pending
from signaling.presence import Member
from signaling.probes import on_probe_event
from signaling.rooms import ENDED, Room, member_from_wire, member_to_wire

log = logging.getLogger("casa.signaling.hub")

NameResolver = Callable[[Consultation, Member], Awaitable[str]]
ViewLoader = Callable[[int], Awaitable[Room | None]]


class Hub:
    """The in-memory state of one instance."""

    def __init__(self, metrics: SignalMetrics) -> None:
        self.instance_id = "i_" + secrets.token_urlsafe(9)
        self.metrics = metrics
        self.rooms: dict[str, Room] = {}
        # Consultations shown on a dashboard here, by id (the same Room as in ``rooms`` when
        # a socket here is in it), kept current by the bus like the rooms.
        self.views: dict[int, Room] = {}
        self.conns: set[Conn] = set()
        # Sockets not yet past hello, by client address (capped per address in ws.py).
        self.pending = Pending()
        self.dashboards: dict[int, set[Conn]] = {}
        self.sessions: dict[bytes, set[Conn]] = {}
        self.publish: Any = None   # Bus.publish once the bus runs; None on a lone test hub
        # Database look-ups, set by Lifecycle (the hub itself holds no pool).
        self.resolve_name: NameResolver | None = None
        self.load_view: ViewLoader | None = None
        # Tasks that must outlive the socket handler that started them.
        self.background: set[asyncio.Task[None]] = set()
        metrics.bind(lambda: len(self.conns), self._count_waiting, self._count_in_call,
                     lambda: len(self.pending))

    def _count_waiting(self) -> int:
        return sum(1 for r in self.rooms.values() if r.waiting_entries())

    def _count_in_call(self) -> int:
        return sum(1 for r in self.rooms.values()
                   if any(m.role == "patient" for m in r.in_call()))

    def bus(self, kind: str, reader: str | None = None, **fields: Any) -> None:
        """Publish to the other instances (``reader``: the only one that needs it)."""
        if self.publish is not None:
            self.publish(kind, reader, **fields)

    def view(self, consultation_id: int) -> Room | None:
        """This instance's Room for a consultation, if a socket or a dashboard here uses it."""
        return self.rooms.get(str(consultation_id)) or self.views.get(consultation_id)

    # --- sockets by session and dashboards ---

    def track(self, conn: Conn) -> None:
        self.conns.add(conn)
        if conn.session_hash is not None:
            self.sessions.setdefault(conn.session_hash, set()).add(conn)
        if conn.kind == "dashboard" and conn.staff_id is not None:
            self.dashboards.setdefault(conn.staff_id, set()).add(conn)

    def untrack(self, conn: Conn) -> None:
        self.conns.discard(conn)
        h = conn.session_hash
        if h is not None and h in self.sessions:
            self.sessions[h].discard(conn)
            if not self.sessions[h]:
                del self.sessions[h]
        s = conn.staff_id
        if conn.kind == "dashboard" and s is not None and s in self.dashboards:
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

    async def apply_change(self, room: Room, member: Member, change: str, reason: str = "",
                           staff: list[int] | None = None) -> None:
        """Update this instance's view of a member and tell the local sockets concerned.

        change: joined (entered the call), waiting (entered the waiting room), resumed, away,
        admitted, sent_back, left."""
        before = room.members.get(member.peer_id)
        if change == "left":
            room.members.pop(member.peer_id, None)
        else:
            room.members[member.peer_id] = member
        if member.role == "patient":
            room.note_patient(member, change)
        targets = [c for c in room.local.values() if c.peer_id != member.peer_id]
        was_in_call = before is not None and before.status == "in_call"
        for c in targets:
            if not c.in_call:
                continue
            obj = room.peer_object(member, c)
            if change in ("joined", "admitted") or (change == "resumed"
                                                    and member.status == "in_call"
                                                    and not was_in_call):
                await c.send(frame("peer_joined", peer=obj))
            elif change == "resumed" and member.status == "in_call":
                await c.send(frame("peer_resumed", peer_id=member.peer_id))
            elif change == "away" and was_in_call:
                await c.send(frame("peer_away", peer_id=member.peer_id))
            elif change in ("left", "sent_back") and was_in_call:
                await c.send(frame("peer_left", peer_id=member.peer_id,
                                   reason=reason or change))
        own = room.local.get(member.peer_id)
        if own is not None and change == "admitted":
            peers = [room.peer_object(m, own) for m in room.in_call(member.peer_id)]
            await own.send(frame("admitted", peers=peers))
        elif own is not None and change == "sent_back":
            await own.send(frame("sent_back"))
        if member.role == "patient":
            await self.waiting_changed(room, staff)

    async def waiting_changed(self, room: Room, staff: list[int] | None = None,
                              refresh: bool = False) -> None:
        """Send the consultation's waiting entries to its clinicians here, and its patient's
        state to the dashboards here."""
        c = room.consultation
        if c is None:
            return
        extra = {"refresh": True} if refresh else {}
        text = frame("waiting_list", entries=room.waiting_entries(), **extra)
        for conn in list(room.local.values()):
            if conn.kind == "clinician":
                await conn.send(text)
        await self.dashboards_update(c.id, staff if staff is not None else staff_ids(c),
                                     room.dashboard_entries())

    async def dashboards_update(self, consultation_id: int, staff: tuple[int, ...] | list[int],
                                entries: list[dict[str, Any]]) -> None:
        for staff_id in staff:
            for conn in list(self.dashboards.get(staff_id, ())):
                if conn.waiting is None:
                    continue
                conn.waiting[consultation_id] = entries
                await conn.send(frame("waiting_list", entries=dashboard_entries(conn)))

    async def relay_local(self, room_key: str, to: str | None, text: str,
                          sender: str = "") -> None:
        """Deliver a relayed frame to this instance's socket(s) in the room."""
        room = self.rooms.get(room_key)
        if room is None:
            return
        if to is not None:
            target = room.local.get(to)
            if target is not None and target.in_call:
                await target.send(text)
                self.metrics.relayed += 1
            return
        for c in list(room.local.values()):
            if c.peer_id != sender and c.in_call:
                await c.send(text)
                self.metrics.relayed += 1

    async def direct_local(self, room_key: str, to: str, text: str) -> None:
        """A server message for one local socket, whatever its state (notices)."""
        room = self.rooms.get(room_key)
        target = room.local.get(to) if room is not None else None
        if target is not None:
            await target.send(text)

    async def end_local(self, room: Room, by: str, staff: list[int] | None = None) -> None:
        """The consultation ended: tell its sockets and dashboards here, then close the
        sockets (their close handshakes may take a while: dashboards do not wait for them)."""
        if self.rooms.get(room.key) is room:
            del self.rooms[room.key]
        conns = list(room.local.values())
        room.local.clear()
        room.last_patient = room.patient() or room.last_patient
        room.gone = ENDED
        room.members.clear()
        text = frame("ended", by=by)
        for conn in conns:
            conn.replaced = True  # nothing left to mark as dropped
            await conn.send(text)
        c = room.consultation
        if c is not None:
            await self.dashboards_update(c.id, staff if staff is not None else staff_ids(c),
                                         room.dashboard_entries())
        await asyncio.gather(*(conn.close(1000) for conn in conns))

    async def close_replaced(self, room_key: str, peer_id: str) -> None:
        room = self.rooms.get(room_key)
        old = room.local.pop(peer_id, None) if room is not None else None
        if old is not None:
            old.replaced = True
            await old.fail(errors.REPLACED)

    # --- events from other instances ---

    async def on_bus_event(self, event: dict[str, Any]) -> None:
        kind = event.get("k")
        if kind == "relay":
            await self.relay_local(event["room"], event.get("to"), event["text"],
                                   event.get("from", ""))
        elif kind == "member":
            room = self.view(int(event["cid"]))
            if room is None:   # no socket and no dashboard here cares
                return
            member = member_from_wire(event["member"])
            await self._name(room, member)
            await self.apply_change(room, member, event["change"], event.get("reason", ""),
                                    staff=list(event["staff"]))
        elif kind == "direct":
            await self.direct_local(event["room"], event["to"], event["text"])
        elif kind == "replace":
            if event.get("target") == self.instance_id:
                await self.close_replaced(event["room"], event["peer_id"])
        elif kind == "ended":
            room = self.view(int(event["cid"]))
            if room is not None:
                await self.end_local(room, event.get("by", ""), list(event["staff"]))
        elif kind == "invited":
            cid = int(event["cid"])
            room = self.view(cid)
            if room is not None and self.load_view is not None:
                # Its clinicians changed: later changes made here must reach the invitee too.
                fresh = await self.load_view(cid)
                room.consultation = fresh.consultation if fresh is not None else room.consultation
            await self.invited(cid, int(event["staff_id"]))
        elif kind == "probe":
            await on_probe_event(self, event)

    async def _name(self, room: Room, member: Member) -> None:
        if member.peer_id not in room.names and room.consultation is not None \
                and self.resolve_name is not None:
            room.names[member.peer_id] = await self.resolve_name(room.consultation, member)

    async def invited(self, consultation_id: int, staff_id: int,
                      room: Room | None = None) -> None:
        """A colleague was added to a consultation: their dashboards here now show it."""
        if not self.dashboards.get(staff_id):
            return
        room = room or self.view(consultation_id)
        if room is None and self.load_view is not None:
            room = await self.load_view(consultation_id)
        if room is None:
            return
        self.views[consultation_id] = room
        await self.dashboards_update(consultation_id, [staff_id], room.dashboard_entries())

    async def publish_change(self, room: Room, member: Member, change: str,
                             reason: str = "") -> None:
        """Apply a change here and send it to every other instance (ids only)."""
        await self.apply_change(room, member, change, reason)
        c = room.consultation
        if c is not None:
            self.bus("member", room=room.key, cid=c.id, member=member_to_wire(member),
                     change=change, reason=reason, staff=list(staff_ids(c)))


def dashboard_entries(conn: Conn) -> list[dict[str, Any]]:
    assert conn.waiting is not None
    out = [e for entries in conn.waiting.values() for e in entries]
    out.sort(key=lambda e: (e["starts_at"], e["room"]))
    return out
