"""Booking workflows: one transaction each, retried on deadlock, doing everything a booking
change implies: the booking, its consultation, the patient's credentials and the invitations.

Both the JSON API and the pages call these; so does the benchmark, to measure what the HTTP
layer costs on top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from server.bookings import bookings, hours, invitations, outbox
from server.bookings.bookings import Booking, JoinWindow, NewBooking
from server.bookings.model import OutsideHours
from server.consultations import credentials, status, store
from web.i18n import Catalogues

# A booking starting more than this before now is in the past. The margin lets a slot picked
# on the form just before it starts still be booked a moment later; time grants no access to
# records (``server.consultations.care``), so the margin opens nothing.
PAST_MARGIN = timedelta(minutes=2)
PAST_REASON_CHARS = (10, 500)
INSERT_PAST_REASON = """
INSERT INTO booking_past_reasons (booking_id, staff_id, starts_at, reason) VALUES ($1, $2, $3, $4)
"""


@dataclass(frozen=True)
class PastReason:
    """Why a coordinator books (or moves) an appointment into the past, e.g. to register a
    visit that took place while the system was down. Only coordinators give one (None: the
    system itself, e.g. the demo's past week)."""

    staff_id: int | None
    reason: str


def in_the_past(starts_at: datetime) -> bool:
    return starts_at.tzinfo is not None and starts_at < datetime.now(UTC) - PAST_MARGIN


def _refuse_past(starts_at: datetime, past: PastReason | None) -> None:
    if in_the_past(starts_at) and past is None:
        raise bookings.Invalid({"starts_at": "in the past: only a coordinator may place a "
                                             "booking there, giving past_reason"})


async def _record_past(conn: asyncpg.Connection, b: Booking, past: PastReason | None) -> None:
    if past is not None and in_the_past(b.starts_at):
        await conn.execute(INSERT_PAST_REASON, b.id, past.staff_id, b.starts_at, past.reason)


@dataclass(frozen=True)
class HoursReason:
    """Why a coordinator moves an appointment outside its clinician's hours (weekly hours,
    extra hours, leave): e.g. the GP agreed to see the patient after closing. Kept in
    ``booking_hours_overrides`` with who gave it."""

    staff_id: int
    reason: str


HOURS_REASON_CHARS = (10, 500)
INSERT_HOURS_REASON = """
INSERT INTO booking_hours_overrides (booking_id, staff_id, starts_at, ends_at, refusal, reason)
VALUES ($1, $2, $3, $4, $5, $6)
"""


@dataclass(frozen=True)
class Context:
    """What a workflow needs from the application."""

    pool: asyncpg.Pool
    secret_key: str
    window: JoinWindow
    origin: str  # public origin for the links in invitations
    catalogues: Catalogues
    # Wakes the invitation sender after a commit (None: nothing to wake, as in a script).
    wake: Callable[[], None] | None = None


APPOINTMENT = """
SELECT c.name AS centre_name, c.address AS centre_address, c.phone AS centre_phone,
       s.name AS service_name, s.sensitive, st.full_name AS clinician_name, p.language, p.phone,
       p.email,
       (SELECT count(*) FROM outbox o WHERE o.booking_id = b.id) AS sent_before
FROM bookings b JOIN centres c ON c.id = b.centre_id JOIN services s ON s.code = b.service_code
JOIN staff st ON st.id = b.clinician_id JOIN patients p ON p.id = b.patient_id
WHERE b.id = $1
"""


async def _appointment(conn: asyncpg.Connection, ctx: Context, b: Booking, token: str | None,
                       code: str | None) -> tuple[invitations.Appointment, asyncpg.Record]:
    r = await conn.fetchrow(APPOINTMENT, b.id)
    # The pages behind the links open in the language of the message.
    lang = "?lang=" + invitations.message_language(r["language"])
    a = invitations.Appointment(
        booking_id=b.id, centre_name=r["centre_name"], centre_address=r["centre_address"],
        centre_phone=r["centre_phone"], service_name=r["service_name"], sensitive=r["sensitive"],
        clinician_name=r["clinician_name"], mode=b.mode, starts_at=b.starts_at,
        ends_at=b.ends_at, join_url=f"{ctx.origin}/join/{token}{lang}" if token else None,
        code=code, code_url=f"{ctx.origin}/join{lang}" if code else None,
        sequence=int(r["sent_before"]))
    return a, r


async def invite(conn: asyncpg.Connection, ctx: Context, b: Booking) -> None:
    """Issue a fresh link and code for a video booking and queue its invitations."""
    c = await store.get_by_booking(conn, b.id)
    token = code = None
    if c is not None:
        await credentials.revoke(conn, c.id, ("link", "code"))
        token = await credentials.issue_link(conn, c)
        code = await credentials.issue_code(conn, ctx.secret_key, c)
    await _queue_invitations(conn, ctx, b, token, code)


async def _queue_invitations(conn: asyncpg.Connection, ctx: Context, b: Booking,
                             token: str | None, code: str | None,
                             channels: tuple[str, ...] = ("sms", "email"),
                             kind: str = "invitation") -> int:
    """Queue the invitation on each of ``channels`` the patient has (her phone and e-mail as
    they are now); returns how many messages were queued."""
    a, r = await _appointment(conn, ctx, b, token, code)
    lang = invitations.message_language(r["language"])
    _ = ctx.catalogues.gettext(lang)
    messages: list[tuple[int | None, str, str, str | None, str, str | None]] = []
    if r["phone"] and "sms" in channels:
        messages.append((b.id, "sms", r["phone"], None, invitations.sms(a, _, lang), None))
    if r["email"] and "email" in channels:
        subject, body = invitations.email(a, _, lang)
        messages.append((b.id, "email", r["email"], subject, body, invitations.ics(a, _)))
    await outbox.enqueue_many(conn, messages, kind=kind)
    return len(messages)


async def _notify_cancelled(conn: asyncpg.Connection, ctx: Context, b: Booking) -> None:
    a, r = await _appointment(conn, ctx, b, None, None)
    lang = invitations.message_language(r["language"])
    _ = ctx.catalogues.gettext(lang)
    subject, body = invitations.cancellation(a, _, lang)
    if r["phone"]:
        await outbox.enqueue(conn, b.id, "sms", r["phone"], None, body, None,
                             kind="cancellation")
    if r["email"]:
        await outbox.enqueue(conn, b.id, "email", r["email"], subject, body,
                             invitations.ics(a, _, cancelled=True), kind="cancellation")


def _wake(ctx: Context) -> None:
    if ctx.wake is not None:
        ctx.wake()


async def book(ctx: Context, nb: NewBooking, *, created_by: int | None,
               send_invitations: bool = True, past: PastReason | None = None) -> Booking:
    """Create a booking with its consultation, credentials and invitations. The exclusion
    constraints decide every booking that is written: of attempts at one slot, one wins and
    the others are refused with the clash. A start in the past is refused without a
    coordinator's ``past`` reason."""
    _refuse_past(nb.starts_at, past)

    async def work(conn: asyncpg.Connection) -> Booking:
        b, consultation = await bookings.create_with_consultation(
            conn, nb, created_by=created_by, window=ctx.window, checked=checked)
        await _record_past(conn, b, past)
        if consultation is not None and send_invitations:
            # A new consultation has no credentials to revoke: issue both in one statement.
            opens, closes = ctx.window.around(b.starts_at, b.ends_at)
            token, code = await credentials.issue_link_and_code(
                conn, ctx.secret_key, consultation, opens, closes)
            await _queue_invitations(conn, ctx, b, token, code)
        return b

    # The check runs outside the transaction: a refused attempt costs one query and never
    # queues for the locks.
    async with ctx.pool.acquire() as conn:
        checked = await bookings.check(conn, nb)
        b = await bookings.with_retry_on(conn, work)
    _wake(ctx)
    return b


async def reschedule(ctx: Context, booking_id: int, starts_at: datetime,
                     ends_at: datetime | None, *, past: PastReason | None = None,
                     off_hours: HoursReason | None = None) -> Booking:
    """Move a booking; old links and codes stop working and new invitations go out (a notice
    of the new time for an in-person booking). Into the past only with a coordinator's
    ``past`` reason; outside the clinician's hours at the centre, or into their leave, only
    with a coordinator's ``off_hours`` reason, which is recorded."""
    _refuse_past(starts_at, past)
    async with ctx.pool.acquire() as conn:
        # Outside any transaction, like a new booking's check: a refusal queues for nothing.
        refused = await _off_hours(conn, booking_id, starts_at, ends_at)
    if refused is not None and off_hours is None:
        raise OutsideHours(refused)

    async def work(conn: asyncpg.Connection) -> Booking:
        b = await bookings.reschedule(conn, booking_id, starts_at, ends_at, window=ctx.window)
        await _record_past(conn, b, past)
        if refused is not None and off_hours is not None:
            await conn.execute(INSERT_HOURS_REASON, b.id, off_hours.staff_id, b.starts_at,
                               b.ends_at, refused, off_hours.reason)
        if b.video:
            c = await store.get_by_booking(conn, b.id)
            if c is not None:
                await credentials.revoke(conn, c.id, ("session",))
            await invite(conn, ctx, b)
        else:
            # No link nor code to renew: the patient still learns the new time.
            await _queue_invitations(conn, ctx, b, None, None)
        return b

    b = await bookings.with_retry(ctx.pool, work)
    _wake(ctx)
    return b


async def _off_hours(conn: asyncpg.Connection, booking_id: int, starts_at: datetime,
                     ends_at: datetime | None) -> str | None:
    """Why the new time is not within the clinician's hours (``hours.refusal``), or None.
    What the move itself refuses (no such booking, no time zone, a status that cannot move)
    is left to ``bookings.reschedule``, which says it better."""
    b = await bookings.get(conn, booking_id)
    if (b is None or b.status not in status.RESCHEDULABLE or starts_at.tzinfo is None
            or (ends_at is not None and ends_at.tzinfo is None)):
        return None
    # In UTC: Python adds to a Europe/Rome datetime by wall clock, wrong across a DST change.
    start = starts_at.astimezone(UTC)
    end = ends_at.astimezone(UTC) if ends_at is not None else start + (b.ends_at - b.starts_at)
    if end <= start:
        return None
    return await hours.refusal(conn, b.clinician_id, b.centre_id, start, end)


async def set_status(ctx: Context, booking_id: int, new: str,
                     reason: str | None = None, *, by: int | None) -> Booking:
    """Move a booking through its lifecycle; a cancellation revokes the patient's credentials
    and tells the patient. ``by`` (the staff member, None for the system) is recorded."""

    async def work(conn: asyncpg.Connection) -> Booking:
        b = await bookings.set_status(conn, booking_id, new, reason=reason, by=by)
        c = await store.get_by_booking(conn, b.id)
        if new in status.CALLED_OFF and c is not None:
            await credentials.revoke(conn, c.id)
        if new == "cancelled" and b.ends_at > datetime.now(b.ends_at.tzinfo):
            await _notify_cancelled(conn, ctx, b)
        return b

    b = await bookings.with_retry(ctx.pool, work)
    _wake(ctx)
    return b


# Earlier unsent invitations on a channel, replaced by a resend: blanked and never sent (the
# patient would get two messages, the older with a code that no longer works).
REPLACE_UNSENT = """
UPDATE outbox SET body = '', ics = NULL, last_error = 'replaced', next_attempt_at = 'infinity'
WHERE booking_id = $1 AND channel = $2 AND sent_at IS NULL AND next_attempt_at <> 'infinity'
  AND kind IN ('invitation', 'resend')
"""


async def new_code(conn: asyncpg.Connection, ctx: Context, b: Booking) -> str | None:
    """In the caller's transaction: a new 6-digit code for a video booking (the old code stops
    working at once; links are left alone), or None for a booking without a consultation."""
    c = await store.get_by_booking(conn, b.id)
    if c is None:
        return None
    await credentials.revoke(conn, c.id, ("code",))
    return await credentials.issue_code(conn, ctx.secret_key, c)


async def requeue_invitation(conn: asyncpg.Connection, ctx: Context, b: Booking,
                             channel: str) -> int:
    """In the caller's transaction: the invitation again on ``channel``, to the patient's
    phone or e-mail as they are now, with a new code and a new link (earlier links keep
    working: every message the patient already holds still opens the consultation). Earlier
    unsent invitations on the channel are retired. Returns how many were queued (0: the
    patient has no phone or e-mail)."""
    await conn.execute(REPLACE_UNSENT, b.id, channel)
    token = code = None
    c = await store.get_by_booking(conn, b.id)
    if c is not None:
        code = await new_code(conn, ctx, b)
        token = await credentials.issue_link(conn, c)
    return await _queue_invitations(conn, ctx, b, token, code, (channel,), "resend")


async def appointment(conn: asyncpg.Connection, ctx: Context, b: Booking,
                      code: str | None) -> tuple[invitations.Appointment, str]:
    """What an invitation says about ``b`` (with ``code``, no link), and the patient's
    language: the printed invitation's facts."""
    a, r = await _appointment(conn, ctx, b, None, code)
    return a, r["language"]
