"""API: centres, services, free slots, patients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from server import centres, errors, patients, validation
from server.bookings import bookings, jsonio, schemas, slots
from server.bookings.access import api, caller, can_see, may_see_patient
from server.bookings.access import search_patients as search_patients_in_scope
from server.bookings.errors import CENTRE_NOT_FOUND, DUPLICATE_PATIENT, PATIENT_NOT_FOUND
from server.keys import POOL
from server.pages import translator

RESOURCES = "SELECT id, centre_id, kind, name FROM resources WHERE active ORDER BY centre_id, name"
SERVICES = """
SELECT code, name, default_minutes, roles::text[] AS roles, modes, sensitive FROM services
ORDER BY sort_order, code
"""
CENTRE_EXISTS = "SELECT EXISTS (SELECT 1 FROM centres WHERE id = $1)"
# Patient search returns at most this many: it is for picking, not for listing the register.
SEARCH_LIMIT = 20


@api()
async def list_centres(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    res = await pool.fetch(RESOURCES)
    out = []
    for c in await centres.list_all(pool):
        mine = [r for r in res if r["centre_id"] == c.id]
        out.append({"id": c.id, "name": c.name, "address": c.address, "phone": c.phone,
                    "kiosks": [{"id": r["id"], "name": r["name"]} for r in mine
                               if r["kind"] == "kiosk"],
                    "rooms": [{"id": r["id"], "name": r["name"]} for r in mine
                              if r["kind"] == "room"]})
    return web.json_response({"centres": out})


@api()
async def list_services(request: web.Request) -> web.Response:
    _ = translator(request)
    rows = await request.app[POOL].fetch(SERVICES)
    return web.json_response({"services": [
        {"code": r["code"], "name": _(r["name"]), "default_minutes": r["default_minutes"],
         "roles": list(r["roles"]), "modes": list(r["modes"]), "sensitive": r["sensitive"]}
        for r in rows]})


@api()
async def list_slots(request: web.Request) -> web.Response:
    q = validation.query(request, schemas.SlotsQuery)
    validation.years(q.date, "date", 2000, 2100)
    found = await slots.list_slots(request.app[POOL], centre_id=q.centre.strip(),
                                   service_code=q.service.strip(), day_from=q.date, days=q.days,
                                   clinician_id=q.clinician, patient_id=q.patient,
                                   now=datetime.now().astimezone())
    return web.json_response({"slots": [
        {"clinician_id": s.clinician_id, "starts_at": jsonio.iso(s.starts_at),
         "ends_at": jsonio.iso(s.ends_at)} for s in found]})


def patient_json(p: patients.Patient) -> dict[str, Any]:
    return {"id": p.id, "given_name": p.given_name, "family_name": p.family_name,
            "date_of_birth": p.date_of_birth.isoformat(), "phone": p.phone, "email": p.email,
            "language": p.language, "codice_fiscale": p.codice_fiscale,
            "home_centre_id": p.home_centre_id}


def _optional(value: str | None) -> str | None:
    """A contact field: empty is none (the type refuses blank text)."""
    return value.strip() if value else None


@api()
async def create_patient(request: web.Request) -> web.Response:
    data = await validation.body(request, schemas.NewPatientBody)
    validation.years(data.date_of_birth, "date_of_birth", 1900, 2100)
    home = _optional(data.home_centre_id)
    if home is not None and home not in {c.id for c in await centres.list_all(request.app[POOL])}:
        raise errors.invalid({"home_centre_id": "unknown centre"})
    new = patients.NewPatient(
        given_name=data.given_name.strip(), family_name=data.family_name.strip(),
        date_of_birth=data.date_of_birth, phone=_optional(data.phone),
        email=_optional(data.email), language=data.language,
        codice_fiscale=_optional(data.codice_fiscale), home_centre_id=home)
    problems = new.problems()
    if problems:
        raise errors.invalid(problems)
    try:
        p = await patients.create(request.app[POOL], new)
    except patients.DuplicatePatient:
        raise errors.ApiError(DUPLICATE_PATIENT) from None
    return web.json_response(patient_json(p), status=201,
                             headers={"Location": f"/api/v1/patients/{p.id}"})


def found_json(p: patients.Patient, in_scope: bool) -> dict[str, Any]:
    """A search hit: in full when in the caller's scope, else (found by exact codice fiscale)
    only what identifies the person, without contacts."""
    if in_scope:
        return patient_json(p)
    return patient_json(p) | {"phone": None, "email": None, "home_centre_id": None}


@api()
async def search_patients(request: web.Request) -> web.Response:
    q = validation.query(request, schemas.PatientSearchQuery).q
    found = await search_patients_in_scope(request.app[POOL], caller(request), q, SEARCH_LIMIT)
    return web.json_response({"patients": [found_json(p, ok) for p, ok in found]})


PATIENT_BOOKINGS = f"""
SELECT {bookings.COLUMNS} FROM bookings b WHERE b.patient_id = $1
ORDER BY lower(b.during) DESC LIMIT 200
"""


@api()
async def get_patient(request: web.Request) -> web.Response:
    """A patient in the caller's scope, with the bookings the caller may see (the same rule as
    ``getBooking``: a clinician sees only their own, not a colleague's sensitive session)."""
    pid = validation.path_id(request, "patient_id")
    pool = request.app[POOL]
    user = caller(request)
    p = await patients.get(pool, pid)
    # Out of scope is "not found": whether someone is a patient is not the caller's business.
    if p is None or not await may_see_patient(pool, user, pid):
        raise errors.ApiError(PATIENT_NOT_FOUND)
    visible = [b for b in map(bookings.row_to_booking, await pool.fetch(PATIENT_BOOKINGS, pid))
               if can_see(user, b)]
    now = datetime.now().astimezone()
    items = [{"id": b.id, "centre_id": b.centre_id, "service_code": b.service_code,
              "mode": b.mode, "clinician_id": b.clinician_id, "status": b.status,
              "starts_at": jsonio.iso(b.starts_at), "ends_at": jsonio.iso(b.ends_at)}
             for b in visible]
    return web.json_response({
        **patient_json(p),
        "upcoming": [i for i, b in zip(items, visible, strict=True) if b.ends_at > now][::-1],
        "past": [i for i, b in zip(items, visible, strict=True) if b.ends_at <= now]})


async def require_centre(request: web.Request, centre_id: str) -> None:
    if not await request.app[POOL].fetchval(CENTRE_EXISTS, centre_id):
        raise errors.ApiError(CENTRE_NOT_FOUND)
