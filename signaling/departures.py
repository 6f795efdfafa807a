"""Leaving a consultation: a dropped socket (its place kept for the grace), the end of the
grace, a deliberate ``leave``, and the sockets of a dead instance. Each writes PostgreSQL
first, then tells the sockets here and the other instances (``Hub.publish_change``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from signaling import presence, views
from signaling.conn import Conn
from signaling.directory import Consultation
from signaling.presence import Member
from signaling.rooms import Room

if TYPE_CHECKING:
    import asyncpg

    from signaling.directory import Directory
    from signaling.hub import Hub


class Departures:
    """The leaving half of ``Lifecycle`` (a mixin: it shares its pool, hub and timers)."""

    hub: Hub
    directory: Directory
    _timers: set[asyncio.TimerHandle]

    @property
    def pool(self) -> asyncpg.Pool:
        raise NotImplementedError

    async def dropped(self, conn: Conn) -> None:
        """The socket closed without ``leave``: keep the place for the grace period."""
        room = conn.room
        if room is None or conn.replaced or not conn.peer_id:
            return
        if room.local.get(conn.peer_id) is conn:
            del room.local[conn.peer_id]
        if room.consultation is None:   # probe room
            await self.probe_dropped(room, conn)
            return
        member = room.members.get(conn.peer_id)
        if member is not None and await presence.drop(self.pool, conn.peer_id,
                                                      self.hub.instance_id):
            await self.hub.publish_change(room, replace(member, instance_id=None), "away")
            self.expire_later(room.consultation, member)
        self.forget_if_empty(room)

    async def probe_dropped(self, room: Room, conn: Conn) -> None:
        raise NotImplementedError

    def forget_if_empty(self, room: Room) -> None:
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

    async def _scratch_room(self, c: Consultation) -> Room:
        """The room here, or one read from the database to compute what others must see."""
        room = self.hub.view(c.id)
        if room is None:
            room = await views.load(self.pool, c)
        return room

    async def _announce_left(self, c: Consultation, member: Member, reason: str) -> None:
        room = await self._scratch_room(c)
        await self.hub.publish_change(room, member, "left", reason)

    async def leave(self, conn: Conn) -> None:
        room = conn.room
        if room is None or room.consultation is None:
            if room is not None and conn.peer_id:   # a probe: gone at once, not after the close
                conn.replaced = True
                if room.local.get(conn.peer_id) is conn:
                    del room.local[conn.peer_id]
                await self.probe_dropped(room, conn)
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
        self.forget_if_empty(room)
        await conn.close(1000)

    async def reaped(self, pairs: list[tuple[int, str]]) -> None:
        """Sockets of a dead instance: announce them away and start their grace."""
        for consultation_id, peer_id in pairs:
            c = await self.directory.get(self.pool, consultation_id)
            if c is None:
                continue
            room = await self._scratch_room(c)
            members = await presence.members(self.pool, c.id)
            room.members.update({m.peer_id: m for m in members})
            member = room.members.get(peer_id)
            if member is None:
                continue
            if member.peer_id not in room.names:
                room.names[member.peer_id] = await views.name_of(self.pool, c, member)
            await self.hub.publish_change(room, replace(member, instance_id=None), "away")
            self.expire_later(c, member)

    def cancel_timers(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
