"""A nurse's declaration from the nurse console that she is with the kiosk patient (or no
longer is), told to the clinicians at once (docs/protocol.md, "waiting entry").

The declaration is kept on the consultation (the directory's ``set_nurse_present``), which
every later patient arrival reads, and written into the patient's place when she holds one; the
changed row is announced like any other change of a member (``Change.UPDATED``), so the
clinicians in the consultation and the dashboards of its staff, on every instance, get a new
waiting list."""

from __future__ import annotations

import asyncpg

from server.db import with_retry
from signaling import presence
from signaling.engine import Engine
from signaling.presence import Member
from signaling.states import Change


async def declare(engine: Engine, consultation_id: int, nurse_id: int | None) -> None:
    """``nurse_id`` is with the patient of this consultation (None: no nurse is any more)."""
    present = nurse_id is not None
    directory = engine.views.directory

    async def work(db: asyncpg.Connection) -> Member | None:
        # The consultation's lock first, as arrivals take it: a patient arriving now is
        # either written before (and updated here) or reads the declaration after.
        await directory.lock(db, consultation_id)
        await directory.set_nurse_present(db, consultation_id, nurse_id)
        return await presence.set_nurse_present(db, consultation_id, present)

    member = await with_retry(engine.pool, work)
    if member is None:
        return
    c = await directory.get(engine.pool, consultation_id)
    if c is None:
        return
    room = engine.hub.view(c.id)
    if room is None:
        room = await engine.views.load(c)
    await engine.views.name(room, member)
    engine.hub.publish_change(room, member, Change.UPDATED)
