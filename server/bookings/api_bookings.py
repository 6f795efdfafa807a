"""API: create, list, read, reschedule, cancel and move bookings; FHIR export.

A refused change (``bookings.BookingError``: a clash, invalid input, a status change the
lifecycle forbids) is not caught here: the error registry answers it (``booking_error`` in
``server.bookings.errors``), as it does for the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from aiohttp import web

from server import errors, validation
from server.bookings import bookings, fhir, jsonio, paging, schemas, workflow
from server.bookings import context as bookings_context
from server.bookings.access import (
    api,
    caller,
    can_book,
    can_see,
    may_see_patient,
    valid_pick,
)
from server.bookings.api_catalogue import require_centre
from server.bookings.bookings import Booking, NewBooking
from server.bookings.errors import (
    BAD_STATUS_CHANGE,
    BOOKING_NOT_FOUND,
    PATIENT_NOT_FOUND,
)
from server.consultations import store
from server.consultations.care import DESK_ROLES
from server.keys import CONFIG, POOL
from server.staff import Role, Staff
from server.timeutil import day_bounds

# Status changes offered by the API besides cancel (which has its own operation).
STATUS_ACTIONS = frozenset(get_args(schemas.StatusAction))


def _ctx(request: web.Request) -> workflow.Context:
    return bookings_context.of_request(request)


def _instants(starts: datetime, ends: datetime | None) -> None:
    """Years a booking can have (9999 is a typing mistake, past the database's arithmetic)."""
    validation.years(starts, "starts_at", 2000, 2100)
    validation.years(ends, "ends_at", 2000, 2100)


async def _visible(request: web.Request) -> Booking:
    bid = validation.path_id(request, "booking_id")
    b = await bookings.get(request.app[POOL], bid)
    # Someone else's booking is "not found": its existence is not the caller's business.
    if b is None or not can_see(caller(request), b):
        raise errors.ApiError(BOOKING_NOT_FOUND)
    return b


async def _full(request: web.Request, b: Booking, status_code: int = 200) -> web.Response:
    c = await store.get_by_booking(request.app[POOL], b.id)
    return web.json_response(jsonio.booking_json(b, c), status=status_code)


def _past_reason(reason: str | None, user: Staff) -> workflow.PastReason | None:
    """A coordinator's reason for placing a booking in the past; nobody else may give one
    (a clinician's booking in the past is simply refused)."""
    lo, hi = workflow.PAST_REASON_CHARS
    if reason is None:
        return None
    if user.role is not Role.COORDINATOR:
        raise errors.ApiError(errors.FORBIDDEN)
    if len(reason.strip()) < lo:
        raise errors.invalid({"past_reason": f"{lo} to {hi} characters"})
    return workflow.PastReason(user.id, reason.strip())


def hours_reason(reason: str | None, user: Staff) -> workflow.HoursReason | None:
    """A coordinator's reason for moving a booking outside its clinician's hours; nobody else
    may give one (as for ``past_reason``)."""
    lo, hi = workflow.HOURS_REASON_CHARS
    if reason is None:
        return None
    if user.role is not Role.COORDINATOR:
        raise errors.ApiError(errors.FORBIDDEN)
    if len(reason.strip()) < lo:
        raise errors.invalid({"hours_reason": f"{lo} to {hi} characters"})
    return workflow.HoursReason(user.id, reason.strip())


@api()
async def create_booking(request: web.Request) -> web.Response:
    data = await validation.body(request, schemas.NewBookingBody)
    _instants(data.starts_at, data.ends_at)
    centre, clinician, patient = data.centre_id.strip(), data.clinician_id, data.patient_id
    await require_centre(request, centre)
    user = caller(request)
    past = _past_reason(data.past_reason, user)
    if not can_book(user, centre, clinician):
        raise errors.ApiError(errors.FORBIDDEN)
    # A booking makes its clinician someone who cares for the patient (and so a reader of
    # their notes): it may only be made for a patient the caller may already see, or one they
    # found by the full codice fiscale or registered (the booking form's pick). Anyone else is
    # "no such patient", as getPatient answers, so ids cannot be probed.
    if not (valid_pick(request.app[CONFIG].secret_key, user, patient,
                       data.patient_pick.strip() if data.patient_pick else None)
            or await may_see_patient(request.app[POOL], user, patient)):
        raise errors.ApiError(PATIENT_NOT_FOUND)
    nb = NewBooking(centre_id=centre, service_code=data.service_code.strip(), mode=data.mode,
                    patient_id=patient, clinician_id=clinician, starts_at=data.starts_at,
                    ends_at=data.ends_at, kiosk_id=data.kiosk_id, nurse_id=data.nurse_id)
    b = await workflow.book(_ctx(request), nb, created_by=user.id, past=past)
    resp = await _full(request, b, 201)
    resp.headers["Location"] = f"/api/v1/bookings/{b.id}"
    return resp


@api()
async def get_booking(request: web.Request) -> web.Response:
    return await _full(request, await _visible(request))


# Keyset pagination ($9, $10: the cursor's start and id; $11: one more than the page).
LIST = f"""
SELECT {bookings.COLUMNS} FROM bookings b
WHERE ($1::text IS NULL OR b.centre_id = $1) AND ($2::bigint IS NULL OR b.clinician_id = $2)
  AND ($3::timestamptz IS NULL OR b.during && tstzrange($3, $4))
  AND ($5::text IS NULL OR b.status = $5)
  AND (b.centre_id = ANY($6::text[]) OR b.clinician_id = $7 OR b.nurse_id = $7)
  AND ($8 OR b.clinician_id = $7 OR b.nurse_id = $7)
  AND ($9::timestamptz IS NULL OR (lower(b.during), b.id) > ($9::timestamptz, $10::bigint))
ORDER BY lower(b.during), b.id LIMIT $11
"""


def _list_params(q: schemas.BookingsQuery, user: Staff) -> list[Any]:
    start = end = None
    # Absent means every day; present but empty is no date (422, by the query's type).
    if q.day is not None:
        validation.years(q.day, "day", 2000, 2100)
        start, end = day_bounds(q.day)
    desk = user.role in DESK_ROLES
    return [q.centre.strip() if q.centre else None, q.clinician, start, end, q.status,
            list(user.centres) if desk else [], user.id, desk]


@api()
async def list_bookings(request: web.Request) -> web.Response:
    """Bookings by centre, clinician, Rome day and status, within what the caller may see, a
    page at a time (``limit``, at most ``paging.MAX_LIMIT``; ``cursor`` = ``next_cursor``)."""
    user = caller(request)
    q = validation.query(request, schemas.BookingsQuery)
    params = _list_params(q, user)
    limit = q.limit
    after = paging.decode(q.cursor)
    rows = await request.app[POOL].fetch(LIST, *params, after[0] if after else None,
                                         after[1] if after else None, limit + 1)
    shown, more = paging.page([bookings.row_to_booking(r) for r in rows], limit)
    last = shown[-1] if more else None
    return web.json_response({
        "bookings": [jsonio.booking_json(b) for b in shown],
        "next_cursor": paging.encode(last.starts_at, last.id) if last else None})


def _may_change(user: Staff, b: Booking) -> None:
    if not can_book(user, b.centre_id, b.clinician_id):
        raise errors.ApiError(errors.FORBIDDEN)


@api()
async def reschedule_booking(request: web.Request) -> web.Response:
    b = await _visible(request)
    _may_change(caller(request), b)
    data = await validation.body(request, schemas.RescheduleBody)
    _instants(data.starts_at, data.ends_at)
    past = _past_reason(data.past_reason, caller(request))
    off_hours = hours_reason(data.hours_reason, caller(request))
    moved = await workflow.reschedule(_ctx(request), b.id, data.starts_at, data.ends_at,
                                      past=past, off_hours=off_hours)
    return await _full(request, moved)


@api()
async def cancel_booking(request: web.Request) -> web.Response:
    b = await _visible(request)
    _may_change(caller(request), b)
    data = (await validation.body(request, schemas.CancelBody) if request.body_exists
            else schemas.CancelBody())
    reason = data.reason.strip() if data.reason else None
    done = await workflow.set_status(_ctx(request), b.id, "cancelled", reason,
                                      by=caller(request).id)
    return await _full(request, done)


@api()
async def set_booking_status(request: web.Request) -> web.Response:
    """Check-in, no-show, fulfilled: desk staff, or the booking's own clinician."""
    b = await _visible(request)
    user = caller(request)
    if user.role not in DESK_ROLES and user.id not in (b.clinician_id, b.nurse_id):
        raise errors.ApiError(errors.FORBIDDEN)
    new = (await validation.body(request, schemas.StatusChangeBody)).status
    if new == "noshow" and b.starts_at > datetime.now(UTC) + timedelta(minutes=1):
        raise errors.ApiError(BAD_STATUS_CHANGE, details={"reason": "not started yet"})
    done = await workflow.set_status(_ctx(request), b.id, new, by=user.id)
    return await _full(request, done)


FHIR_INFO = """
SELECT s.name AS service_name, s.sensitive, c.name AS centre_name,
       p.given_name || ' ' || p.family_name AS patient_display, st.full_name AS clinician_display
FROM bookings b JOIN services s ON s.code = b.service_code JOIN centres c ON c.id = b.centre_id
JOIN patients p ON p.id = b.patient_id JOIN staff st ON st.id = b.clinician_id WHERE b.id = $1
"""


@api()
async def get_booking_fhir(request: web.Request) -> web.Response:
    b = await _visible(request)
    r = await request.app[POOL].fetchrow(FHIR_INFO, b.id)
    doc = fhir.appointment(b, **dict(r))
    return web.json_response(doc, content_type="application/fhir+json")

