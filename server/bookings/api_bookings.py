"""API: create, list, read, reschedule, cancel and move bookings; FHIR export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from server import errors
from server.bookings import bookings, consultations, fhir, jsonio, paging, status, workflow
from server.bookings.access import (
    DESK_ROLES,
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
    CLASH_KINDS,
    PATIENT_NOT_FOUND,
)
from server.bookings.timeutil import day_bounds
from server.keys import CONFIG, POOL
from server.pages import translator
from server.staff import Role, Staff

# Status changes offered by the API besides cancel (which has its own operation).
STATUS_ACTIONS = frozenset({"checked-in", "arrived", "noshow", "fulfilled", "entered-in-error"})


def _ctx(request: web.Request) -> workflow.Context:
    return workflow.context(request.app, workflow.origin_of(request))


def booking_error(request: web.Request, exc: bookings.BookingError) -> errors.ApiError:
    """The catalogued error for a refused booking change; a clash names what clashes."""
    _ = translator(request)
    if isinstance(exc, bookings.Clash):
        kind = CLASH_KINDS[exc.what]
        return errors.ApiError(kind, _(kind.message),
                               {"clash": exc.what, "other_booking_id": exc.other_booking_id})
    if isinstance(exc, bookings.Invalid):
        return errors.ApiError(errors.VALIDATION, details={"fields": exc.problems})
    if isinstance(exc, bookings.BadTransition):
        return errors.ApiError(BAD_STATUS_CHANGE, details={"from": exc.old, "to": exc.new})
    return errors.ApiError(BOOKING_NOT_FOUND)


async def _visible(request: web.Request) -> Booking:
    bid = jsonio.an_id(request.match_info["booking_id"], "booking_id")
    assert bid is not None
    b = await bookings.get(request.app[POOL], bid)
    # Someone else's booking is "not found": its existence is not the caller's business.
    if b is None or not can_see(caller(request), b):
        raise errors.ApiError(BOOKING_NOT_FOUND)
    return b


async def _full(request: web.Request, b: Booking, status_code: int = 200) -> web.Response:
    c = await consultations.get_by_booking(request.app[POOL], b.id)
    return web.json_response(jsonio.booking_json(b, c), status=status_code)


def _past_reason(data: dict[str, Any], user: Staff) -> workflow.PastReason | None:
    """A coordinator's reason for placing a booking in the past; nobody else may give one
    (a clinician's booking in the past is simply refused)."""
    lo, hi = workflow.PAST_REASON_CHARS
    reason = jsonio.text(data.get("past_reason"), "past_reason", max_len=hi, required=False)
    if reason is None:
        return None
    if user.role is not Role.COORDINATOR:
        raise errors.ApiError(errors.FORBIDDEN)
    if len(reason.strip()) < lo:
        raise jsonio.invalid("past_reason", f"{lo} to {hi} characters")
    return workflow.PastReason(user.id, reason.strip())


@api()
async def create_booking(request: web.Request) -> web.Response:
    data = await jsonio.body(request)
    centre = jsonio.text(data.get("centre_id"), "centre_id", max_len=100)
    service = jsonio.text(data.get("service_code"), "service_code", max_len=100)
    mode = jsonio.text(data.get("mode"), "mode", max_len=20)
    patient = jsonio.an_id(data.get("patient_id"), "patient_id")
    clinician = jsonio.an_id(data.get("clinician_id"), "clinician_id")
    starts = jsonio.instant(data.get("starts_at"), "starts_at")
    ends = jsonio.instant(data.get("ends_at"), "ends_at", required=False)
    kiosk = jsonio.an_id(data.get("kiosk_id"), "kiosk_id", required=False)
    nurse = jsonio.an_id(data.get("nurse_id"), "nurse_id", required=False)
    pick = jsonio.text(data.get("patient_pick"), "patient_pick", max_len=64, required=False)
    assert centre and service and mode and patient and clinician and starts
    await require_centre(request, centre)
    user = caller(request)
    past = _past_reason(data, user)
    if not can_book(user, centre, clinician):
        raise errors.ApiError(errors.FORBIDDEN)
    # A booking makes its clinician someone who cares for the patient (and so a reader of
    # their notes): it may only be made for a patient the caller may already see, or one they
    # found by the full codice fiscale or registered (the booking form's pick). Anyone else is
    # "no such patient", as getPatient answers, so ids cannot be probed.
    if not (valid_pick(request.app[CONFIG].secret_key, user, patient, pick)
            or await may_see_patient(request.app[POOL], user, patient)):
        raise errors.ApiError(PATIENT_NOT_FOUND)
    nb = NewBooking(centre_id=centre, service_code=service, mode=mode, patient_id=patient,
                    clinician_id=clinician, starts_at=starts, ends_at=ends, kiosk_id=kiosk,
                    nurse_id=nurse)
    try:
        b = await workflow.book(_ctx(request), nb, created_by=user.id, past=past)
    except bookings.BookingError as exc:
        raise booking_error(request, exc) from None
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


def _list_params(request: web.Request, user: Staff) -> list[Any]:
    q = request.query
    centre = jsonio.text(q.get("centre"), "centre", max_len=100, required=False)
    clinician = jsonio.an_id(q.get("clinician"), "clinician", required=False)
    start = end = None
    # Absent means every day; present but empty is no date (422), not "every day".
    if q.get("day") is not None:
        start, end = day_bounds(jsonio.a_date(q.get("day"), "day", lo=2000))
    state = q.get("status")
    if state is not None and state not in status.STATUSES:
        raise jsonio.invalid("status", "a FHIR Appointment status")
    desk = user.role in DESK_ROLES
    return [centre, clinician, start, end, state, list(user.centres) if desk else [], user.id,
            desk]


@api()
async def list_bookings(request: web.Request) -> web.Response:
    """Bookings by centre, clinician, Rome day and status, within what the caller may see, a
    page at a time (``limit``, at most ``paging.MAX_LIMIT``; ``cursor`` = ``next_cursor``)."""
    user = caller(request)
    params = _list_params(request, user)
    limit = paging.limit(request.query.get("limit"))
    after = paging.decode(request.query.get("cursor"))
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
    data = await jsonio.body(request)
    starts = jsonio.instant(data.get("starts_at"), "starts_at")
    ends = jsonio.instant(data.get("ends_at"), "ends_at", required=False)
    past = _past_reason(data, caller(request))
    assert starts is not None
    try:
        moved = await workflow.reschedule(_ctx(request), b.id, starts, ends, past=past)
    except bookings.BookingError as exc:
        raise booking_error(request, exc) from None
    return await _full(request, moved)


@api()
async def cancel_booking(request: web.Request) -> web.Response:
    b = await _visible(request)
    _may_change(caller(request), b)
    data = await jsonio.body(request) if request.body_exists else {}
    reason = jsonio.text(data.get("reason"), "reason", max_len=500, required=False)
    try:
        done = await workflow.set_status(_ctx(request), b.id, "cancelled", reason,
                                          by=caller(request).id)
    except bookings.BookingError as exc:
        raise booking_error(request, exc) from None
    return await _full(request, done)


@api()
async def set_booking_status(request: web.Request) -> web.Response:
    """Check-in, no-show, fulfilled: desk staff, or the booking's own clinician."""
    b = await _visible(request)
    user = caller(request)
    if user.role not in DESK_ROLES and user.id not in (b.clinician_id, b.nurse_id):
        raise errors.ApiError(errors.FORBIDDEN)
    data = await jsonio.body(request)
    new = data.get("status")
    # Checked as text first: a JSON object or list is unhashable, and `in` a set would raise.
    if not isinstance(new, str) or new not in STATUS_ACTIONS:
        raise jsonio.invalid("status", "one of " + ", ".join(sorted(STATUS_ACTIONS)))
    if new == "noshow" and b.starts_at > datetime.now(UTC) + timedelta(minutes=1):
        raise errors.ApiError(BAD_STATUS_CHANGE, details={"reason": "not started yet"})
    try:
        done = await workflow.set_status(_ctx(request), b.id, new, by=user.id)
    except bookings.BookingError as exc:
        raise booking_error(request, exc) from None
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

