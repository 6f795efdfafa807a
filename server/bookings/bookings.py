"""The bookings aggregate: create, reschedule, cancel and move bookings through their statuses.

Double booking is refused by PostgreSQL (exclusion constraints in migration 0100). Under
contention an exclusion constraint alone lets concurrent inserters deadlock on each other, so
every write first takes transaction-level advisory locks on the clinician, patient and kiosk it
touches, in one fixed order; the constraint then answers at once. Callers run these functions
inside a transaction (``with_retry`` retries the rare deadlock or serialization failure).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg

from server.bookings import consultations, status
from server.bookings.timeutil import UTC

log = logging.getLogger("casa.bookings")

T = TypeVar("T")
MODES = ("home_video", "kiosk_video", "in_person")
VIDEO_MODES = frozenset({"home_video", "kiosk_video"})
# Bookings shorter than this are typing mistakes; longer than this are not consultations.
MIN_MINUTES, MAX_MINUTES = 5, 240
# Advisory lock classes (first key of pg_advisory_xact_lock(int, int)); the order is the locking
# order, the same for every writer, which is what keeps them from deadlocking.
LOCK_CLINICIAN, LOCK_PATIENT, LOCK_KIOSK = 0x0CA5B001, 0x0CA5B002, 0x0CA5B003
# Deadlocks and serialization failures are retried this many times, never shown to the user.
MAX_ATTEMPTS = 8
CONSTRAINT_CLASH = {
    "bookings_no_clinician_overlap": "clinician",
    "bookings_no_patient_overlap": "patient",
    "bookings_no_kiosk_overlap": "kiosk",
}


class BookingError(Exception):
    """Base of the failures the API turns into catalogued errors."""


class Invalid(BookingError):
    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("invalid booking")
        self.problems = problems


class Clash(BookingError):
    """The time is taken; ``what`` is 'clinician', 'patient' or 'kiosk'."""

    def __init__(self, what: str, other_booking_id: int | None) -> None:
        super().__init__(f"{what} already booked")
        self.what = what
        self.other_booking_id = other_booking_id


class BadTransition(BookingError):
    def __init__(self, old: str, new: str) -> None:
        super().__init__(f"status cannot change from {old} to {new}")
        self.old = old
        self.new = new


class NotFound(BookingError):
    pass


@dataclass(frozen=True)
class Booking:
    id: int
    centre_id: str
    service_code: str
    mode: str
    patient_id: int
    clinician_id: int
    kiosk_id: int | None
    nurse_id: int | None
    starts_at: datetime
    ends_at: datetime
    status: str
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def video(self) -> bool:
        return self.mode in VIDEO_MODES


@dataclass(frozen=True)
class NewBooking:
    centre_id: str
    service_code: str
    mode: str
    patient_id: int
    clinician_id: int
    starts_at: datetime
    ends_at: datetime | None = None  # the service's default duration when None
    kiosk_id: int | None = None
    nurse_id: int | None = None


@dataclass(frozen=True)
class JoinWindow:
    open_before: timedelta
    close_after: timedelta

    def around(self, starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
        return starts_at - self.open_before, ends_at + self.close_after


COLUMNS = """b.id, b.centre_id, b.service_code, b.mode, b.patient_id, b.clinician_id, b.kiosk_id,
b.nurse_id, lower(b.during) AS starts_at, upper(b.during) AS ends_at, b.status,
b.cancel_reason, b.created_at, b.updated_at"""
GET = f"SELECT {COLUMNS} FROM bookings b WHERE b.id = $1"
GET_FOR_UPDATE = GET + " FOR UPDATE"


def row_to_booking(r: asyncpg.Record) -> Booking:
    return Booking(**{k: r[k] for k in Booking.__dataclass_fields__})


async def get(conn: asyncpg.Connection | asyncpg.Pool, booking_id: int) -> Booking | None:
    r = await conn.fetchrow(GET, booking_id)
    return row_to_booking(r) if r else None


CHECK_REFS = """
SELECT s.default_minutes, s.modes, s.roles::text[] AS roles,
       (SELECT role::text FROM staff WHERE id = $2 AND active) AS clinician_role,
       EXISTS (SELECT 1 FROM staff_centres WHERE staff_id = $2 AND centre_id = $3)
           AS clinician_at_centre,
       EXISTS (SELECT 1 FROM patients WHERE id = $4) AS patient_exists,
       EXISTS (SELECT 1 FROM centres WHERE id = $3) AS centre_exists,
       (SELECT centre_id FROM resources WHERE id = $5 AND kind = 'kiosk' AND active)
           AS kiosk_centre,
       (SELECT role::text FROM staff WHERE id = $6 AND active) AS nurse_role,
       clash.id AS clash_id, clash.what AS clash_what
