"""The bookings aggregate: create, reschedule, cancel and move bookings through their statuses.

Double booking is refused by PostgreSQL (exclusion constraints in migration 0100). Every write
first takes the advisory locks of ``locking`` and runs inside the caller's transaction
(``with_retry`` retries the rare deadlock or serialization failure).

The model, the validation and the locking live in ``model``, ``checks`` and ``locking``; their
names are re-exported here, so ``from server.bookings import bookings`` keeps working for every
caller (``bookings.Booking``, ``bookings.check``, ``bookings.with_retry`` ...).
"""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from server.bookings.checks import CHECK_REFS, check
from server.bookings.locking import (
    CONSTRAINT_CLASH,
    FIND_CLASH,
    FIND_CLASH_SQL,
    LOCK_CLINICIAN,
    LOCK_KIOSK,
    LOCK_PATIENT,
    LOCKS,
    any_clash,
    clash_from,
    lock_parties,
)
from server.bookings.model import (
    COLUMNS,
    GET,
    GET_FOR_UPDATE,
    MAX_MINUTES,
    MIN_MINUTES,
    MODES,
    VIDEO_MODES,
    BadTransition,
    Booking,
    BookingError,
    Clash,
    Invalid,
    JoinWindow,
    NewBooking,
    NotFound,
    get,
    row_to_booking,
)
from server.consultations import care, status, store
from server.db import MAX_ATTEMPTS, RETRYABLE, with_retry, with_retry_on
from server.timeutil import UTC

__all__ = [
    "CHECK_REFS", "COLUMNS", "CONSTRAINT_CLASH", "FIND_CLASH", "FIND_CLASH_SQL", "GET",
    "GET_FOR_UPDATE", "INSERT", "INSERT_OR_NOTHING", "LOCKS", "LOCK_CLINICIAN",
    "LOCK_KIOSK", "LOCK_PATIENT", "MAX_ATTEMPTS", "MAX_MINUTES", "MIN_MINUTES", "MODES",
    "RETRYABLE", "VIDEO_MODES", "BadTransition", "Booking", "BookingError", "Clash", "Invalid",
    "JoinWindow", "NewBooking", "NotFound", "any_clash", "check", "clash_from", "create",
    "create_with_consultation", "get", "lock_parties", "reschedule", "row_to_booking",
    "set_status", "with_retry", "with_retry_on",
]

log = logging.getLogger("casa.bookings")


INSERT = f"""
INSERT INTO bookings AS b (centre_id, service_code, mode, patient_id, clinician_id, kiosk_id,
                           nurse_id, during, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, tstzrange($8, $9), $10) RETURNING {COLUMNS}
"""


# ON CONFLICT DO NOTHING: an exclusion constraint that refuses the row makes the insert return
# nothing instead of raising, so no savepoint is needed to keep the transaction usable. The
# constraints still decide; nothing is inserted that they refuse.
INSERT_OR_NOTHING = INSERT.replace("RETURNING", "ON CONFLICT DO NOTHING RETURNING")


async def create(conn: asyncpg.Connection, nb: NewBooking, *, created_by: int | None,
                 window: JoinWindow, checked: tuple[datetime, datetime] | None = None) -> Booking:
    """Create a booking (and the consultation of a video booking) inside the caller's
    transaction. ``checked`` is the result of ``check`` when the caller ran it already.
    Raises Invalid or Clash."""
    booking, _consultation = await create_with_consultation(
        conn, nb, created_by=created_by, window=window, checked=checked)
    return booking


async def create_with_consultation(
        conn: asyncpg.Connection, nb: NewBooking, *, created_by: int | None, window: JoinWindow,
        checked: tuple[datetime, datetime] | None = None) -> tuple[Booking, int | None]:
    """``create``, also returning the new consultation's id (None for in-person bookings)."""
    starts_at, ends_at = checked or await check(conn, nb)
    await lock_parties(conn, nb.clinician_id, nb.patient_id, nb.kiosk_id)
    args = (nb.centre_id, nb.service_code, nb.mode, nb.patient_id, nb.clinician_id,
            nb.kiosk_id, nb.nurse_id, starts_at, ends_at, created_by)
    row = await conn.fetchrow(INSERT_OR_NOTHING, *args)
    if row is None:
        clash = await any_clash(conn, nb.clinician_id, nb.patient_id, nb.kiosk_id, starts_at,
                                ends_at)
        if clash is not None:
            raise clash
        # Refused, yet nothing overlaps now (the other booking was cancelled between the two
        # statements by a writer that skipped the locks): insert plainly and let the
        # constraint speak.
        try:
            async with conn.transaction():
                row = await conn.fetchrow(INSERT, *args)
        except asyncpg.ExclusionViolationError as exc:
            raise await clash_from(conn, exc, nb.clinician_id, nb.patient_id, nb.kiosk_id,
                                   starts_at, ends_at, 0) from None
    booking = row_to_booking(row)
    consultation = None
    if nb.mode in VIDEO_MODES:
        opens, closes = window.around(starts_at, ends_at)
        consultation = await store.create(conn, booking.id, opens, closes)
    log.info("booking created", extra={"booking_id": booking.id})
    return booking, consultation


