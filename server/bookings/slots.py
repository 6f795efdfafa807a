"""Free slots: weekly availability plus extra hours, minus leave and live bookings.

Weekly hours are wall-clock times in Europe/Rome and are turned into instants day by day, so a
09:00 start stays 09:00 on both sides of a DST change (08:00 UTC in winter, 07:00 in summer) and
a range that spans the change is one hour shorter or longer, as it really is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from server.consultations import status
from server.timeutil import day_bounds, local_instant

Interval = tuple[datetime, datetime]
# A slot list covers at most this many days: enough for a two-week calendar view.
MAX_DAYS = 31


@dataclass(frozen=True)
class Slot:
    clinician_id: int
    starts_at: datetime
    ends_at: datetime


def subtract(free: list[Interval], busy: list[Interval]) -> list[Interval]:
    """``free`` minus ``busy``; both lists of [start, end) intervals."""
    out: list[Interval] = []
    for start, end in free:
        pieces = [(start, end)]
        for b_start, b_end in busy:
            nxt: list[Interval] = []
            for s, e in pieces:
                if b_end <= s or b_start >= e:
                    nxt.append((s, e))
                    continue
                if s < b_start:
                    nxt.append((s, b_start))
                if b_end < e:
                    nxt.append((b_end, e))
            pieces = nxt
        out.extend(pieces)
    return sorted(out)


def merge(intervals: list[Interval]) -> list[Interval]:
    """Union of intervals, sorted, touching ones joined."""
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def cut(free: list[Interval], length: timedelta, not_before: datetime) -> list[Interval]:
    """Consecutive slots of ``length`` from the start of each free interval."""
    out: list[Interval] = []
    for s, e in free:
        t = s
        while t + length <= e:
            if t >= not_before:
                out.append((t, t + length))
            t += length
    return out


WEEKLY = """
SELECT staff_id, weekday, starts, ends, valid_from, valid_until FROM availability
WHERE centre_id = $1 AND staff_id = ANY($2::bigint[]) AND valid_until >= $3 AND valid_from <= $4
"""
EXCEPTIONS = """
SELECT staff_id, kind, centre_id, lower(during) AS s, upper(during) AS e
FROM availability_exceptions
WHERE staff_id = ANY($2::bigint[]) AND during && tstzrange($3, $4)
  AND (centre_id = $1 OR (kind = 'leave' AND centre_id IS NULL))
"""
BUSY = """
SELECT clinician_id AS who, lower(during) AS s, upper(during) AS e FROM bookings
WHERE clinician_id = ANY($1::bigint[]) AND during && tstzrange($2, $3)
  AND status = ANY($4::text[])
"""
BUSY_PATIENT = """
SELECT lower(during) AS s, upper(during) AS e FROM bookings
WHERE patient_id = $1 AND during && tstzrange($2, $3) AND status = ANY($4::text[])
"""
CLINICIANS = """
SELECT s.id FROM staff s JOIN staff_centres sc ON sc.staff_id = s.id
JOIN services sv ON sv.code = $2
WHERE sc.centre_id = $1 AND s.active AND s.role = ANY(sv.roles)
  AND ($3::bigint IS NULL OR s.id = $3) ORDER BY s.id
"""
SERVICE_MINUTES = "SELECT default_minutes FROM services WHERE code = $1"


def free_time(day_from: date, days: int, weekly: list[asyncpg.Record],
              exceptions: list[asyncpg.Record], busy: list[Interval]) -> list[Interval]:
    """One clinician's free time at one centre over ``days`` days from ``day_from``."""
    hours: list[Interval] = []
    for i in range(days):
        day = day_from + timedelta(days=i)
        for w in weekly:
            if w["weekday"] == day.weekday() and w["valid_from"] <= day <= w["valid_until"]:
                hours.append((local_instant(day, w["starts"]), local_instant(day, w["ends"])))
    hours += [(x["s"], x["e"]) for x in exceptions if x["kind"] == "extra"]
    leave = [(x["s"], x["e"]) for x in exceptions if x["kind"] == "leave"]
    start, _ = day_bounds(day_from)
    _, end = day_bounds(day_from + timedelta(days=days - 1))
    window = [(max(s, start), min(e, end)) for s, e in merge(hours) if e > start and s < end]
    return subtract(window, merge(leave + busy))


async def list_slots(conn: asyncpg.Connection | asyncpg.Pool, *, centre_id: str,
                     service_code: str, day_from: date, days: int = 1,
                     clinician_id: int | None = None, patient_id: int | None = None,
                     now: datetime | None = None) -> list[Slot]:
    """Free slots of a service at a centre, by clinician, in time order. Slots last the
    service's default duration; with ``patient_id`` the patient's own bookings are avoided."""
    days = max(1, min(days, MAX_DAYS))
    minutes = await conn.fetchval(SERVICE_MINUTES, service_code)
    if minutes is None:
        return []
    ids = [r["id"] for r in await conn.fetch(CLINICIANS, centre_id, service_code, clinician_id)]
    if not ids:
        return []
    start, _ = day_bounds(day_from)
    _, end = day_bounds(day_from + timedelta(days=days - 1))
    last_day = day_from + timedelta(days=days - 1)
    weekly = await conn.fetch(WEEKLY, centre_id, ids, day_from, last_day)
    exceptions = await conn.fetch(EXCEPTIONS, centre_id, ids, start, end)
    live = list(status.LIVE)
    busy = await conn.fetch(BUSY, ids, start, end, live)
    patient_busy: list[Interval] = []
    if patient_id is not None:
        patient_busy = [(r["s"], r["e"]) for r in
                        await conn.fetch(BUSY_PATIENT, patient_id, start, end, live)]
    not_before = now or start
    out: list[Slot] = []
    for who in ids:
        free = free_time(day_from, days, [w for w in weekly if w["staff_id"] == who],
                         [x for x in exceptions if x["staff_id"] == who],
                         [(b["s"], b["e"]) for b in busy if b["who"] == who] + patient_busy)
        out += [Slot(who, s, e) for s, e in cut(free, timedelta(minutes=minutes), not_before)]
    return sorted(out, key=lambda s: (s.starts_at, s.clinician_id))
