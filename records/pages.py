"""Records pages: the note editor, the patient's record (history, versions, amendments),
export (FHIR JSON and printable), the author's notifications, the admin audit search and
the patient's summary page."""

from __future__ import annotations

import functools
import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from records import audit, drafts, fhir, sharing
from records import errors as rerr
from records.access import WRITES
from records.content import MEASURES
from records.web_common import (
    check_record,
    consultation_patient,
    records_of,
)
from server import errors, outcome, patients, validation
from server import staff as staff_store
from server.consultations import store
from server.keys import CONFIG, POOL
from server.middleware import set_cookie
from server.pages import PageHandler, current_staff, render, require_staff, translator
from server.staff import Role, Staff
from web.i18n import LANGUAGES

ROME = ZoneInfo("Europe/Rome")
CLINICIANS = (Role.GP, Role.NURSE, Role.PSYCHOLOGIST)
SUMMARY_COOKIE = "casa_summary"
TEXT_FIELDS = (("reason", "Reason for the encounter"), ("assessment", "Assessment"),
               ("plan", "Plan"), ("text", "Notes"),
               ("summary", "Summary for the patient (plain language)"))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/consultations/{booking_id}/notes", editor_page, name="records_editor")
    r.add_get("/records/consultations/{consultation_id}/panel", call_panel,
              name="records_call_panel")
    r.add_get("/patients/{patient_id}/record", record_page, name="records_history")
    r.add_get("/patients/{patient_id}/record.fhir.json", record_fhir, name="records_fhir")
    r.add_get("/patients/{patient_id}/record/print", record_print, name="records_print")
    r.add_post("/records/notes/{note_id}/break-glass", break_glass_form)
    r.add_post("/records/notes/{note_id}/share", share_form)
    r.add_post("/records/notes/{note_id}/summary-link", summary_link_form)
    r.add_get("/records/consultations/{consultation_id}/unsigned", call_unsigned,
              name="records_call_unsigned")
    r.add_get("/records/inbox", inbox_page, name="records_inbox")
    r.add_get("/admin/audit", audit_page, name="records_audit")
    r.add_get("/admin/records/erase", erase_page, name="records_erase")
    r.add_post("/admin/records/erase", erase_submit)
    r.add_get("/summary/{token}", summary_landing, name="records_summary_link")
    r.add_get("/summary", summary_page, name="records_summary")


async def _patient(conn: asyncpg.Connection, patient_id: int) -> patients.Patient:
    found = await patients.get(conn, patient_id)
    if found is None:
        raise errors.ApiError(errors.NOT_FOUND)
    return found


async def editor_context(request: web.Request, conn: asyncpg.Connection,
                         booking_id: int) -> dict[str, Any]:
    """What ``records/_editor.html`` needs; the call page can include the same partial.
    Refuses (before the patient is loaded) anyone not on the consultation or not caring."""
    user = current_staff(request)
    patient_id = await consultation_patient(conn, user, booking_id)
    views = await records_of(request).history(conn, user, patient_id, booking_id)
    draft = next((v for v in views if v.can_edit and v.latest and not v.latest.signed), None)
    return {"booking_id": booking_id, "patient": await _patient(conn, patient_id),
            "views": views, "draft": draft, "measures": MEASURES, "text_fields": TEXT_FIELDS,
            "categories": sorted(c.value for c in WRITES.get(user.role, frozenset()))}


