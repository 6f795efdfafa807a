"""The booking form: find or register the patient, choose centre, service, mode and day, pick
a free slot. Plain GET steps and one POST, so it works without JavaScript on any phone. The
POST never answers with a page (see server.outcome): it redirects to the form's GET, with the
search's results (patient ids) or a refusal (message and field names), never what was typed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from server import centres, errors, outcome, patients
from server.bookings import bookings, slots, views, workflow
from server.bookings import context as bookings_context
from server.bookings.access import (
    CARE_ROLES,
    can_book,
    may_see_patient,
    patient_pick,
    search_patients,
    valid_pick,
)
from server.bookings.api_catalogue import SEARCH_LIMIT, SERVICES
from server.bookings.errors import PATIENT_NOT_FOUND, booking_error
from server.consultations import code_word
from server.consultations.care import DESK_ROLES
from server.consultations.languages import SPOKEN_LANGUAGES
from server.keys import CONFIG, POOL
from server.pages import current_staff, render, require_staff, translator
from server.staff import Staff
from server.timeutil import ROME

CSS = "css/bookings.css"
MODES = ("home_video", "kiosk_video", "in_person")


def _int(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 18 else None


def _day(value: str | None) -> date:
    try:
        d = date.fromisoformat(value or "")
    except ValueError:
        return datetime.now(UTC).date()
    return d if 2000 <= d.year <= 2100 else datetime.now(UTC).date()


async def _context(request: web.Request, params: Any, user: Staff,
                   last: outcome.Outcome | None = None) -> dict[str, Any]:
    pool: asyncpg.Pool = request.app[POOL]
    mine = [c for c in await centres.list_all(pool) if c.id in user.centres]
    services = [dict(r) for r in await pool.fetch(SERVICES)
                if user.role in DESK_ROLES or user.role.value in r["roles"]]
    secret = request.app[CONFIG].secret_key
    pid = _int(params.get("patient"))
    pick = str(params.get("pick", ""))[:64]
    patient = None
    if pid:
        # Only the caller's patients, or one they found by the full codice fiscale or just
        # registered (the pick proves it); anyone else is "not found", as everywhere.
        if not (valid_pick(secret, user, pid, pick) or await may_see_patient(pool, user, pid)):
            raise errors.ApiError(PATIENT_NOT_FOUND)
        patient = await patients.get(pool, pid)
        if patient is None:
            raise errors.ApiError(PATIENT_NOT_FOUND)
        pick = patient_pick(secret, user, pid)
    q = str(params.get("q", ""))[:100]
    found = [(p, patient_pick(secret, user, p.id))
             for p, _in_scope in await search_patients(pool, user, q, SEARCH_LIMIT)
             ] if q and not patient else []
    searched = bool(q)
    if last is not None and "found" in last.keep and not patient:
        # The search the POST ran: its result ids, bound to this user by the signed cookie.
        searched = True
        for fid in last.keep["found"][:SEARCH_LIMIT]:
            p = await patients.get(pool, int(fid))
            if p is not None:
                found.append((p, patient_pick(secret, user, p.id)))
    centre = next((c for c in mine if c.id == params.get("centre")), mine[0] if mine else None)
    service = next((s for s in services if s["code"] == params.get("service")),
                   services[0] if services else None)
    mode = str(params.get("mode", ""))
    if service is not None and mode not in service["modes"]:
        mode = service["modes"][0]
    day = _day(params.get("day"))
    free: list[slots.Slot] = []
    names: dict[int, str] = {}
    kiosks: list[asyncpg.Record] = []
    nurses: list[asyncpg.Record] = []
    if patient and centre and service:
        clinician = None if user.role in DESK_ROLES else user.id
        free = await slots.list_slots(pool, centre_id=centre.id, service_code=service["code"],
                                      day_from=day, clinician_id=clinician,
                                      patient_id=patient.id, now=datetime.now(UTC))
        staff_rows = await views.clinicians_at(pool, centre.id)
        names = {r["id"]: r["full_name"] for r in staff_rows}
        nurses = [r for r in staff_rows if r["role"] == "nurse"]
        kiosks = await views.kiosks_at(pool, centre.id)
    return {"centres": mine, "services": services, "patient": patient, "pick": pick, "q": q,
            "found": found, "searched": searched, "centre": centre, "service": service,
            "mode": mode, "modes": MODES, "day": day.isoformat(), "slots": free, "names": names,
            "kiosks": kiosks, "nurses": nurses, "css": CSS,
            "error": last.message if last else None, "fields": last.fields if last else {},
            "rome": ROME, "spoken_languages": SPOKEN_LANGUAGES}


@require_staff(*CARE_ROLES)
async def form(request: web.Request) -> web.StreamResponse:
    user = current_staff(request)
    last = outcome.take(request)
    ctx = await _context(request, request.query, user, last)
    response = render(request, "bookings/new.html", status=last.status if last else 200, **ctx)
    return outcome.forget(request, response)


# The form's choices that may ride in the address back to it: none of them is typed.
CHOICES = ("patient", "pick", "centre", "service", "mode", "day")


def _form_with(data: Any) -> str:
    kept = {k: str(data.get(k, ""))[:64] for k in CHOICES if data.get(k)}
    return "/bookings/new?" + urlencode(kept) if kept else "/bookings/new"


def _back(request: web.Request, data: Any, last: outcome.Outcome) -> web.HTTPSeeOther:
    return outcome.redirect(request, _form_with(data), last)


async def _refused_to(request: web.Request) -> str:
    return _form_with(await request.post())


@outcome.form(_refused_to)


@require_staff(*CARE_ROLES)
async def submit(request: web.Request) -> web.StreamResponse:
    """POST: register a patient (``action=patient``) or book the chosen slot."""
    user = current_staff(request)
    data = await request.post()
    if data.get("action") == "patient":
        return await _new_patient(request, data, user)
    if data.get("action") == "search":
        # The search form posts, so the name or codice fiscale stays out of the URL; the
        # answer carries the ids found, not what was typed.
        q = str(data.get("q", ""))[:100]
        found = await search_patients(request.app[POOL], user, q, SEARCH_LIMIT) if q else []
        raise _back(request, data, outcome.Outcome(keep={"found": [p.id for p, _s in found]}))
    ctx = await _context(request, data, user)
    _ = translator(request)
    slot = str(data.get("slot", ""))
    clinician_text, _sep, when = slot.partition("|")
    clinician = _int(clinician_text)
    try:
        starts = datetime.fromisoformat(when) if when else None
    except ValueError:
        starts = None
    if not (ctx["patient"] and ctx["centre"] and ctx["service"] and clinician and starts):
        raise _back(request, data, outcome.Outcome(
            422, _("Choose a patient and a free time first.")))
    if not can_book(user, ctx["centre"].id, clinician):
        raise _back(request, data, outcome.Outcome(403, _("You do not have access to this page.")))
    # A sensitive service's code word (docs/protocol.md, "Safety"): kept only as a keyed hash.
    word = str(data.get("code_word", "")).strip() if ctx["service"].get("sensitive") else ""
    if word and not code_word.valid(word):
        raise _back(request, data, outcome.Outcome(
            422, _("The code word is one to four words, at most 60 characters."),
            fields={"code_word": "invalid"}))
    nb = bookings.NewBooking(
        centre_id=ctx["centre"].id, service_code=ctx["service"]["code"], mode=ctx["mode"],
        patient_id=ctx["patient"].id, clinician_id=clinician, starts_at=starts,
        kiosk_id=_int(data.get("kiosk")) if ctx["mode"] == "kiosk_video" else None,
        nurse_id=_int(data.get("nurse")) if ctx["mode"] == "kiosk_video" else None)
    try:
        b = await workflow.book(bookings_context.of_request(request), nb,
                                created_by=user.id)
    except bookings.BookingError as exc:
        err = booking_error(exc)
        raise _back(request, data, outcome.Outcome(
            err.kind.status, err.message or _(err.kind.message),
            fields={str(k): str(v) for k, v in errors.field_errors(err).items()})) from None
    if word:
        await code_word.set_for_booking(request.app[POOL], b.id,
                                        request.app[CONFIG].secret_key, word)
    raise web.HTTPSeeOther(f"/bookings/{b.id}")


async def _new_patient(request: web.Request, data: Any, user: Staff) -> web.StreamResponse:
    try:
        dob = date.fromisoformat(str(data.get("date_of_birth", "")))
    except ValueError:
        dob = date(1800, 1, 1)  # refused by NewPatient with a clear field message
    new = patients.NewPatient(
        given_name=str(data.get("given_name", ""))[:200],
        family_name=str(data.get("family_name", ""))[:200], date_of_birth=dob,
        phone=str(data.get("phone", ""))[:30] or None,
        email=str(data.get("email", ""))[:254] or None,
        language=str(data.get("language", "it")),
        codice_fiscale=str(data.get("codice_fiscale", ""))[:16] or None)
    problems = new.problems()
    if not problems:
        try:
            p = await patients.create(request.app[POOL], new)
        except patients.DuplicatePatient:
            problems = {"codice_fiscale": "already registered"}
        else:
            pick = patient_pick(request.app[CONFIG].secret_key, user, p.id)
            raise web.HTTPSeeOther(f"/bookings/new?patient={p.id}&pick={pick}")
    _ = translator(request)
    # Back to the empty form: the name, date of birth, phone and codice fiscale are not
    # carried anywhere, so the page asks for them again.
    raise _back(request, {}, outcome.Outcome(
        422, _("Some fields are not valid: type the patient's details again."),
        fields=problems))