FROM services s
LEFT JOIN LATERAL (
    SELECT b.id, CASE WHEN b.clinician_id = $2 THEN 'clinician'
                      WHEN b.patient_id = $4 THEN 'patient' ELSE 'kiosk' END AS what
    FROM bookings b
    WHERE (b.clinician_id = $2 OR b.patient_id = $4 OR b.kiosk_id = $5)
      AND b.during && tstzrange($7::timestamptz, coalesce(
              $8::timestamptz, $7::timestamptz + make_interval(mins => s.default_minutes)))
      AND b.status = ANY($9::text[])
    ORDER BY (b.clinician_id = $2) DESC, (b.patient_id = $4) DESC LIMIT 1
) clash ON true
WHERE s.code = $1
"""


async def check(conn: asyncpg.Connection | asyncpg.Pool,
                nb: NewBooking) -> tuple[datetime, datetime]:
    """Validate a new booking against the catalogue and refuse a clash that is already
    committed, in one query and without a transaction; returns its [start, end).
    Raises Invalid or Clash.

    The clash seen here is a fast path: most clashes are plain to see, and answering them
    before any lock keeps them from queueing behind the advisory locks. The exclusion
    constraints still decide."""
    problems: dict[str, str] = {}
    if nb.starts_at.tzinfo is None or (nb.ends_at is not None and nb.ends_at.tzinfo is None):
        raise Invalid({"starts_at": "must include a time zone offset"})
    # In UTC: Python adds to a Europe/Rome datetime by wall clock, wrong across a DST change.
    starts_at = nb.starts_at.astimezone(UTC)
    given_end = nb.ends_at.astimezone(UTC) if nb.ends_at else None
    r = await conn.fetchrow(CHECK_REFS, nb.service_code, nb.clinician_id, nb.centre_id,
                            nb.patient_id, nb.kiosk_id, nb.nurse_id, starts_at, given_end,
                            list(status.LIVE))
    if r is None:
        raise Invalid({"service_code": "unknown service"})
    ends_at = given_end or starts_at + timedelta(minutes=r["default_minutes"])
    minutes = (ends_at - starts_at).total_seconds() / 60
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        problems["ends_at"] = f"a booking lasts between {MIN_MINUTES} and {MAX_MINUTES} minutes"
    if not r["centre_exists"]:
        problems["centre_id"] = "unknown centre"
    if nb.mode not in MODES:
        problems["mode"] = "unknown mode"
    elif nb.mode not in r["modes"]:
        problems["mode"] = "this service is not offered in this mode"
    if r["clinician_role"] is None:
        problems["clinician_id"] = "unknown clinician"
    elif r["clinician_role"] not in r["roles"]:
        problems["clinician_id"] = "this clinician's role does not deliver this service"
    elif not r["clinician_at_centre"]:
        problems["clinician_id"] = "this clinician does not work at this centre"
    if not r["patient_exists"]:
        problems["patient_id"] = "unknown patient"
    if nb.mode == "kiosk_video":
        if nb.kiosk_id is None:
            problems["kiosk_id"] = "a kiosk video booking needs a kiosk"
        elif r["kiosk_centre"] != nb.centre_id:
            problems["kiosk_id"] = "no such kiosk at this centre"
    elif nb.kiosk_id is not None:
        problems["kiosk_id"] = "only kiosk video bookings use a kiosk"
    if nb.nurse_id is not None:
        if nb.mode != "kiosk_video":
            problems["nurse_id"] = "only kiosk video bookings have an attached nurse"
        elif r["nurse_role"] != "nurse":
            problems["nurse_id"] = "not a nurse"
    if problems:
        raise Invalid(problems)
    if r["clash_id"] is not None:
        raise Clash(r["clash_what"], r["clash_id"])
    return starts_at, ends_at


LOCK = "SELECT pg_advisory_xact_lock($1::int, $2::int)"


async def lock_parties(conn: asyncpg.Connection, clinician_id: int, patient_id: int,
                       kiosk_id: int | None) -> None:
    """Serialise writers that share a clinician, patient or kiosk, always in the same order."""
    if not conn.is_in_transaction():
        raise RuntimeError("booking writes must run inside a transaction")
    keys = [(LOCK_CLINICIAN, clinician_id), (LOCK_PATIENT, patient_id)]
    if kiosk_id is not None:
        keys.append((LOCK_KIOSK, kiosk_id))
    for cls, ident in sorted(keys):
        # Ids are folded into int4; a collision only makes two writers wait for each other.
        await conn.execute(LOCK, cls, ident % 2_147_483_647)


FIND_CLASH = {
    "clinician": "clinician_id = $1",
    "patient": "patient_id = $1",
    "kiosk": "kiosk_id = $1",
}
FIND_CLASH_SQL = """
SELECT id FROM bookings WHERE {where} AND during && tstzrange($2, $3)
  AND status = ANY($4::text[]) AND id <> $5 ORDER BY lower(during) LIMIT 1
