"""Events from the other instances (``signaling.bus`` delivers them here, one at a time, in
the order each instance sent them) applied to this instance's rooms and sockets. Nothing here
waits for a socket (sends only queue); a name not yet known here is looked up first."""

from __future__ import annotations

from signaling import events
from signaling.events import (
    BusEvent,
    Direct,
    Ended,
    Invited,
    MemberChanged,
    ProbeMember,
    Relay,
    Replace,
)
from signaling.hub import Hub
from signaling.probes import Probes
from signaling.states import Place
from signaling.views import Views


class Inbound:
    """Applies the other instances' events here."""

    def __init__(self, hub: Hub, views: Views, probes: Probes) -> None:
        self.hub = hub
        self.views = views
        self.probes = probes

    async def on_event(self, event: BusEvent) -> None:
        hub = self.hub
        if isinstance(event, Relay):
            hub.relay_local(event.room, event.to, event.text.encode(), event.from_)
        elif isinstance(event, MemberChanged):
            room = hub.view(event.cid)
            if room is None:   # no socket and no dashboard here cares
                return
            member = events.from_wire(event.member)
            if member.status != Place.LEFT and room.newer(member):
                await self.views.name(room, member)
            hub.apply_change(room, member, event.change, event.reason, staff=event.staff)
        elif isinstance(event, Direct):
            hub.direct_local(event.room, event.to, event.text.encode())
        elif isinstance(event, Replace):
            if event.target == hub.instance_id:
                hub.close_replaced(event.room, event.peer_id)
        elif isinstance(event, Ended):
            room = hub.view(event.cid)
            if room is not None:
                hub.end_local(room, event.by, event.staff)
        elif isinstance(event, Invited):
            await self._invited(event)
        elif isinstance(event, ProbeMember):
            self.probes.on_event(event)

    async def _invited(self, event: Invited) -> None:
        """A colleague was added on another instance: later changes made here must reach
        the invitee too (the room's clinicians changed), and their dashboards here show it."""
        room = self.hub.view(event.cid)
        if room is not None:
            # Its clinicians changed: read the consultation again, not the whole room.
            c = await self.views.directory.get(self.views.pool, event.cid)
            if c is not None:
                room.consultation = c
        elif self.hub.dashboards.get(event.staff_id):
            room = await self.views.load_id(event.cid)
        if room is not None:
            self.hub.invited(event.cid, event.staff_id, room)
