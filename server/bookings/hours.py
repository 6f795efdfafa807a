"""Whether a time lies within a clinician's hours at a centre: weekly hours and extra hours
there, minus leave (at that centre or everywhere). The same rows and the same arithmetic as the
free slots (``slots.free_time``, in Europe/Rome wall time), without the bookings: a clash is the
exclusion constraints' to refuse."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from server.bookings import slots
from server.timeutil import day_bounds, to_local

OUTSIDE_HOURS = "outside_hours"
LEAVE = "leave"


async def refusal(conn: asyncpg.Connection | asyncpg.Pool, clinician_id: int, centre_id: str,
                  starts_at: datetime, ends_at: datetime) -> str | None:
    """None when [starts_at, ends_at) is within the clinician's hours at the centre; else why
    not: ``LEAVE`` when an absence overlaps it, ``OUTSIDE_HOURS`` otherwise."""
    first = to_local(starts_at).date()
    last = to_local(ends_at - timedelta(microseconds=1)).date()
    days = (last - first).days + 1
    start, _ = day_bounds(first)
    _, end = day_bounds(last)
    weekly = await conn.fetch(slots.WEEKLY, centre_id, [clinician_id], first, last)
    exceptions = await conn.fetch(slots.EXCEPTIONS, centre_id, [clinician_id], start, end)
    if any(x["kind"] == "leave" and x["s"] < ends_at and starts_at < x["e"]
           for x in exceptions):
        return LEAVE
    free = slots.free_time(first, days, list(weekly), list(exceptions), [])
    if any(s <= starts_at and ends_at <= e for s, e in free):
        return None
    return OUTSIDE_HOURS
