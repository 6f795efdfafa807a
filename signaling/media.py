"""``media_report``: what a participant's call page says of its media (through a TURN relay,
fallen back to sound only), recorded as a consultation event ``media_path`` for the activity
report (docs/reports.md). Only two flags and the participant's role are kept: never an
address or a candidate."""

from __future__ import annotations

import asyncpg

from signaling import errors
from signaling.directory import Directory
from signaling.errors import ProtocolError
from signaling.messages import MediaReport
from signaling.rooms import Socket

EVENT = "media_path"


class MediaReports:
    """Records each participant's media path once per thing it adds."""

    def __init__(self, pool: asyncpg.Pool, directory: Directory) -> None:
        self.pool = pool
        self.directory = directory

    async def report(self, conn: Socket, msg: MediaReport) -> None:
        room = conn.room
        if room is None or not conn.in_call:
            raise ProtocolError(errors.NOT_IN_CALL)
        c = room.consultation
        member = room.members.get(conn.peer_id)
        if c is None or member is None:
            raise ProtocolError(errors.NOT_ALLOWED)   # a probe's room: nothing to report on
        # Flags only turn true: a report is kept when it is the participant's first or sets
        # one that was false, so each participant costs at most three rows however often
        # (or however maliciously) her page sends it; the frame rate limit paid the rest.
        before = room.media.get(conn.peer_id)
        now = (msg.relay or (before is not None and before[0]),
               msg.sound_only or (before is not None and before[1]))
        if before == now:
            return
        room.media[conn.peer_id] = now
        await self.directory.record_event(
            self.pool, c.id, EVENT, staff_id=conn.staff_id,
            detail={"relay": now[0], "sound_only": now[1], "role": str(member.role)})
