"""API: centres, services, free slots, patients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from server import centres, errors, patients
from server.bookings import jsonio, slots
from server.bookings.access import api, caller
from server.bookings.errors import CENTRE_NOT_FOUND, DUPLICATE_PATIENT, PATIENT_NOT_FOUND
from server.bookings.keys import CENTRE_IDS
from server.keys import POOL
from server.pages import translator

RESOURCES = "SELECT id, centre_id, kind, name FROM resources WHERE active ORDER BY centre_id, name"
SERVICES = """
SELECT code, name, default_minutes, roles::text[] AS roles, modes, sensitive FROM services
ORDER BY sort_order, code
"""
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


@api()
async def search_patients(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    if len(q) > 100:
        raise jsonio.invalid("q", "at most 100 characters")
    found = await patients.search(request.app[POOL], q.replace("\x00", ""), SEARCH_LIMIT)
    return web.json_response({"patients": [patient_json(p) for p in found]})


PATIENT_BOOKINGS = """
SELECT b.id, b.centre_id, b.service_code, b.mode, b.clinician_id, b.status,
       lower(b.during) AS starts_at, upper(b.during) AS ends_at
FROM bookings b WHERE b.patient_id = $1 ORDER BY lower(b.during) DESC LIMIT 200
"""


@api()
async def get_patient(request: web.Request) -> web.Response:
    pid = jsonio.an_id(request.match_info["patient_id"], "patient_id")
    assert pid is not None
    pool = request.app[POOL]
    p = await patients.get(pool, pid)
    if p is None:
        raise errors.ApiError(PATIENT_NOT_FOUND)
    user = caller(request)
    rows = await pool.fetch(PATIENT_BOOKINGS, pid)
    now = datetime.now().astimezone()
    visible = [r for r in rows if r["centre_id"] in user.centres or r["clinician_id"] == user.id]
    items = [{"id": r["id"], "centre_id": r["centre_id"], "service_code": r["service_code"],
              "mode": r["mode"], "clinician_id": r["clinician_id"], "status": r["status"],
              "starts_at": jsonio.iso(r["starts_at"]), "ends_at": jsonio.iso(r["ends_at"])}
             for r in visible]
    return web.json_response({
        **patient_json(p),
        "upcoming": [i for i, r in zip(items, visible, strict=True) if r["ends_at"] > now][::-1],
        "past": [i for i, r in zip(items, visible, strict=True) if r["ends_at"] <= now]})


async def require_centre(request: web.Request, centre_id: str) -> None:
    known: set[str] = request.app[CENTRE_IDS]
    if centre_id not in known:
        # Unknown to the cache: read again once (a centre may have been added since).
        known.update(c.id for c in await centres.list_all(request.app[POOL]))
        if centre_id not in known:
            raise errors.ApiError(CENTRE_NOT_FOUND)
