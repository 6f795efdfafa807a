"""The records JSON API (used by the note editor and by other clients)."""

from __future__ import annotations

from aiohttp import web

from records import content
from records.access import Category
from records.web_common import (
    consultation_patient,
    int_param,
    json_body,
    record_of_booking,
    records_of,
    same_patient,
    view_json,
)
from server import errors
from server.keys import POOL
from server.pages import current_staff, require_staff
from server.staff import Role

CLINICIANS = (Role.GP, Role.NURSE, Role.PSYCHOLOGIST)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/records/consultations/{booking_id}/notes", consultation_notes,
              name="api_records_consultation")
    r.add_post("/api/records/consultations/{booking_id}/notes", create_note)
    r.add_get("/api/records/notes/{note_id}", get_note, name="api_records_note")
    r.add_put("/api/records/notes/{note_id}/draft", save_draft)
    r.add_post("/api/records/notes/{note_id}/sign", sign_note)
    r.add_post("/api/records/notes/{note_id}/amend", amend_note)
    r.add_post("/api/records/notes/{note_id}/shares", share_note)
    r.add_post("/api/records/notes/{note_id}/break-glass", break_glass)
    r.add_post("/api/records/notes/{note_id}/summary-link", summary_link)
    r.add_post("/api/records/patients/{patient_id}/erase", erase_patient)
    r.add_post("/api/records/patients/{patient_id}/referrals", refer_patient)


def _note_id(request: web.Request) -> int:
    return int_param(request.match_info["note_id"], "note_id")


@require_staff(*CLINICIANS)
async def consultation_notes(request: web.Request) -> web.StreamResponse:
    booking_id = int_param(request.match_info["booking_id"], "booking_id")
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        given = request.query.get("patient_id")
        patient = await record_of_booking(conn, current_staff(request), booking_id)
        same_patient(int_param(given, "patient_id") if given else None, patient)
        views = await rec.history(conn, current_staff(request), patient, booking_id)
    return web.json_response({"notes": [view_json(v) for v in views]})


@require_staff(*CLINICIANS)
async def create_note(request: web.Request) -> web.StreamResponse:
    booking_id = int_param(request.match_info["booking_id"], "booking_id")
    body = await json_body(request)
    try:
        category = Category(str(body.get("category")))
    except ValueError:
        raise errors.invalid({"category": "unknown"}) from None
    note_content = content.parse(body.get("content") or {})
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        given = body.get("patient_id")
        # On the consultation and caring for its patient, before anything about it is said.
        patient = await consultation_patient(conn, current_staff(request), booking_id)
        same_patient(int_param(given, "patient_id") if given else None, patient)
        note = await rec.create(conn, current_staff(request), booking_id=booking_id,
                                patient_id=patient, category=category, content=note_content)
    return web.json_response({"id": note.id, "version": 1, "status": "draft"}, status=201)


@require_staff(*CLINICIANS)
async def get_note(request: web.Request) -> web.StreamResponse:
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        view = await rec.read(conn, current_staff(request), _note_id(request))
    return web.json_response(view_json(view))


@require_staff(*CLINICIANS)
async def save_draft(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    note_content = content.parse(body.get("content") or {})
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        version = await rec.save_draft(conn, current_staff(request), _note_id(request),
                                       note_content)
    return web.json_response({"version": version, "status": "draft"})


@require_staff(*CLINICIANS)
async def sign_note(request: web.Request) -> web.StreamResponse:
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        version = await rec.sign(conn, current_staff(request), _note_id(request))
    return web.json_response({"version": version, "status": "signed"})


@require_staff(*CLINICIANS)
async def amend_note(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        version = await rec.amend(conn, current_staff(request), _note_id(request),
                                  str(body.get("reason") or ""))
    return web.json_response({"version": version, "status": "draft"}, status=201)


@require_staff(*CLINICIANS)
async def share_note(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    staff_id = int_param(body.get("staff_id"), "staff_id")
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await rec.share(conn, current_staff(request), _note_id(request), staff_id)
    return web.json_response({"shared_with": staff_id})


@require_staff(*CLINICIANS)
async def break_glass(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await rec.break_glass(conn, current_staff(request), _note_id(request),
                              str(body.get("reason") or ""))
        view = await rec.read(conn, current_staff(request), _note_id(request))
    return web.json_response(view_json(view))


@require_staff(*CLINICIANS)
async def summary_link(request: web.Request) -> web.StreamResponse:
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        token = await rec.summary_link(conn, current_staff(request), _note_id(request))
    return web.json_response({"url": f"/summary/{token}"}, status=201)


@require_staff(*CLINICIANS)
async def refer_patient(request: web.Request) -> web.StreamResponse:
    """Refer a patient one cares for to a colleague ``{staff_id}``: the colleague then cares
    for her too. Refused alike for an unknown patient and one the caller does not care for."""
    patient_id = int_param(request.match_info["patient_id"], "patient_id")
    body = await json_body(request)
    staff_id = int_param(body.get("staff_id"), "staff_id")
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await rec.refer(conn, current_staff(request), patient_id, staff_id)
    return web.json_response({"referred_to": staff_id}, status=201)


ERASE_REASONS = ("patient_request", "retention")


@require_staff(Role.ADMIN)
async def erase_patient(request: web.Request) -> web.StreamResponse:
    """Erase every note of a patient (their request): data keys destroyed, audit-logged."""
    patient_id = int_param(request.match_info["patient_id"], "patient_id")
    body = await json_body(request)
    why = body.get("reason")
    if why not in ERASE_REASONS:
        raise errors.invalid({"reason": "one of " + ", ".join(ERASE_REASONS)})
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        ids = await rec.erase_patient(conn, current_staff(request), patient_id, str(why))
    await rec.sweep(request.app[POOL])  # the key leaves the keyring file only once committed
    return web.json_response({"erased": ids})
