"""Probe rooms (``casa probe``): two synthetic peers, no booking, no waiting room, nothing in
the database. Behind several instances the two peers may land on different ones, so a probe
room's members are announced on the bus: an instance that hears of a new member of a probe
room it also holds answers once with its own members (``reply``), and relays between them go
by the bus like any other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from server.consultations.store import Consultation
from signaling import events, presence
from signaling.events import ProbeMember
from signaling.hub import Hub
from signaling.presence import Member
from signaling.rooms import Room, Socket
from signaling.states import Change, Place, Role

Welcome = Callable[[Socket, Room, Member, bool, "Consultation | None"], bytes]


class Probes:
    """Probe rooms of this instance."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def join(self, conn: Socket, who_room: str, welcome: Welcome) -> None:
        """A probe peer enters its room, held in memory only, and is announced everywhere."""
        room = self.hub.rooms.get(who_room)
        if room is None:
            room = self.hub.rooms[who_room] = Room(who_room, None)
        member = Member(presence.new_peer_id(), "probe", Role.CLINICIAN, Place.IN_CALL,
                        self.hub.instance_id, datetime.now(UTC), {}, 1)
        conn.peer_id, conn.room = member.peer_id, room
        room.local[member.peer_id] = conn
        room.names[member.peer_id] = "probe"
        conn.send(welcome(conn, room, member, False, None))
        self.hub.apply_change(room, member, Change.JOINED)
        self.hub.outbox.publish(ProbeMember(room=room.key, member=events.to_wire(member),
                                            change=Change.JOINED))

    def dropped(self, room: Room, conn: Socket) -> None:
        member = room.members.get(conn.peer_id)
        if member is not None:
            gone = replace(member, status=Place.LEFT, version=member.version + 1)
            self.hub.apply_change(room, gone, Change.LEFT, "left")
            self.hub.outbox.publish(ProbeMember(room=room.key, member=events.to_wire(gone),
                                                change=Change.LEFT))
        self.hub.forget_if_empty(room)

    def on_event(self, event: ProbeMember) -> None:
        """A probe member of another instance joined or left a probe room."""
        room = self.hub.rooms.get(event.room)
        if room is None or room.consultation is not None or not room.local:
            return
        member = events.from_wire(event.member)
        if event.change == Change.LEFT:
            self.hub.apply_change(room, member, Change.LEFT, "left")
            return
        if member.peer_id in room.members:
            return   # already known (the two instances announced each other at once)
        room.names[member.peer_id] = "probe"
        self.hub.apply_change(room, member, Change.JOINED)
        if not event.reply:
            for own in list(room.local.values()):
                m = room.members.get(own.peer_id)
                if m is not None:
                    self.hub.outbox.publish(ProbeMember(room=room.key, member=events.to_wire(m),
                                                        change=Change.JOINED, reply=True))
