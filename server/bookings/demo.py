"""Demo data: kiosks and rooms, clinicians' weekly hours, and a realistic week of bookings
across the five centres, including some happening right now, in every mode and service.
Idempotent: a database that already has bookings gets none added."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from itertools import cycle

import asyncpg
from aiohttp import web

from server import staff
from server.bookings import bookings, workflow
from server.bookings import context as bookings_context
from server.bookings.bookings import NewBooking
from server.keys import POOL
from server.staff import Role
from server.timeutil import ROME, local_instant

log = logging.getLogger("casa.bookings.demo")

CENTRES = ("gratosoglio", "san-siro", "mazzini", "molise-calvairate", "giambellino-lorenteggio")
INSERT_RESOURCE = """
INSERT INTO resources (centre_id, kind, name) VALUES ($1, $2, $3)
ON CONFLICT (centre_id, name) DO NOTHING
"""
INSERT_HOURS = """
INSERT INTO availability (staff_id, centre_id, weekday, starts, ends) VALUES ($1, $2, $3, $4, $5)
"""
SERVICES_FOR = {
    Role.GP: ("gp_visit", "gp_visit", "psychiatric_followup", "vaccination"),
    Role.PSYCHOLOGIST: ("psych_session", "violence_support", "psychiatric_followup"),
    Role.NURSE: ("nurse_visit", "vaccination", "nurse_visit"),
}
MODES = {"vaccination": ("in_person",)}


async def _resources(conn: asyncpg.Connection) -> None:
    for centre in CENTRES:
        for kind, name in (("kiosk", "Chiosco 1"), ("kiosk", "Chiosco 2"),
                           ("room", "Ambulatorio"), ("room", "Sala colloqui")):
            await conn.execute(INSERT_RESOURCE, centre, kind, name)


async def _hours(conn: asyncpg.Connection, people: list[staff.Staff]) -> None:
    if await conn.fetchval("SELECT count(*) FROM availability"):
        return
    for person in people:
        where = [c for c in CENTRES if c in person.centres] or list(CENTRES[:1])
        for weekday in range(6):  # Monday to Saturday
            centre = where[weekday % len(where)]
            await conn.execute(INSERT_HOURS, person.id, centre, weekday, time(8, 30),
                               time(13, 0))
            if weekday < 5:
                await conn.execute(INSERT_HOURS, person.id, centre, weekday, time(14, 0),
                                   time(18, 0))


DEMO_PAST = workflow.PastReason(None, "demo data: the past days of this week")
# Minutes from now of the consultation open now (its waiting room opens 15 minutes before
# its start) and of the one later today, in order of preference.
NOW_MINUTES = ((-5, 5, -15, 10), (75, 100, 125, 150, 180))


async def seed_demo(app: web.Application, now: datetime | None = None) -> None:
    """Add the bookings demo data (called by ``casa demo``) around ``now`` (the clock's)."""
    pool: asyncpg.Pool = app[POOL]
    people = [s for s in await staff.list_all(pool) if s.role.clinical]
    async with pool.acquire() as conn, conn.transaction():
        await _resources(conn)
        await _hours(conn, people)
    if await pool.fetchval("SELECT count(*) FROM bookings") or not people:
        return
    ctx = bookings_context.of_app(app)
    patient_ids = cycle([r["id"] for r in await pool.fetch("SELECT id FROM patients ORDER BY id")])
    kiosks: dict[str, list[int]] = {}
    for r in await pool.fetch("SELECT centre_id, id FROM resources WHERE kind = 'kiosk' "
                              "ORDER BY id"):
        kiosks.setdefault(r["centre_id"], []).append(r["id"])
    nurse_at = {c: next((n.id for n in people if n.role is Role.NURSE and c in n.centres), None)
                for c in CENTRES}
    # The desk of each centre checks the past week's patients in: care rests on that.
    everyone = await staff.list_all(pool)
    desk_at = {c: next((s.id for s in everyone if s.role is Role.COORDINATOR
                        and c in s.centres), None) for c in CENTRES}
    made = 0
    now = now or datetime.now(UTC)
    today = now.astimezone(ROME).date()
    monday = today - timedelta(days=today.weekday())
    # Right now: one consultation per clinician whose waiting room is open, one later today;
    # from home and at a kiosk in turn. These go first and the week fills in around them: the
    # other way round, the week's bookings at 9-11 and 15-16 took the clinician, the patient,
    # the kiosk or the nurse at most hours of a working day.
    for index, person in enumerate(people):
        where = [c for c in CENTRES if c in person.centres] or list(CENTRES[:1])
        video = cycle(s for s in SERVICES_FOR[person.role] if s not in MODES)
        modes_now = ("home_video", "kiosk_video")[::1 if index % 2 == 0 else -1]
        # Each at the first of a few times that clashes with nothing made so far (two
        # clinicians of one centre may want its nurse beside a kiosk at the same moment).
        for choices, mode in zip(NOW_MINUTES, modes_now, strict=True):
            service, patient = next(video), next(patient_ids)
            for minutes in choices:
                start = (now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
                one = await _one(ctx, pool, person, where[0], service, mode, start, patient,
                                 kiosks, nurse_at, now, invite=True)
                if one:
                    made += one
                    break
    for person in people:
        where = [c for c in CENTRES if c in person.centres] or list(CENTRES[:1])
        services = cycle(SERVICES_FOR[person.role])
        modes = cycle(("home_video", "kiosk_video", "in_person", "home_video"))
        for offset in range(7):
            day = monday + timedelta(days=offset)
            centre = where[day.weekday() % len(where)]
            for hour in (9, 10, 11, 15, 16):
                made += await _one(ctx, pool, person, centre, next(services), next(modes),
                                   local_instant(day, time(hour, 0)), next(patient_ids),
                                   kiosks, nurse_at, now, invite=False,
                                   desk=desk_at.get(centre))
    log.info("demo bookings", extra={"count": made})


async def _one(ctx: workflow.Context, pool: asyncpg.Pool, person: staff.Staff, centre: str,
               service: str, mode: str, start: datetime, patient: int,
               kiosks: dict[str, list[int]],
               nurse_at: dict[str, int | None], now: datetime, *, invite: bool,
               desk: int | None = None) -> int:
    mode = mode if mode in MODES.get(service, (mode,)) else MODES[service][0]
    # Each kiosk of the centre in turn until one is free.
    for kiosk in kiosks.get(centre, []) if mode == "kiosk_video" else [None]:
        nb = NewBooking(centre_id=centre, service_code=service, mode=mode, patient_id=patient,
                        clinician_id=person.id, starts_at=start, kiosk_id=kiosk,
                        nurse_id=(nurse_at.get(centre) if mode == "kiosk_video"
                                  and person.role is not Role.NURSE else None))
        try:
            b = await workflow.book(ctx, nb, created_by=None, send_invitations=invite,
                                    past=DEMO_PAST)
            break
        except bookings.BookingError:
            continue  # a clash in the generated week: try the next kiosk, or skip it
    else:
        return 0
    if b.ends_at < now:
        # The past of the week: most came, a few did not.
        final = "noshow" if b.id % 7 == 0 else "fulfilled"
        async with pool.acquire() as conn, conn.transaction():
            if final == "fulfilled":
                await bookings.set_status(conn, b.id, "arrived", by=desk)
            await bookings.set_status(conn, b.id, final, by=desk)
    return 1
