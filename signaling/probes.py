"""Probe rooms (``casa probe``): two synthetic peers, no booking, no waiting room, nothing in
the database. Behind several instances the two peers may land on different ones, so a probe
room's members are announced on the bus: an instance that hears of a new member of a probe
room it also holds answers once with its own members (``reply``), and relays between them go
by the bus like any other."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from signaling import presence
from signaling.conn import Conn
from signaling.presence import Member
from signaling.rooms import Room, member_from_wire, member_to_wire

if TYPE_CHECKING:
    from signaling.auth import Identity
    from signaling.hub import Hub


class Probes:
    """The probe half of ``Lifecycle`` (a mixin sharing its hub)."""

    hub: Hub

    def welcome(self, conn: Conn, room: Room, member: Member, resumed: bool,
                c: Any) -> str:
        raise NotImplementedError

    async def join_probe(self, conn: Conn, who: Identity) -> None:
        """A probe peer enters its room, held in memory only, and is announced everywhere."""
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
        await self.hub.apply_change(room, member, "joined")
        self.hub.bus("probe", room=room.key, member=member_to_wire(member), change="joined")

    async def probe_dropped(self, room: Room, conn: Conn) -> None:
        member = room.members.get(conn.peer_id)
        if member is not None:
            await self.hub.apply_change(room, member, "left", "left")
            self.hub.bus("probe", room=room.key, member=member_to_wire(member), change="left")
        if not room.local and self.hub.rooms.get(room.key) is room:
            del self.hub.rooms[room.key]


async def on_probe_event(hub: Hub, event: dict[str, Any]) -> None:
    """A probe member of another instance joined or left a probe room."""
    room = hub.rooms.get(str(event["room"]))
    if room is None or room.consultation is not None or not room.local:
        return
    member = member_from_wire(event["member"])
    if event["change"] == "left":
        if member.peer_id in room.members:
            await hub.apply_change(room, member, "left", "left")
        return
    if member.peer_id in room.members:
        return   # already known (the two instances announced each other at once)
    room.names[member.peer_id] = "probe"
    await hub.apply_change(room, member, "joined")
    if not event.get("reply"):
        for own in list(room.local.values()):
            m = room.members.get(own.peer_id)
            if m is not None:
                hub.bus("probe", room=room.key, member=member_to_wire(m), change="joined",
                        reply=True)
