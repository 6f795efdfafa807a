"""API: centres, services, free slots, patients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from server import centres, errors, patients
from server.bookings import bookings, jsonio, slots
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
    q = request.query
    centre = jsonio.text(q.get("centre"), "centre", max_len=100)
    service = jsonio.text(q.get("service"), "service", max_len=100)
    assert centre is not None and service is not None
    day = jsonio.a_date(q.get("date"), "date", lo=2000)
    try:
        days = int(q.get("days", "1"))
    except ValueError:
        raise jsonio.invalid("days", "a whole number from 1 to 31") from None
    if not 1 <= days <= slots.MAX_DAYS:
        raise jsonio.invalid("days", "a whole number from 1 to 31")
    clinician = jsonio.an_id(q.get("clinician"), "clinician", required=False)
    patient = jsonio.an_id(q.get("patient"), "patient", required=False)
    found = await slots.list_slots(request.app[POOL], centre_id=centre, service_code=service,
                                   day_from=day, days=days, clinician_id=clinician,
                                   patient_id=patient, now=datetime.now().astimezone())
    return web.json_response({"slots": [
        {"clinician_id": s.clinician_id, "starts_at": jsonio.iso(s.starts_at),
         "ends_at": jsonio.iso(s.ends_at)} for s in found]})


def patient_json(p: patients.Patient) -> dict[str, Any]:
    return {"id": p.id, "given_name": p.given_name, "family_name": p.family_name,
            "date_of_birth": p.date_of_birth.isoformat(), "phone": p.phone, "email": p.email,
            "language": p.language, "codice_fiscale": p.codice_fiscale,
            "home_centre_id": p.home_centre_id}


def _optional(data: dict[str, Any], field: str, max_len: int) -> str | None:
    value = data.get(field)
    if value in (None, ""):
        return None
    return jsonio.text(value, field, max_len=max_len)


@api()
async def create_patient(request: web.Request) -> web.Response:
    data = await jsonio.body(request)
    given = jsonio.text(data.get("given_name"), "given_name")
    family = jsonio.text(data.get("family_name"), "family_name")
    dob = jsonio.a_date(data.get("date_of_birth"), "date_of_birth")
    language = data.get("language", "it")
    if not isinstance(language, str):
        raise jsonio.invalid("language", "a language code")
    home = _optional(data, "home_centre_id", 100)
    if home is not None and home not in {c.id for c in await centres.list_all(request.app[POOL])}:
        raise jsonio.invalid("home_centre_id", "unknown centre")
    assert given is not None and family is not None
    new = patients.NewPatient(
        given_name=given, family_name=family, date_of_birth=dob,
        phone=_optional(data, "phone", 30), email=_optional(data, "email", 254),
        language=language, codice_fiscale=_optional(data, "codice_fiscale", 16),
        home_centre_id=home)
    problems = new.problems()
    if problems:
        raise errors.ApiError(errors.VALIDATION, details={"fields": problems})
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
    q = request.query.get("q", "")
    if len(q) > 100:
        raise jsonio.invalid("q", "at most 100 characters")
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
    pid = jsonio.an_id(request.match_info["patient_id"], "patient_id")
    assert pid is not None
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
