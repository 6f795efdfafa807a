"""Staff pages: the centre calendar (day and week, by clinician or by kiosk), the clinician's
"today" list across centres, the patient page, a booking's page with its actions, and the
calendar feed page. They read through ``views`` and write through ``workflow``, so a page and
the API can never disagree about what is allowed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from server import centres, errors, outcome, patients
from server.bookings import (
    availability,
    booking_form,
    bookings,
    calendar_feed,
    views,
    workflow,
)
from server.bookings import context as bookings_context
from server.bookings.access import (
    CARE_ROLES,
    can_book,
    can_see,
    may_see_patient,
    patient_pick,
    search_patients,
)
from server.bookings.api_bookings import STATUS_ACTIONS, hours_reason
from server.bookings.api_catalogue import SEARCH_LIMIT
from server.bookings.errors import BOOKING_NOT_FOUND, PATIENT_NOT_FOUND, booking_error
from server.consultations import store
from server.consultations.care import DESK_ROLES
from server.keys import CONFIG, POOL
from server.pages import current_staff, render, require_staff, translator
from server.request_info import own_origin
from server.staff import Role, Staff
from server.timeutil import ROME, day_bounds, to_local

CSS = "css/bookings.css"


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/bookings/calendar", calendar, name="bookings_calendar")
    r.add_get("/bookings/today", today, name="bookings_today")
    r.add_get("/bookings/new", booking_form.form, name="bookings_new")
    r.add_post("/bookings/new", booking_form.submit, name="bookings_new_submit")
    r.add_get("/bookings/availability", availability.page, name="bookings_availability")
    r.add_post("/bookings/availability", availability.submit, name="bookings_availability_post")
    r.add_get("/bookings/feed", feed_page, name="bookings_feed")
    r.add_post("/bookings/feed", feed_create, name="bookings_feed_create")
    r.add_get("/bookings/patients", patient_search, name="bookings_patients")
    # The search form posts: a name or codice fiscale in the URL would stay in history.
    r.add_post("/bookings/patients", patient_search, name="bookings_patients_search")
    r.add_get("/bookings/patients/{patient_id:\\d{1,18}}", patient_page, name="bookings_patient")
    r.add_get("/bookings/{booking_id:\\d{1,18}}", booking_page, name="bookings_booking")
    r.add_post("/bookings/{booking_id:\\d{1,18}}", booking_action, name="bookings_action")


def _day(value: str | None) -> date:
    try:
        d = date.fromisoformat(value) if value else None
    except ValueError:
        d = None
    if d is None or not 2000 <= d.year <= 2100:
        return datetime.now(ROME).date()
    return d


@require_staff(Role.COORDINATOR, Role.NURSE)
async def calendar(request: web.Request) -> web.StreamResponse:
    """A centre's day or week, one row per clinician (or per kiosk)."""
    user = current_staff(request)
    pool = request.app[POOL]
    mine = [c for c in await centres.list_all(pool) if c.id in user.centres]
    if not mine:
        return render(request, "bookings/calendar.html", centres=[], centre=None, css=CSS)
    centre = next((c for c in mine if c.id == request.query.get("centre")), mine[0])
    week = request.query.get("view") == "week"
    by_kiosk = request.query.get("by") == "kiosk"
    day = _day(request.query.get("day"))
    first = day - timedelta(days=day.weekday()) if week else day
    days = [first + timedelta(days=i) for i in range(7 if week else 1)]
    start, _ = day_bounds(days[0])
    _, end = day_bounds(days[-1])
    rows = await views.at_centre(pool, centre.id, start, end)
    if by_kiosk:
        lanes = [(k["id"], k["name"], None) for k in await views.kiosks_at(pool, centre.id)]
        key = "kiosk_id"
    else:
        # Each row headed with the person's own role (a psychologist is not "the doctor").
        lanes = [(c["id"], c["full_name"], c["role"])
                 for c in await views.clinicians_at(pool, centre.id)]
        key = "clinician_id"
    grid = {(lane, d): [r for r in rows if getattr(r, key) == lane
                        and to_local(r.starts_at).date() == d]
            for lane, _name, _role in lanes for d in days}
    step = timedelta(days=7 if week else 1)
    return render(request, "bookings/calendar.html", centres=mine, centre=centre, week=week,
                  by_kiosk=by_kiosk, day=day, days=days, lanes=lanes, grid=grid,
                  prev_day=(day - step).isoformat(), next_day=(day + step).isoformat(),
                  today=datetime.now(ROME).date().isoformat(), css=CSS)


