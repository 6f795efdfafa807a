"""The records JSON API under ``/api/v1/records`` (used by the note editor and by other
clients): a session with its CSRF token, or a bearer token, as the bookings API
(``server.bookings.access.api``)."""

from __future__ import annotations

from aiohttp import web

from records import content, schemas
from records.web_common import (
    consultation_patient,
    record_of_booking,
    records_of,
    same_patient,
    view_json,
)
from server import openapi, validation
from server.bookings.access import api, caller
from server.keys import POOL
from server.staff import Role

CLINICIANS = (Role.GP, Role.NURSE, Role.PSYCHOLOGIST)
Op = openapi.Operation
NOTE = "/records/notes/{note_id}"
# A refusal of a note or record is 403 alike for an unknown id and another's (no probing).
REFUSED = (401, 403, 404, 409, 410)


def _note_id(request: web.Request) -> int:
    return validation.path_id(request, "note_id")


@api(*CLINICIANS)
async def consultation_notes(request: web.Request) -> web.StreamResponse:
    booking_id = validation.path_id(request, "booking_id")
    given = validation.query(request, schemas.ConsultationNotesQuery).patient_id
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        patient = await record_of_booking(conn, caller(request), booking_id)
        same_patient(given, patient)
        views = await rec.history(conn, caller(request), patient, booking_id)
    return web.json_response({"notes": [view_json(v) for v in views]})


@api(*CLINICIANS)
async def create_note(request: web.Request) -> web.StreamResponse:
    booking_id = validation.path_id(request, "booking_id")
    body = await validation.body(request, schemas.NewNoteBody)
    note_content = content.parse(body.content or {})
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        # On the consultation and caring for its patient, before anything about it is said.
        patient = await consultation_patient(conn, caller(request), booking_id)
        same_patient(body.patient_id, patient)
        note = await rec.create(conn, caller(request), booking_id=booking_id,
                                patient_id=patient, category=body.category,
                                content=note_content)
    return web.json_response({"id": note.id, "version": 1, "status": "draft"}, status=201)


@api(*CLINICIANS)
async def get_note(request: web.Request) -> web.StreamResponse:
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        view = await rec.read(conn, caller(request), _note_id(request))
    return web.json_response(view_json(view))


@api(*CLINICIANS)
async def save_draft(request: web.Request) -> web.StreamResponse:
    body = await validation.body(request, schemas.DraftBody)
    note_content = content.parse(body.content or {})
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        version = await rec.save_draft(conn, caller(request), _note_id(request), note_content)
    return web.json_response({"version": version, "status": "draft"})


@api(*CLINICIANS)
async def sign_note(request: web.Request) -> web.StreamResponse:
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        version = await rec.sign(conn, caller(request), _note_id(request))
    return web.json_response({"version": version, "status": "signed"})


@api(*CLINICIANS)
async def amend_note(request: web.Request) -> web.StreamResponse:
    body = await validation.body(request, schemas.ReasonBody)
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        version = await rec.amend(conn, caller(request), _note_id(request), body.reason)
    return web.json_response({"version": version, "status": "draft"}, status=201)


@api(*CLINICIANS)
async def share_note(request: web.Request) -> web.StreamResponse:
    staff_id = (await validation.body(request, schemas.StaffBody)).staff_id
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await rec.share(conn, caller(request), _note_id(request), staff_id)
    return web.json_response({"shared_with": staff_id})


@api(*CLINICIANS)
async def break_glass(request: web.Request) -> web.StreamResponse:
    body = await validation.body(request, schemas.ReasonBody)
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await rec.break_glass(conn, caller(request), _note_id(request), body.reason)
        view = await rec.read(conn, caller(request), _note_id(request))
    return web.json_response(view_json(view))


@api(*CLINICIANS)
async def summary_link(request: web.Request) -> web.StreamResponse:
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        token = await rec.summary_link(conn, caller(request), _note_id(request))
    return web.json_response({"url": f"/summary/{token}"}, status=201)


@api(*CLINICIANS)
async def refer_patient(request: web.Request) -> web.StreamResponse:
    """Refer a patient one cares for to a colleague ``{staff_id}``: the colleague then cares
    for her too. Refused alike for an unknown patient and one the caller does not care for."""
    patient_id = validation.path_id(request, "patient_id")
    staff_id = (await validation.body(request, schemas.StaffBody)).staff_id
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await rec.refer(conn, caller(request), patient_id, staff_id)
    return web.json_response({"referred_to": staff_id}, status=201)


@api(Role.ADMIN)
async def erase_patient(request: web.Request) -> web.StreamResponse:
    """Erase every note of a patient (their request): data keys destroyed, audit-logged."""
    patient_id = validation.path_id(request, "patient_id")
    why = (await validation.body(request, schemas.EraseBody)).reason
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        ids = await rec.erase_patient(conn, caller(request), patient_id, why)
    await rec.sweep(request.app[POOL])  # the key leaves the keyring file only once committed
    return web.json_response({"erased": ids})


ROUTES: list[tuple[openapi.Operation, openapi.Handler]] = [
    (Op("GET", "/records/consultations/{booking_id}/notes", "listConsultationNotes",
        "The notes of a consultation the caller may read", answer=schemas.NoteList,
        query=schemas.ConsultationNotesQuery, errors=REFUSED, tag="records"),
     consultation_notes),
    (Op("POST", "/records/consultations/{booking_id}/notes", "createNote",
        "Start a note (a draft) in a consultation", 201, answer=schemas.NoteCreated,
        body=schemas.NewNoteBody, errors=REFUSED, tag="records"), create_note),
    (Op("GET", NOTE, "getNote", "A note with its versions", answer=schemas.Note,
        errors=REFUSED, tag="records"), get_note),
    (Op("PUT", NOTE + "/draft", "saveNoteDraft", "Save the draft", answer=schemas.VersionSaved,
        body=schemas.DraftBody, errors=REFUSED, tag="records"), save_draft),
    (Op("POST", NOTE + "/sign", "signNote", "Sign the draft: it is locked",
        answer=schemas.VersionSaved, errors=REFUSED, tag="records"), sign_note),
    (Op("POST", NOTE + "/amend", "amendNote", "Start an amendment of a signed note", 201,
        answer=schemas.VersionSaved, body=schemas.ReasonBody, errors=REFUSED, tag="records"),
     amend_note),
    (Op("POST", NOTE + "/shares", "shareNote", "Share a restricted note with a clinician",
        answer=schemas.Shared, body=schemas.StaffBody, errors=REFUSED, tag="records"),
     share_note),
    (Op("POST", NOTE + "/break-glass", "breakGlass",
        "Emergency access to a restricted note: logged, and its author told",
        answer=schemas.Note, body=schemas.ReasonBody, errors=REFUSED, tag="records"),
     break_glass),
    (Op("POST", NOTE + "/summary-link", "createSummaryLink",
        "A link for the patient to read the note's summary", 201, answer=schemas.SummaryLink,
        errors=REFUSED, tag="records"), summary_link),
    (Op("POST", "/records/patients/{patient_id}/erase", "erasePatientNotes",
        "Erase every note of a patient (administrators)", answer=schemas.Erased,
        body=schemas.EraseBody, errors=REFUSED, tag="records"), erase_patient),
    (Op("POST", "/records/patients/{patient_id}/referrals", "referPatient",
        "Refer a patient one cares for to a colleague", 201, answer=schemas.Referred,
        body=schemas.StaffBody, errors=REFUSED, tag="records"), refer_patient),
]


def setup(app: web.Application) -> None:
    for op, handler in ROUTES:
        openapi.route(app, op, handler)