SET_STATUS = """
UPDATE bookings SET status = $2, cancel_reason = coalesce($3, cancel_reason), updated_at = now()
WHERE id = $1
"""


async def set_status(conn: asyncpg.Connection, booking_id: int, new: str, *,
                     reason: str | None = None, by: int | None = None) -> Booking:
    """Move a booking to ``new`` if the FHIR lifecycle allows it; raises BadTransition, or
    Clash when the change makes a waiting booking live (waitlist -> booked) onto taken time.
    ``by`` is the staff member making the change (None: the system); it is recorded with the
    change, since a check-in by someone other than the clinician is a fact of care."""
    await care.name_status_actor(conn, care.status_actor(by))
    current = await get(conn, booking_id)
    if current is None:
        raise NotFound(str(booking_id))
    becomes_live = current.status not in status.LIVE and new in status.LIVE
    if becomes_live:
        # Like an insert: the constraints will be checked, so take the same locks first.
        await lock_parties(conn, current.clinician_id, current.patient_id, current.kiosk_id)
    r = await conn.fetchrow(GET_FOR_UPDATE, booking_id)
    old = r["status"]
    if not status.allowed(old, new):
        raise BadTransition(old, new)
    try:
        async with conn.transaction():
            await conn.execute(SET_STATUS, booking_id, new, reason)
    except asyncpg.ExclusionViolationError as exc:
        raise await clash_from(conn, exc, current.clinician_id, current.patient_id,
                               current.kiosk_id, current.starts_at, current.ends_at,
                               booking_id) from None
    booking = await get(conn, booking_id)
    assert booking is not None
    log.info("booking status", extra={"booking_id": booking_id, "status": new})
    return booking


SET_NURSE = """
UPDATE bookings SET nurse_id = $2, updated_at = now()
WHERE id = $1 AND mode = 'kiosk_video' RETURNING id
"""


async def set_nurse(conn: asyncpg.Connection, booking_id: int, nurse_id: int | None) -> bool:
    """The nurse who stays with the patient at the kiosk (None: nobody); False when the
    booking is not a kiosk booking. The caller checks who may hand over and audits it."""
    return await conn.fetchval(SET_NURSE, booking_id, nurse_id) is not None


RESCHEDULE = "UPDATE bookings SET during = tstzrange($2, $3), updated_at = now() WHERE id = $1"


async def reschedule(conn: asyncpg.Connection, booking_id: int, starts_at: datetime,
                     ends_at: datetime | None, *, window: JoinWindow) -> Booking:
    """Move a booking in time (keeping its length unless ``ends_at`` is given); the join window
    follows. Raises NotFound, Invalid, BadTransition or Clash."""
    current = await get(conn, booking_id)
    if current is None:
        raise NotFound(str(booking_id))
    await lock_parties(conn, current.clinician_id, current.patient_id, current.kiosk_id)
    r = await conn.fetchrow(GET_FOR_UPDATE, booking_id)
    b = row_to_booking(r)
    if b.status not in status.RESCHEDULABLE:
        raise BadTransition(b.status, "rescheduled")
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise Invalid({"starts_at": "must include a time zone offset"})
    starts_at = starts_at.astimezone(UTC)
    ends_at = ends_at.astimezone(UTC) if ends_at else starts_at + (b.ends_at - b.starts_at)
    minutes = (ends_at - starts_at).total_seconds() / 60
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise Invalid({"ends_at": f"a booking lasts between {MIN_MINUTES} and {MAX_MINUTES} "
                                  "minutes"})
    try:
        async with conn.transaction():
            await conn.execute(RESCHEDULE, booking_id, starts_at, ends_at)
    except asyncpg.ExclusionViolationError as exc:
        raise await clash_from(conn, exc, b.clinician_id, b.patient_id, b.kiosk_id, starts_at,
                               ends_at, booking_id) from None
    if b.video:
        opens, closes = window.around(starts_at, ends_at)
        await store.move_window(conn, booking_id, opens, closes)
    moved = await get(conn, booking_id)
    assert moved is not None
    log.info("booking rescheduled", extra={"booking_id": booking_id})
    return moved