@require_staff(*CARE_ROLES)
async def today(request: web.Request) -> web.StreamResponse:
    """The signed-in clinician's bookings of one day across all centres."""
    user = current_staff(request)
    day = _day(request.query.get("day"))
    start, end = day_bounds(day)
    rows = await views.for_staff(request.app[POOL], user.id, start, end)
    return render(request, "bookings/today.html", rows=rows, day=day,
                  prev_day=(day - timedelta(days=1)).isoformat(),
                  next_day=(day + timedelta(days=1)).isoformat(), css=CSS)


async def _search_page(request: web.Request) -> str:
    return "/bookings/patients"


async def _booking_page(request: web.Request) -> str:
    return f"/bookings/{int(request.match_info['booking_id'])}"


@outcome.form(_search_page)
@require_staff(*CARE_ROLES)
async def patient_search(request: web.Request) -> web.StreamResponse:
    user = current_staff(request)
    pool = request.app[POOL]
    if request.method == "POST":
        # Answered with a redirect (see server.outcome): the name or codice fiscale typed
        # stays out of the address and out of the history entry; the ids found go on.
        q = str((await request.post()).get("q", ""))[:100]
        hits = await search_patients(pool, user, q, SEARCH_LIMIT) if q else []
        raise outcome.redirect(request, "/bookings/patients", outcome.Outcome(
            keep={"found": [[p.id, in_scope] for p, in_scope in hits]}))
    q = str(request.query.get("q", ""))[:100]
    found = await search_patients(pool, user, q, SEARCH_LIMIT) if q else []
    last = outcome.take(request)
    if last is not None and "found" in last.keep:
        for pid, in_scope in last.keep["found"][:SEARCH_LIMIT]:
            p = await patients.get(pool, int(pid))
            if p is not None:
                found.append((p, bool(in_scope)))
    # A patient found only by the full codice fiscale is offered for booking, with the proof
    # the booking form asks for (it shows nobody else).
    secret = request.app[CONFIG].secret_key
    picks = {p.id: patient_pick(secret, user, p.id) for p, in_scope in found if not in_scope}
    return outcome.forget(request, render(
        request, "bookings/patients.html", q=q, found=found, picks=picks, css=CSS,
        searched=bool(q) or (last is not None and "found" in last.keep)))


def _visible_to(user: Staff, row: views.Row) -> bool:
    return can_see(user, row)


@require_staff(*CARE_ROLES)
async def patient_page(request: web.Request) -> web.StreamResponse:
    """A patient's details with upcoming and past bookings (those the user may see)."""
    user = current_staff(request)
    pool = request.app[POOL]
    p = await patients.get(pool, int(request.match_info["patient_id"]))
    # Out of the user's scope is "not found", as in the API.
    if p is None or not await may_see_patient(pool, user, p.id):
        raise errors.ApiError(PATIENT_NOT_FOUND)
    now = datetime.now(UTC)
    rows = [r for r in await views.for_patient(pool, p.id) if _visible_to(user, r)]
    return render(request, "bookings/patient.html", patient=p,
                  upcoming=[r for r in rows if r.ends_at > now][::-1],
                  past=[r for r in rows if r.ends_at <= now], css=CSS)


