"""Leaving a consultation: a dropped socket (its place kept for the grace), the end of the
grace, a deliberate ``leave``, and the sockets of a dead instance. Each writes PostgreSQL
first (the consultation's lock taken first, as every writer does), then tells the sockets here
and the other instances the row as it now is (``Hub.publish_change``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from server.background import Background
from server.consultations.store import Consultation
from server.db import with_retry
from signaling import presence
from signaling.directory import Directory
from signaling.hub import Hub
from signaling.presence import Member
from signaling.probes import Probes
from signaling.rooms import Socket
from signaling.states import Change, LeftReason
from signaling.views import Views

log = logging.getLogger("casa.signaling.departures")


class Departures:
    """Sockets and people leaving, on this instance."""

    def __init__(self, pool: asyncpg.Pool, hub: Hub, views: Views, directory: Directory,
                 probes: Probes, background: Background,
                 grace_s: float = presence.GRACE_S) -> None:
        self.pool = pool
        self.hub = hub
        self.views = views
        self.directory = directory
        self.probes = probes
        self.background = background
        self.grace_s = grace_s
        self._timers: set[asyncio.TimerHandle] = set()

    async def dropped(self, conn: Socket) -> None:
        """The socket closed without ``leave``: keep the place for the grace period."""
        room = conn.room
        if room is None or conn.replaced or not conn.peer_id:
            return
        if room.consultation is None:   # probe room
            if room.local.get(conn.peer_id) is conn:
                del room.local[conn.peer_id]
            self.probes.dropped(room, conn)
            return
        c = room.consultation
        # Under the room's lock: the same person arriving again on this instance (a reload)
        # either comes first and marks this socket replaced, or comes after this drop, whose
        # row update would otherwise clear the new socket's instance.
        async with room.lock:
            if conn.replaced:
                return
            conn.replaced = True   # recorded once (a socket given up on is recorded early)
            if room.local.get(conn.peer_id) is conn:
                del room.local[conn.peer_id]
            member = await presence.drop(self.pool, conn.peer_id, self.hub.instance_id)
            if member is not None:
                await self.views.name(room, member)
                self.hub.publish_change(room, member, Change.AWAY)
                self.expire_later(c, member)
        self.hub.forget_if_empty(room)

    def expire_later(self, c: Consultation, member: Member) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            self.background.spawn(self.expire(c, member), "grace expiry")

        handle = loop.call_later(self.grace_s, fire)
        self._timers.add(handle)

    async def expire(self, c: Consultation, member: Member) -> None:
        """The grace is over: the person has left, unless they came back meanwhile."""
        gone = await self._record_left(
            c, LeftReason.TIMEOUT, lambda db: presence.expire(db, member.peer_id, self.grace_s))
        if gone is not None:
            await self._announce(c, gone, Change.LEFT, LeftReason.TIMEOUT)

    async def _record_left(self, c: Consultation, reason: LeftReason,
                           take: Callable[[asyncpg.Connection], Awaitable[Member | None]]
                           ) -> Member | None:
        """Mark someone left (``take``: the presence write, which returns the row or None
        when there is nothing to do) and record it in the consultation's history, in one
        transaction that takes the consultation's lock first."""
        async def work(db: asyncpg.Connection) -> Member | None:
            await self.directory.lock(db, c.id)
            gone = await take(db)
            if gone is not None:
                await self.directory.record_event(
                    db, c.id, "participant_left", staff_id=gone.staff_id,
                    detail={"participant": gone.participant, "reason": reason})
            return gone

        return await with_retry(self.pool, work)

    async def _announce(self, c: Consultation, member: Member, change: Change,
                        reason: str = "") -> None:
        """Tell the sockets here (the room here, or one read from the database to compute
        what dashboards must see) and the other instances."""
        room = self.hub.view(c.id)
        if room is None:
            room = await self.views.load(c)
        await self.views.name(room, member)
        self.hub.publish_change(room, member, change, reason)

    async def leave(self, conn: Socket) -> None:
        room = conn.room
        conn.replaced = True   # nothing to keep for a deliberate leave
        if room is not None and room.local.get(conn.peer_id) is conn:
            del room.local[conn.peer_id]
        if room is None or room.consultation is None:
            if room is not None and conn.peer_id:   # a probe: gone at once, not after the close
                self.probes.dropped(room, conn)
            conn.close(1000)
            return
        c = room.consultation
        async with room.lock:
            gone = await self._record_left(c, LeftReason.LEFT,
                                           lambda db: presence.leave(db, conn.peer_id))
            if gone is not None:
                self.hub.publish_change(room, gone, Change.LEFT, LeftReason.LEFT)
        self.hub.forget_if_empty(room)
        conn.close(1000)

    async def reaped(self, pairs: list[tuple[int, str]]) -> None:
        """Sockets of a dead instance: announce them away and start their grace."""
        for consultation_id, peer_id in pairs:
            c = await self.directory.get(self.pool, consultation_id)
            if c is None:
                continue
            room = self.hub.view(c.id) or await self.views.load(c)
            rows = await presence.members(self.pool, c.id)
            member = next((m for m, kept in rows if m.peer_id == peer_id and kept), None)
            if member is None:
                continue
            await self.views.name(room, member)
            self.hub.publish_change(room, member, Change.AWAY)
            self.expire_later(c, member)

    def cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