@require_staff(*CLINICIANS)
async def editor_page(request: web.Request) -> web.StreamResponse:
    booking_id = validation.path_id(request, "booking_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        ctx = await editor_context(request, conn, booking_id)
    return render(request, "records/editor.html", **ctx)


# Identity columns start at 1: no booking has this id.
NO_BOOKING = 0


@require_staff(*CLINICIANS)
async def call_panel(request: web.Request) -> web.StreamResponse:
    """The editor alone, for the call page's notes panel (fetched by notes.js beside the
    video; the call page knows its consultation id, not the booking's)."""
    consultation_id = validation.path_id(request, "consultation_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        booking_id = await store.booking_of(conn, consultation_id)
        # An unknown consultation goes through the same checks as another's, with a booking
        # id no row has: refused with the same 403, the same page and the same queries, so
        # consultation ids cannot be probed.
        ctx = await editor_context(request, conn, int(booking_id or NO_BOOKING))
    return render(request, "records/_editor.html", **ctx)


@require_staff(*CLINICIANS)
async def call_unsigned(request: web.Request) -> web.StreamResponse:
    """For the call's end page: how many of the signed-in clinician's own notes of this
    consultation are still drafts. Only their own drafts are counted, so an unknown or
    someone else's consultation simply answers 0 and reveals nothing."""
    consultation_id = validation.path_id(request, "consultation_id")
    pool = request.app[POOL]
    booking_id = await store.booking_of(pool, consultation_id)
    found = [] if booking_id is None else await drafts.unsigned(pool, current_staff(request),
                                                                 booking_id)
    return web.json_response({"unsigned": len(found)})


async def _clinicians(conn: asyncpg.Connection, user: Staff) -> list[Staff]:
    return [s for s in await staff_store.list_all(conn) if s.role.clinical and s.id != user.id]


@require_staff(*CLINICIANS)
async def record_page(request: web.Request) -> web.StreamResponse:
    patient_id = validation.path_id(request, "patient_id")
    q = request.query
    before = validation.an_id(q["before"], "before") if q.get("before") else None
    after = validation.an_id(q["after"], "after") if q.get("after") and before is None else None
    user = current_staff(request)
    last = outcome.take(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await check_record(conn, user, patient_id)
        patient = await _patient(conn, patient_id)
        views, page = await records_of(request).record_page(conn, user, patient_id,
                                                            before=before, after=after)
        shares = {v.note.id: await sharing.shared_with(conn, v.note.id) for v in views
                  if v.can_edit and v.note.category.restricted}
        names = {s.id: s.full_name for s in await staff_store.list_all(conn)}
        colleagues = await _clinicians(conn, user)
    return outcome.forget(request, render(
        request, "records/history.html", status=last.status if last else 200, patient=patient,
        views=views, page=page, shares=shares, names=names, colleagues=colleagues,
        text_fields=TEXT_FIELDS, refusal=last.message if last else None))


@require_staff(*CLINICIANS)
async def record_fhir(request: web.Request) -> web.StreamResponse:
    patient_id = validation.path_id(request, "patient_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        # export() checks the caller cares for the patient: before the patient is loaded.
        rec = records_of(request)
        views = await rec.export(conn, current_staff(request), patient_id, "fhir")
        readings = await rec.readings.for_export(conn, current_staff(request), patient_id,
                                                 "fhir")
        patient = await _patient(conn, patient_id)
    body = json.dumps(fhir.bundle(patient, views, readings), ensure_ascii=False, indent=1)
    return web.Response(text=body, content_type="application/fhir+json", headers={
        "Content-Disposition": f'attachment; filename="patient-{patient_id}.fhir.json"'})


@require_staff(*CLINICIANS)
async def record_print(request: web.Request) -> web.StreamResponse:
    patient_id = validation.path_id(request, "patient_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        views = await records_of(request).export(conn, current_staff(request), patient_id,
                                                 "print")
        patient = await _patient(conn, patient_id)
        names = {s.id: s.full_name for s in await staff_store.list_all(conn)}
    return render(request, "records/print.html", patient=patient, views=views, names=names,
                  text_fields=TEXT_FIELDS, printed_at=datetime.now(ROME))


async def _note_patient(conn: asyncpg.Connection, note_id: int) -> int:
    pid = await conn.fetchval("SELECT patient_id FROM notes WHERE id = $1", note_id)
    if pid is None:
        raise errors.NotFound(rerr.NOTE_NOT_FOUND, f"note {note_id}")
    return int(pid)


async def _record_of_form(request: web.Request) -> str | None:
    """The record page a note's form was sent from (its ``patient`` field); the record page
    checks, as always, who may see it."""
    back = str((await request.post()).get("patient", ""))
    return f"/patients/{back}/record" if back.isdigit() and len(back) < 18 else None


def reason_retyped(handler: PageHandler) -> PageHandler:
    """A refused reason is not carried back (see server.outcome): say to type it again."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            refused = errors.api_error(exc)
            if refused is None or "reason" not in errors.field_errors(refused):
                raise
            _ = translator(request)
            refused.message = _("Give a reason of at least 10 characters: type it again.")
            raise refused from None

    return wrapped


@outcome.form(_record_of_form)
@require_staff(*CLINICIANS)
@reason_retyped
async def break_glass_form(request: web.Request) -> web.StreamResponse:
    note_id = validation.path_id(request, "note_id")
    form = await request.post()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await records_of(request).break_glass(conn, current_staff(request), note_id,
                                              str(form.get("reason", ""))[:2000])
        patient_id = await _note_patient(conn, note_id)
    raise web.HTTPSeeOther(f"/patients/{patient_id}/record#note-{note_id}")


@outcome.form(_record_of_form)
@require_staff(*CLINICIANS)
async def share_form(request: web.Request) -> web.StreamResponse:
    note_id = validation.path_id(request, "note_id")
    form = await request.post()
    staff_id = validation.an_id(form.get("staff_id"), "staff_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await records_of(request).share(conn, current_staff(request), note_id, staff_id)
        patient_id = await _note_patient(conn, note_id)
    raise web.HTTPSeeOther(f"/patients/{patient_id}/record#note-{note_id}")


@require_staff(*CLINICIANS)
async def summary_link_form(request: web.Request) -> web.StreamResponse:
    note_id = validation.path_id(request, "note_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        token = await records_of(request).summary_link(conn, current_staff(request), note_id)
        patient_id = await _note_patient(conn, note_id)
        patient = await patients.get(conn, patient_id)
    origin = request.app[CONFIG].public_origin or f"{request.scheme}://{request.host}"
    # The link carries the patient's language: the page speaks it from the first click.
    lang = patient.language if patient and patient.language in LANGUAGES else None
    url = f"{origin}/summary/{token}" + (f"?lang={lang}" if lang else "")
    # Shown once, on this response only: the token is not kept anywhere readable.
    return render(request, "records/summary_link.html", url=url, patient_id=patient_id,
                  days=sharing.SUMMARY_LINK_FOR.days)


@require_staff(*CLINICIANS)
async def inbox_page(request: web.Request) -> web.StreamResponse:
    user = current_staff(request)
    pool = request.app[POOL]
    items = await records_of(request).notifications(pool, user)
    await sharing.mark_read(pool, user.id)
    return render(request, "records/inbox.html", items=items,
                  unsigned_notes=await drafts.unsigned(pool, user))


def _day(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise errors.invalid({name: "YYYY-MM-DD"}) from None
    return datetime(d.year, d.month, d.day, tzinfo=ROME)


@require_staff(Role.ADMIN)
async def audit_page(request: web.Request) -> web.StreamResponse:
    q = request.query
    patient_id = validation.an_id(q["patient"], "patient") if q.get("patient") else None
    staff_id = validation.an_id(q["staff"], "staff") if q.get("staff") else None
    since = _day(q.get("from"), "from")
    until = _day(q.get("to"), "to")
    pool = request.app[POOL]
    entries = await audit.search(pool, patient_id=patient_id, staff_id=staff_id, since=since,
                                 until=until + timedelta(days=1) if until else None)
    names = {s.id: s.full_name for s in await staff_store.list_all(pool)}
    async with pool.acquire() as conn:
        await audit.append(conn, action="audit_search", actor_staff_id=current_staff(request).id,
                           actor_kind="staff", patient_id=patient_id, booking_id=None,
                           detail={"staff": staff_id, "from": q.get("from"), "to": q.get("to")})
    return render(request, "records/audit.html", entries=entries, names=names, rome=ROME,
                  query={k: q.get(k, "") for k in ("patient", "staff", "from", "to")})


@require_staff(Role.ADMIN)
async def erase_page(request: web.Request) -> web.StreamResponse:
    last = outcome.take(request)
    keep = last.keep if last else {}
    patient = None
    if "erased" in keep:
        async with request.app[POOL].acquire() as conn:
            patient = await patients.get(conn, int(keep["patient"]))
    return outcome.forget(request, render(
        request, "records/erase.html", status=last.status if last else 200,
        erased=keep.get("erased") if patient else None, patient=patient,
        refusal=last.message if last and last.status >= 400 else None))


async def _erase_page(request: web.Request) -> str:
    return "/admin/records/erase"


@outcome.form(_erase_page)
@require_staff(Role.ADMIN)
async def erase_submit(request: web.Request) -> web.StreamResponse:
    """A patient's request to erase their notes: their data keys are destroyed. Done or
    refused, the browser goes back to the erase page with what happened (server.outcome)."""
    form = await request.post()
    patient_id = validation.an_id(form.get("patient"), "patient")
    if form.get("confirm") != "yes":
        raise errors.invalid({"confirm": "required"})
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await _patient(conn, patient_id)
        ids = await records_of(request).erase_patient(conn, current_staff(request), patient_id,
                                                      "patient_request")
    await records_of(request).sweep(request.app[POOL])  # once committed: see records.subkeys
    raise outcome.redirect(request, "/admin/records/erase", outcome.Outcome(
        keep={"erased": len(ids), "patient": patient_id}))


async def summary_landing(request: web.Request) -> web.StreamResponse:
    """Move the token from the URL into a cookie at once, so it is not left in history (the
    language the link carries goes on)."""
    lang = request.query.get("lang")
    resp = web.HTTPSeeOther("/summary" + (f"?lang={lang}" if lang in LANGUAGES else ""))
    set_cookie(request, resp, SUMMARY_COOKIE, request.match_info["token"][:100],
               max_age=3600)
    raise resp


async def summary_page(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(SUMMARY_COOKIE, "")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        found = await records_of(request).read_summary(conn, token) if token else None
    if found is None:
        return render(request, "records/summary.html", status=404, summary=None)
    return render(request, "records/summary.html", summary=found[1],
                  when=found[0].created_at.astimezone(ROME))
