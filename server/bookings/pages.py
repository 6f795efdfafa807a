"""Staff pages: the centre calendar (day and week, by clinician or by kiosk), the clinician's
"today" list across centres, the patient page, a booking's page with its actions, and the
calendar feed page. They read through ``views`` and write through ``workflow``, so a page and
the API can never disagree about what is allowed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from records import audit
from server import centres, errors, outcome, patients
from server.bookings import (
    availability,
    booking_form,
    bookings,
    calendar_feed,
    invitation_actions,
    invitations,
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
from server.bookings.keys import SENDERS
from server.consultations import status, store
from server.consultations.care import DESK_ROLES
from server.consultations.languages import PATIENT_LANGUAGES, SPOKEN_LANGUAGES, direction
from server.keys import CONFIG, JINJA, LANG, POOL
from server.pages import catalogues, context, current_staff, render, require_staff, translator
from server.request_info import own_origin
from server.staff import Role, Staff
from server.timeutil import ROME, day_bounds, local_when_text, to_local

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
    r.add_post("/bookings/patients/{patient_id:\\d{1,18}}", patient_correct,
               name="bookings_patient_correct")
    r.add_get("/bookings/{booking_id:\\d{1,18}}", booking_page, name="bookings_booking")
    r.add_post("/bookings/{booking_id:\\d{1,18}}", booking_action, name="bookings_action")
    r.add_post("/bookings/{booking_id:\\d{1,18}}/invitation", invitation_action,
               name="bookings_invitation")
    r.add_get("/bookings/{booking_id:\\d{1,18}}/code", code_page, name="bookings_code")
    r.add_get("/bookings/{booking_id:\\d{1,18}}/print", print_page, name="bookings_print")


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
    last = outcome.take(request)
    ok = last is not None and last.status < 400
    return outcome.forget(request, render(
        request, "bookings/patient.html", status=last.status if last else 200, patient=p,
        upcoming=[r for r in rows if r.ends_at > now][::-1],
        past=[r for r in rows if r.ends_at <= now], css=CSS,
        spoken_languages=SPOKEN_LANGUAGES,
        corrected=last.keep.get("changed") if ok and last else None,
        error=last.message if last and not ok else None,
        fields=last.fields if last and not ok else {}))


async def _patient_page(request: web.Request) -> str:
    return f"/bookings/patients/{int(request.match_info['patient_id'])}"


@outcome.form(_patient_page)
@require_staff(*CARE_ROLES)
async def patient_correct(request: web.Request) -> web.StreamResponse:
    """Corrections of name, phone, e-mail and language by whoever may see the patient; audited
    with the names of the fields changed, never their values."""
    user = current_staff(request)
    pool = request.app[POOL]
    patient_id = int(request.match_info["patient_id"])
    form = await request.post()
    values = {f: str(form.get(f, ""))[:254] for f in patients.CORRECTABLE}
    async with pool.acquire() as conn, conn.transaction():
        p = await patients.get(conn, patient_id)
        if p is None or not await may_see_patient(conn, user, p.id):
            raise errors.ApiError(PATIENT_NOT_FOUND)
        problems = patients.correction_problems(p, values)
        if problems:
            raise errors.invalid(problems)
        changed = await patients.correct(conn, p, values)
        if changed:
            await audit.append(conn, action="patient_corrected", actor_staff_id=user.id,
                               actor_kind="staff", patient_id=p.id, booking_id=None,
                               detail={"fields": changed})
    raise outcome.redirect(request, f"/bookings/patients/{patient_id}",
                           outcome.Outcome(kind="corrected", keep={"changed": changed}))


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


async def _invitation_open(request: web.Request, row: views.Row) -> bool:
    """Whether the patient can still come, so an invitation is worth sending or printing."""
    if row.status in status.CLOSED_TO_JOINING:
        return False
    c = await store.get_by_booking(request.app[POOL], row.id)
    until = c.open_until() if c is not None else row.ends_at
    return until > datetime.now(UTC)


@require_staff(*CARE_ROLES)
async def booking_page(request: web.Request) -> web.StreamResponse:
    row = await _row_for(request)
    user = current_staff(request)
    pool = request.app[POOL]
    history = await _history(request, row)
    last = outcome.take(request)
    failed = last is not None and last.status >= 400
    patient = await patients.get(pool, row.patient_id)
    senders = frozenset(request.app[SENDERS] if SENDERS in request.app else ())
    return outcome.forget(request, render(
        request, "bookings/booking.html", status=last.status if last else 200, b=row,
        error=last.message if last and failed else None,
        notice=last.message if last and not failed else None, history=history,
        may_change=can_book(user, row.centre_id, row.clinician_id),
        invitations=await invitation_actions.states(pool, row.id, senders),
        invitation_open=await _invitation_open(request, row),
        patient_language=invitations.message_language(patient.language if patient else "it"),
        print_languages=PATIENT_LANGUAGES,
        short_when=lambda instant: to_local(instant).strftime("%d/%m %H:%M"),
        has_phone=bool(patient and patient.phone), has_email=bool(patient and patient.email),
        may_override=user.role is Role.COORDINATOR,
        local_start=to_local(row.starts_at).strftime("%Y-%m-%dT%H:%M"), css=CSS))


@outcome.form(_booking_page)
@require_staff(*CARE_ROLES)
async def invitation_action(request: web.Request) -> web.StreamResponse:
    """Resend the invitation by SMS or e-mail, or issue a new code to read over the phone or
    to print (shown once by ``code_page`` / ``print_page``). Whoever may see the booking may do
    these; anyone else gets the booking's 404, as for a booking that does not exist."""
    row = await _row_for(request)
    user = current_staff(request)
    form = await request.post()
    action = str(form.get("action", ""))
    ctx = bookings_context.of_request(request)
    _ = translator(request)
    if action in ("sms", "email"):
        await invitation_actions.resend(ctx, row.id, action, by=user.id)
        done = _("The invitation will be sent again by SMS.") if action == "sms" else \
            _("The invitation will be sent again by e-mail.")
        raise outcome.redirect(request, f"/bookings/{row.id}", outcome.Outcome(200, done))
    if action == "phone":
        await invitation_actions.issue(ctx, row.id, "phone", None, by=user.id)
        raise web.HTTPSeeOther(f"/bookings/{row.id}/code")
    if action == "print":
        language = str(form.get("language", ""))
        await invitation_actions.issue(ctx, row.id, "print",
                                       language if language in PATIENT_LANGUAGES else None,
                                       by=user.id)
        raise web.HTTPSeeOther(f"/bookings/{row.id}/print")
    raise errors.ApiError(errors.FORBIDDEN)