"""


INSERT = f"""
INSERT INTO bookings AS b (centre_id, service_code, mode, patient_id, clinician_id, kiosk_id,
                           nurse_id, during, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, tstzrange($8, $9), $10) RETURNING {COLUMNS}
"""


async def create(conn: asyncpg.Connection, nb: NewBooking, *, created_by: int | None,
                 window: JoinWindow, checked: tuple[datetime, datetime] | None = None) -> Booking:
    """Create a booking (and the consultation of a video booking) inside the caller's
    transaction. ``checked`` is the result of ``check`` when the caller ran it already.
    Raises Invalid or Clash."""
    starts_at, ends_at = checked or await check(conn, nb)
    await lock_parties(conn, nb.clinician_id, nb.patient_id, nb.kiosk_id)
    try:
        async with conn.transaction():  # a savepoint, so a clash leaves the caller's tx usable
            row = await conn.fetchrow(
                INSERT, nb.centre_id, nb.service_code, nb.mode, nb.patient_id, nb.clinician_id,
                nb.kiosk_id, nb.nurse_id, starts_at, ends_at, created_by)
    except asyncpg.ExclusionViolationError as exc:
        raise await clash_from(conn, exc, nb.clinician_id, nb.patient_id, nb.kiosk_id,
                               starts_at, ends_at, 0) from None
    booking = row_to_booking(row)
    if nb.mode in VIDEO_MODES:
        opens, closes = window.around(starts_at, ends_at)
        await consultations.create(conn, booking.id, opens, closes)
    log.info("booking created", extra={"booking_id": booking.id})
    return booking


async def clash_from(conn: asyncpg.Connection, exc: asyncpg.ExclusionViolationError,
                     clinician_id: int, patient_id: int, kiosk_id: int | None,
                     starts_at: datetime, ends_at: datetime, own_id: int) -> Clash:
    """Name what clashes (from the violated constraint) and the booking it clashes with."""
    what = CONSTRAINT_CLASH.get(exc.constraint_name or "", "clinician")
    ident = {"clinician": clinician_id, "patient": patient_id, "kiosk": kiosk_id}[what]
    other = await conn.fetchval(FIND_CLASH_SQL.format(where=FIND_CLASH[what]), ident, starts_at,
                                ends_at, list(status.LIVE), own_id)
    return Clash(what, other)


SET_STATUS = """
UPDATE bookings SET status = $2, cancel_reason = coalesce($3, cancel_reason), updated_at = now()
WHERE id = $1
"""


async def set_status(conn: asyncpg.Connection, booking_id: int, new: str, *,
                     reason: str | None = None) -> Booking:
    """Move a booking to ``new`` if the FHIR lifecycle allows it; raises BadTransition, or
    Clash when the change makes a waiting booking live (waitlist -> booked) onto taken time."""
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
        await consultations.move_window(conn, booking_id, opens, closes)
    moved = await get(conn, booking_id)
    assert moved is not None
    log.info("booking rescheduled", extra={"booking_id": booking_id})
    return moved


RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


async def with_retry(pool: asyncpg.Pool,
                     work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work(conn)`` in a transaction, retrying deadlocks and serialization failures with
    a short jittered back-off; they are the database's business, never the user's."""
    import random

    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await work(conn)
        except RETRYABLE:
            if attempt == MAX_ATTEMPTS:
                raise
            log.warning("booking transaction retried", extra={"attempt": attempt})
            await asyncio.sleep(random.uniform(0, 0.01 * 2 ** attempt))
    raise AssertionError("unreachable")
