"""Appointment reminders: before each booked appointment, at the offsets of
``CASA_REMINDERS`` (the day before and an hour before unless configured), a reminder by SMS
and e-mail (the channels the patient has) goes into the invitation outbox, which sends it.

- **Once.** A reminder is claimed by inserting its row in ``booking_reminders`` (primary key:
  booking, offset, start) in the transaction that queues its messages: of two instances (or
  two passes) the second waits for the first's row and then inserts nothing.
- **For the present time only.** The claim names the booking's start, so a moved booking's
  reminders are due again for its new time, while the outbox expires an unsent reminder once
  its booking changes (``outbox.EXPIRE``): nothing goes out for the old time, and nothing once
  cancelled, since only booked appointments are reminded.
- **Not on top of the invitation.** A booking made or moved (``bookings.scheduled_at``) less
  than an offset before its start gets no reminder for that offset; a reminder that could not
  go out in time (the server was down) is sent late, but never once a shorter offset is due:
  the patient gets the latest one that still makes sense.

Texts: ``reminder_texts``. Time is injected (``CLOCK``): tests call ``send_due`` with the
instant they choose, and never sleep.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from server import background
from server.bookings import context as bookings_context
from server.bookings import invitations, outbox, reminder_texts, workflow
from server.consultations import credentials
from server.db import with_retry
from server.keys import CONFIG

log = logging.getLogger("casa.bookings.reminders")

# Tests set a clock here; the loop asks it for "now" at every pass.
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("reminders_clock")
# How often the loop looks for reminders that fell due: a reminder is at most this late.
POLL_S = 60.0
BATCH = 50

# Due: the offset's instant has passed, the next shorter offset's has not, the booking got its
# time before the offset's instant, and no reminder went out for this offset and start. Rows
# being changed right now (a reschedule or cancellation holds them) are skipped this pass.
CLAIM = """
WITH offsets AS (
    SELECT * FROM unnest($2::int[], $3::int[]) AS o(before_minutes, until_minutes)
), due AS (
    SELECT b.id, o.before_minutes, lower(b.during) AS starts_at
    FROM bookings b JOIN offsets o
      ON lower(b.during) - make_interval(mins => o.before_minutes) <= $1
     AND $1 < lower(b.during) - make_interval(mins => o.until_minutes)
     AND b.scheduled_at <= lower(b.during) - make_interval(mins => o.before_minutes)
    WHERE b.status = 'booked' AND lower(b.during) > $1
      AND lower(b.during) <= $1 + make_interval(mins => $4)
      AND NOT EXISTS (SELECT 1 FROM booking_reminders r
                      WHERE r.booking_id = b.id AND r.before_minutes = o.before_minutes
                        AND r.starts_at = lower(b.during))
    ORDER BY lower(b.during), b.id LIMIT $5
    FOR SHARE OF b SKIP LOCKED
)
INSERT INTO booking_reminders (booking_id, before_minutes, starts_at)
SELECT id, before_minutes, starts_at FROM due
ON CONFLICT DO NOTHING
RETURNING booking_id
"""
WHAT = """
SELECT b.id, b.mode, lower(b.during) AS starts_at, upper(b.during) AS ends_at,
       c.name AS centre_name, c.address AS centre_address, s.name AS service_name,
       s.sensitive, st.full_name AS clinician_name, p.language, p.phone, p.email,
       k.id AS consultation_id
FROM bookings b JOIN centres c ON c.id = b.centre_id JOIN services s ON s.code = b.service_code
JOIN staff st ON st.id = b.clinician_id JOIN patients p ON p.id = b.patient_id
LEFT JOIN consultations k ON k.booking_id = b.id
WHERE b.id = ANY($1::bigint[])
"""

Message = tuple[int | None, str, str, str | None, str, str | None]


def windows(offsets: Sequence[timedelta]) -> tuple[list[int], list[int]]:
    """Each offset in minutes with the next shorter one (0 after the last): an offset is due
    from its own instant until the next one's."""
    before = sorted({int(o.total_seconds() // 60) for o in offsets if o > timedelta(0)},
                    reverse=True)
    return before, [*before[1:], 0]


async def _messages(conn: asyncpg.Connection, ctx: workflow.Context,
                    r: asyncpg.Record) -> list[Message]:
    lang = invitations.message_language(r["language"])
    _ = ctx.catalogues.gettext(lang)
    token = None
    if r["consultation_id"] is not None and r["mode"] == "home_video":
        # Links are kept as hashes only: the reminder carries a new one, valid like the
        # invitation's for the join window (and revoked with it by a move or cancellation).
        token = await credentials.issue_link(conn, r["consultation_id"])
    query = "?lang=" + lang
    a = invitations.Appointment(
        booking_id=r["id"], centre_name=r["centre_name"], centre_address=r["centre_address"],
        service_name=r["service_name"], sensitive=r["sensitive"],
        clinician_name=r["clinician_name"], mode=r["mode"], starts_at=r["starts_at"],
        ends_at=r["ends_at"], join_url=f"{ctx.origin}/join/{token}{query}" if token else None,
        code=None, code_url=f"{ctx.origin}/join{query}" if token else None)
    out: list[Message] = []
    if r["phone"]:
        out.append((r["id"], "sms", r["phone"], None, reminder_texts.sms(a, _, lang), None))
    if r["email"]:
        subject, body = reminder_texts.email(a, _, lang)
        out.append((r["id"], "email", r["email"], subject, body, None))
    return out


async def send_due(ctx: workflow.Context, offsets: Sequence[timedelta], now: datetime) -> int:
    """Queue every reminder due at ``now``; returns how many bookings were reminded. Safe to
    run on every instance at once: each reminder is claimed once."""
    before, until = windows(offsets)
    if not before:
        return 0
    total = 0

    async def batch(conn: asyncpg.Connection) -> int:
        ids = [r["booking_id"] for r in await conn.fetch(CLAIM, now, before, until,
                                                          before[0], BATCH)]
        if ids:
            messages: list[Message] = []
            for r in await conn.fetch(WHAT, ids):
                messages += await _messages(conn, ctx, r)
            await outbox.enqueue_many(conn, messages)
        return len(ids)

    while True:
        n = await with_retry(ctx.pool, batch)
        total += n
        if n < BATCH:
            break
    if total:
        log.info("reminders queued", extra={"count": total})
        if ctx.wake is not None:
            ctx.wake()
    return total


async def pass_once(app: web.Application) -> int:
    """One pass of the loop: the reminders due at the clock's time."""
    clock = app.get(CLOCK)
    now = clock() if clock is not None else datetime.now(UTC)
    return await send_due(bookings_context.of_app(app), app[CONFIG].reminders, now)


async def run(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the reminders loop (none when ``CASA_REMINDERS`` is empty)."""
    if not app[CONFIG].reminders:
        yield
        return

    async def step() -> None:
        await pass_once(app)

    async with background.running("reminders") as tasks:
        tasks.every(POLL_S, step, "reminders pass", first_after=POLL_S)
        yield