def _once(response: web.StreamResponse) -> web.StreamResponse:
    # Never kept by the browser or a proxy: Back and reload must ask the server again, which
    # has forgotten the code (invitation_actions: read and deleted in one statement).
    response.headers["Cache-Control"] = "no-store"
    return response


@require_staff(*CARE_ROLES)
async def code_page(request: web.Request) -> web.StreamResponse:
    """The new join code, once, made for reading aloud; afterwards, a page that says so."""
    row = await _row_for(request)
    user = current_staff(request)
    shown = await invitation_actions.take(request.app[POOL], request.app[CONFIG].secret_key,
                                          row.id, user.id, "phone")
    code = shown.code if shown is not None else None
    return _once(render(
        request, "bookings/code.html", b=row, code=code,
        groups=(code[:3], code[3:]) if code else None,
        join_url=f"{bookings_context.of_request(request).origin}/join", css=CSS))


@require_staff(*CARE_ROLES)
async def print_page(request: web.Request) -> web.StreamResponse:
    """The printed invitation, in the language chosen (the patient's by default), once: it
    holds a new code. Discreet for sensitive services, as every invitation is. The screen-only
    bar around it speaks the staff member's language."""
    row = await _row_for(request)
    user = current_staff(request)
    shown = await invitation_actions.take(request.app[POOL], request.app[CONFIG].secret_key,
                                          row.id, user.id, "print")
    _ = translator(request)
    bar = {"print": _("Print"), "back": _("Back to the booking"),
           "gone": _("This printed invitation has already been shown. Print it again "
                          "from the booking page: a new code will be issued."),
           "note": _("Printing issued a new code: the code sent before no longer works "
                          "(the links in messages still do).")}
    if shown is None:
        return _once(render(request, "bookings/invitation_print.html", b=row, a=None,
                            bar=bar, css=CSS))
    ctx = bookings_context.of_request(request)
    a = await invitation_actions.printable(ctx, row.id, shown.code)
    lang = shown.language
    gettext = catalogues(request.app).gettext(lang)
    page = context(request, b=row, a=a, bar=bar, css=CSS, lang=lang, dir=direction(lang),
                   _=gettext, gettext=gettext,
                   ngettext=catalogues(request.app).ngettext(lang),
                   staff_lang=request.get(LANG, "it"),
                   title=invitations.title(a, gettext), when=local_when_text(a.starts_at, lang),
                   groups=(a.code[:3], a.code[3:]) if a.code else None,
                   join_url=f"{ctx.origin}/join?lang={lang}")
    html = request.app[JINJA].get_template("bookings/invitation_print.html").render(page)
    return _once(web.Response(text=html, content_type="text/html",
                              headers={"Content-Language": lang}))


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
