"""The room registry of one instance: its sockets, each consultation's members as every
instance sees them, and the fan-out of changes to sockets here and to other instances.

A room's member list is copied before sending (no await while iterating shared state); state
changes that touch the database are in ``signaling.lifecycle``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from signaling import errors
from signaling.directory import Consultation, staff_ids
from signaling.messages import frame
from signaling.metrics import SignalMetrics
from signaling.presence import Member

log = logging.getLogger("casa.signaling.rooms")

# A well-behaved client answers a close frame at once; waiting longer only reads more input.
CLOSE_HANDSHAKE_S = 5.0
# A flooder's close: its transport is closed at once; this bounds the wait for aiohttp.
ABUSIVE_CLOSE_S = 0.05


class Conn:
    """One WebSocket. Kept small: thousands are open at once."""

    __slots__ = ("close_done", "closed", "err_count", "err_window", "kind", "lang", "last",
                 "participant", "peer_id", "replaced", "room", "session_hash", "staff_id",
                 "throttle_s", "throttle_window", "tokens", "transport", "waiting", "warned",
                 "ws")

    def __init__(self, ws: web.WebSocketResponse,
                 transport: asyncio.BaseTransport | None = None) -> None:
        self.ws = ws
        self.transport = transport
        self.kind = ""                 # patient, clinician, guest, dashboard, probe
        self.peer_id = ""
        self.participant = ""
        self.room: Room | None = None
        self.staff_id: int | None = None
        self.session_hash: bytes | None = None
        self.lang = "it"
        self.closed = False
        # Set once a close started by another task (logout, replace, end) has finished, so the
        # socket's own handler does not return (and drop the connection) in the middle of it.
        self.close_done: asyncio.Event | None = None
        self.replaced = False
        self.tokens = 0.0
        self.last = 0.0
        self.throttle_s = 0.0
        self.throttle_window = 0.0
        self.warned = False
        self.err_count = 0
        self.err_window = 0.0
        # Dashboards only: waiting entries by consultation id.
        self.waiting: dict[int, list[dict[str, Any]]] | None = None

    @property
    def in_call(self) -> bool:
        room = self.room
        if room is None:
            return False
        m = room.members.get(self.peer_id)
        return m is not None and m.status == "in_call"

    async def send(self, text: str) -> None:
        if self.closed:
            return
        try:
            await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            self.closed = True

    async def fail(self, kind: errors.SignalError, msg_id: str | None = None,
                   details: dict[str, Any] | None = None) -> None:
        """Send a catalogued error; close the socket when it is fatal."""
        await self.send(errors.error_frame(kind, msg_id, details))
        if kind in (errors.FLOODING, errors.TOO_MANY_ERRORS):
            await self.cut(kind.close_code)
        elif kind.fatal:
            await self.close(kind.close_code)

    async def cut(self, code: int) -> None:
        """Close an abusive peer without a close handshake: aiohttp would go on reading (and
        parsing) its flood while waiting for the peer's close frame, in a loop that need not
        yield while input is queued. Our close frame is written, then the transport closed."""
        self.closed = True
        closing = asyncio.ensure_future(self.ws.close(code=code))
        await asyncio.sleep(0)   # ws.close writes the close frame before its first wait
        if self.transport is not None:
            self.transport.close()   # flushes what is written; reads nothing more
        with contextlib.suppress(Exception):
            await asyncio.wait_for(closing, ABUSIVE_CLOSE_S)

    async def close(self, code: int = 1000, within: float = CLOSE_HANDSHAKE_S) -> None:
        """Close, waiting at most ``within`` for the peer's close frame: aiohttp reads (and
        parses) everything the peer still sends until then, which a flooder would abuse."""
        self.closed = True
        done = self.close_done = asyncio.Event()
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code=code), within)
        finally:
            done.set()


@dataclass
class Room:
    key: str                                   # str(consultation id), or "probe-..."
    consultation: Consultation | None          # None for probe rooms
    local: dict[str, Conn] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    setup_started: float | None = None         # admit time, for the set-up histogram

    def in_call(self, exclude: str = "") -> list[Member]:
        return [m for m in self.members.values() if m.status == "in_call" and m.peer_id != exclude]

    def peer_object(self, m: Member, viewer: Conn) -> dict[str, Any]:
        name: str | None = self.names.get(m.peer_id, "")
        if viewer.kind in ("patient", "guest"):
            if m.role == "patient":
                name = ""  # a patient's name goes to staff only
            elif m.role == "clinician" and self.consultation is not None \
                    and self.consultation.sensitive:
                # Psychological, psychiatric, violence-support: someone may see the patient's
                # screen, and a clinician's name can tell what the consultation is about.
                name = None
        return {"peer_id": m.peer_id, "role": m.role, "name": name,
                "connected": m.instance_id is not None}

    def waiting_entries(self) -> list[dict[str, Any]]:
        c = self.consultation
        if c is None:
            return []
        out = []
        for m in self.members.values():
            if m.role != "patient" or m.status != "waiting":
                continue
            out.append({"room": c.room_id, "consultation_id": c.id, "peer_id": m.peer_id,
                        "since": _iso(m.arrived_at), "from": m.detail.get("from", "home"),
                        "kiosk_id": m.detail.get("kiosk_id"),
                        "nurse_present": bool(m.detail.get("nurse_present")),
                        "language": c.patient_language, "name": self.names.get(m.peer_id, ""),
                        "service": c.service_code, "starts_at": _iso(c.starts_at),
                        "connected": m.instance_id is not None})
        return out


def _iso(value: datetime) -> str:
    return value.isoformat()


def member_to_wire(m: Member) -> dict[str, Any]:
    return {"peer_id": m.peer_id, "participant": m.participant, "role": m.role,
            "status": m.status, "instance_id": m.instance_id, "arrived_at": _iso(m.arrived_at),
            "detail": m.detail}


def member_from_wire(d: dict[str, Any]) -> Member:
    return Member(d["peer_id"], d["participant"], d["role"], d["status"], d["instance_id"],
                  datetime.fromisoformat(d["arrived_at"]), d["detail"])


class Hub:
    """Everything signalling holds in memory on one instance."""

    def __init__(self, metrics: SignalMetrics) -> None:
        self.instance_id = "i_" + secrets.token_urlsafe(9)
        self.metrics = metrics
        self.rooms: dict[str, Room] = {}
        self.conns: set[Conn] = set()
        self.dashboards: dict[int, set[Conn]] = {}
        self.sessions: dict[bytes, set[Conn]] = {}
        self.publish: Any = None   # Bus.publish once the bus runs; None on a lone test hub
        # Tasks that must outlive the socket handler that started them.
        self.background: set[asyncio.Task[None]] = set()
        metrics.bind(lambda: len(self.conns), self._count_waiting, self._count_in_call)

    def _count_waiting(self) -> int:
        return sum(1 for r in self.rooms.values() if r.waiting_entries())

    def _count_in_call(self) -> int:
        return sum(1 for r in self.rooms.values()
                   if any(m.role == "patient" for m in r.in_call()))

    def bus(self, kind: str, **fields: Any) -> None:
        if self.publish is not None:
            self.publish(kind, **fields)

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

    # --- fan-out of member changes (from this instance or from the bus) ---

    async def apply_change(self, room_key: str, member: Member, change: str, name: str,
                           reason: str = "", dashboards: bool = True) -> None:
        """Update this instance's view of a member and tell the local sockets concerned.

        change: joined (entered the call), waiting (entered the waiting room), resumed, away,
        admitted, sent_back, left."""
        room = self.rooms.get(room_key)
        if room is None:
            return
        before = room.members.get(member.peer_id)
        if change == "left":
            room.members.pop(member.peer_id, None)
        else:
            room.members[member.peer_id] = member
        if name:
            room.names[member.peer_id] = name
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
            await self.waiting_changed(room, dashboards=dashboards)

    async def waiting_changed(self, room: Room, dashboards: bool = True) -> None:
        """Send the consultation's waiting entries to its staff here (room and dashboards)."""
        c = room.consultation
        if c is None:
            return
        entries = room.waiting_entries()
        for conn in list(room.local.values()):
            if conn.kind == "clinician":
                await conn.send(frame("waiting_list", entries=entries))
        if dashboards:
            await self.dashboards_update(c.id, staff_ids(c), entries)

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

    async def end_local(self, room_key: str, by: str) -> None:
        room = self.rooms.pop(room_key, None)
        if room is None:
            return
        conns = list(room.local.values())
        room.local.clear()
        room.members.clear()
        text = frame("ended", by=by)
        for c in conns:
            c.replaced = True  # nothing left to mark as dropped
            await c.send(text)
        await asyncio.gather(*(c.close(1000) for c in conns))

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
            member = member_from_wire(event["member"])
            await self.apply_change(event["room"], member, event["change"],
                                    event.get("name", ""), event.get("reason", ""),
                                    dashboards=False)
            await self.dashboards_update(event["cid"], event["staff"], event["waiting"])
        elif kind == "direct":
            await self.direct_local(event["room"], event["to"], event["text"])
        elif kind == "replace":
            if event.get("target") == self.instance_id:
                await self.close_replaced(event["room"], event["peer_id"])
        elif kind == "ended":
            await self.end_local(event["room"], event.get("by", ""))
            await self.dashboards_update(event["cid"], event["staff"], [])
        elif kind == "invited":
            await self.invited(event["cid"], event["staff_id"], event["waiting"])

    async def invited(self, consultation_id: int, staff_id: int,
                      entries: list[dict[str, Any]]) -> None:
        await self.dashboards_update(consultation_id, [staff_id], entries)

    async def publish_change(self, room: Room, member: Member, change: str,
                             reason: str = "") -> None:
        """Apply a change here and send it to every other instance."""
        name = room.names.get(member.peer_id, "")
        await self.apply_change(room.key, member, change, name, reason)
        c = room.consultation
        if c is not None:
            self.bus("member", room=room.key, cid=c.id, member=member_to_wire(member),
                     change=change, name=name, reason=reason, staff=list(staff_ids(c)),
                     waiting=room.waiting_entries())


def dashboard_entries(conn: Conn) -> list[dict[str, Any]]:
    assert conn.waiting is not None
    out = [e for entries in conn.waiting.values() for e in entries]
    out.sort(key=lambda e: e["since"])
    return out