async def _row_for(request: web.Request) -> views.Row:
    row = await views.one(request.app[POOL], int(request.match_info["booking_id"]))
    if row is None or not _visible_to(current_staff(request), row):
        raise errors.ApiError(BOOKING_NOT_FOUND)
    return row


async def _history(request: web.Request, row: views.Row) -> list[dict[str, object]]:
    """The consultation's events, for the people who run and report on it."""
    c = await store.get_by_booking(request.app[POOL], row.id)
    if c is None:
        return []
    return [e | {"at": to_local(e["at"]).strftime("%d/%m %H:%M")}
            for e in await store.events(request.app[POOL], c.id)]


@require_staff(*CARE_ROLES)
async def booking_page(request: web.Request) -> web.StreamResponse:
    row = await _row_for(request)
    user = current_staff(request)
    history = await _history(request, row)
    last = outcome.take(request)
    return outcome.forget(request, render(
        request, "bookings/booking.html", status=last.status if last else 200, b=row,
        error=last.message if last else None, history=history,
        may_change=can_book(user, row.centre_id, row.clinician_id),
        may_override=user.role is Role.COORDINATOR,
        local_start=to_local(row.starts_at).strftime("%Y-%m-%dT%H:%M"), css=CSS))


@outcome.form(_booking_page)
@require_staff(*CARE_ROLES)
async def booking_action(request: web.Request) -> web.StreamResponse:
    """Check in, no-show, fulfilled, cancel or reschedule from the booking page."""
    row = await _row_for(request)
    user = current_staff(request)
    form = await request.post()
    action = str(form.get("action", ""))
    ctx = bookings_context.of_request(request)
    mine = user.id in (row.clinician_id, row.nurse_id)
    try:
        if action in STATUS_ACTIONS and (user.role in DESK_ROLES or mine):
            await workflow.set_status(ctx, row.id, action, by=user.id)
        elif action == "cancelled" and can_book(user, row.centre_id, row.clinician_id):
            reason = str(form.get("reason", ""))[:500] or None
            await workflow.set_status(ctx, row.id, "cancelled", reason, by=user.id)
        elif action == "reschedule" and can_book(user, row.centre_id, row.clinician_id):
            try:
                when = datetime.fromisoformat(str(form.get("starts_at", ""))).replace(
                    tzinfo=ROME)
            except ValueError:
                raise bookings.Invalid({"starts_at": "not a date and time"}) from None
            reason = str(form.get("hours_reason", "")).strip()[:500] or None
            if reason is not None and len(reason) < workflow.HOURS_REASON_CHARS[0]:
                _ = translator(request)
                raise outcome.redirect(request, f"/bookings/{row.id}", outcome.Outcome(
                    422, _("Write the reason in at least 10 characters.")))
            await workflow.reschedule(ctx, row.id, when, None,
                                      off_hours=hours_reason(reason, user))
        else:
            raise errors.ApiError(errors.FORBIDDEN)
    except bookings.BookingError as exc:
        err = booking_error(exc)
        _ = translator(request)
        # Back to the booking's page with the refusal; a cancellation's reason is not
        # carried (it is typed again).
        raise outcome.redirect(request, f"/bookings/{row.id}", outcome.Outcome(
            err.kind.status, err.message or _(err.kind.message))) from None
    raise web.HTTPSeeOther(f"/bookings/{row.id}")


@require_staff(Role.GP, Role.PSYCHOLOGIST, Role.NURSE)
async def feed_page(request: web.Request) -> web.StreamResponse:
    return render(request, "bookings/feed.html", url=None, css=CSS)


@require_staff(Role.GP, Role.PSYCHOLOGIST, Role.NURSE)
async def feed_create(request: web.Request) -> web.StreamResponse:
    """A new secret feed address, shown once; the previous one stops working."""
    token = await calendar_feed.new_feed(request.app[POOL], current_staff(request).id)
    url = calendar_feed.feed_url(own_origin(request), token)
    return render(request, "bookings/feed.html", url=url, css=CSS)
