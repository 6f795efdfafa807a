"""The nurse console's pages: today's kiosk bookings of her centres and who is at which kiosk
(``/nurse``, its states refreshed from ``/nurse/state``), and one booking's page with its
actions: check in, "I am with the patient", measurements into the consultation's record,
join the call, hand over or leave.

Every handler finds the booking through the caller's centres first (``console.visible``): a
nurse of another centre gets the same 404 for a booking of ours as for one that does not exist.
Writes go through the owners: check-in through bookings' workflow, measurements through the
records layer (encrypted, audited), the declaration through signalling (told to the clinician
at once); handing over and leaving are audited here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from records import audit, content
from records.access import Category
from records.errors import Denied
from records.web_common import records_of
from server import errors, outcome, validation
from server.bookings import bookings, workflow
from server.bookings import context as bookings_context
from server.keys import POOL
from server.nurse import console
from server.nurse.console import Row, State
from server.pages import current_staff, render, require_staff, translator
from server.staff import Role, Staff
from server.timeutil import ROME, day_bounds
from signaling import nursing
from signaling.keys import ENGINE

CSS = "css/nurse.css"


def _booking_id(request: web.Request) -> int:
    return validation.path_id(request, "booking_id")


async def _row(request: web.Request) -> Row:
    found = await console.visible(request.app[POOL], current_staff(request), _booking_id(request))
    if found is None:
        raise errors.NotFound()
    return found


def _own(user: Staff, row: Row) -> None:
    """What only the booking's nurse does: be with the patient, measure, leave."""
    if not row.is_nurse(user):
        raise errors.ApiError(errors.FORBIDDEN)


async def _back(request: web.Request) -> str | None:
    """A refused form goes back to the booking's page, if the caller may see it at all
    (otherwise the refusal is the 404 itself)."""
    try:
        row = await console.visible(request.app[POOL], current_staff(request),
                                    _booking_id(request))
    except errors.ApiError:
        return None
    return f"/nurse/bookings/{row.booking_id}" if row is not None else None


def _today() -> tuple[datetime, datetime]:
    return day_bounds(datetime.now(ROME).date())


def state_words(request: web.Request) -> dict[str, str]:
    _ = translator(request)
    return {State.NOT_ARRIVED: _("Not arrived"), State.CHECKED_IN: _("Checked in"),
            State.WAITING: _("At the kiosk, waiting"), State.IN_CALL: _("In the call"),
            State.FINISHED: _("Finished")}


@require_staff(*console.ROLES)
async def console_page(request: web.Request) -> web.StreamResponse:
    user = current_staff(request)
    pool = request.app[POOL]
    rows = await console.today(pool, user, *_today())
    return render(request, "nurse/console.html", rows=rows,
                  kiosks=await console.kiosks(pool, user, rows), words=state_words(request),
                  css=CSS)


@require_staff(*console.ROLES)
async def state(request: web.Request) -> web.StreamResponse:
    """Today's states for the console's refresh: ids and states only, no names."""
    user = current_staff(request)
    rows = await console.today(request.app[POOL], user, *_today())
    return web.json_response({"bookings": [
        {"id": r.booking_id, "state": r.state.value, "nurse_present": r.nurse_present,
         "kiosk_id": r.kiosk_id} for r in rows]})


@require_staff(*console.ROLES)
async def booking_page(request: web.Request) -> web.StreamResponse:
    row = await _row(request)
    user = current_staff(request)
    last = outcome.take(request)
    return outcome.forget(request, render(
        request, "nurse/booking.html", status=last.status if last else 200, r=row,
        error=last.message if last else None, done=last.kind if last and last.status < 400
        else None, fields=last.fields if last else {}, mine=row.is_nurse(user),
        may_hand_over=_may_hand_over(user, row),
        nurses=[n for n in await console.nurses(request.app[POOL], row.centre_id)
                if n["id"] != row.nurse_id],
        measures=content.MEASURES, words=state_words(request), css=CSS))


def _done(request: web.Request, row: Row, kind: str) -> web.HTTPSeeOther:
    return outcome.redirect(request, f"/nurse/bookings/{row.booking_id}",
                            outcome.Outcome(200, kind=kind))


@outcome.form(_back)
@require_staff(*console.ROLES)
async def check_in(request: web.Request) -> web.StreamResponse:
    """The patient is at the centre (the booking's status, through the workflow: who checked
    her in is recorded, and makes the clinician a carer, docs/records.md)."""
    row = await _row(request)
    await workflow.set_status(bookings_context.of_request(request), row.booking_id,
                              "checked-in", by=current_staff(request).id)
    raise _done(request, row, "checked_in")


async def _audit(conn: asyncpg.Connection, action: str, user: Staff, row: Row,
                 **detail: int | str | bool | None) -> None:
    await audit.append(conn, action=action, actor_staff_id=user.id, actor_kind="staff",
                       patient_id=row.patient_id, booking_id=row.booking_id, detail=dict(detail))


@outcome.form(_back)
@require_staff(Role.NURSE)
async def present(request: web.Request) -> web.StreamResponse:
    """The booking's nurse is with the patient: the clinician sees "nurse present"."""
    row = await _row(request)
    user = current_staff(request)
    _own(user, row)
    if row.state is State.FINISHED:
        raise errors.ApiError(errors.CONFLICT)
    await nursing.declare(request.app[ENGINE], row.consultation_id, user.id)
    async with request.app[POOL].acquire() as conn:
        await _audit(conn, "nurse_present", user, row)
    raise _done(request, row, "present")


@outcome.form(_back)
@require_staff(Role.NURSE)
async def leave(request: web.Request) -> web.StreamResponse:
    """The booking's nurse leaves the patient: no longer present, no longer its nurse."""
    row = await _row(request)
    user = current_staff(request)
    _own(user, row)
    await _hand_over(request, user, row, None)
    raise web.HTTPSeeOther("/nurse")


def _may_hand_over(user: Staff, row: Row) -> bool:
    """Coordinators assign any nurse of the centre; a nurse hands over her own booking, or
    takes one that has no nurse."""
    return (row.state is not State.FINISHED
            and (user.role is Role.COORDINATOR or row.nurse_id in (None, user.id)))


async def _hand_over(request: web.Request, user: Staff, row: Row, to: int | None) -> None:
    if row.nurse_present:
        await nursing.declare(request.app[ENGINE], row.consultation_id, None)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await bookings.set_nurse(conn, row.booking_id, to)
        await _audit(conn, "nurse_handover" if to is not None else "nurse_left", user, row,
                     from_nurse=row.nurse_id, to_nurse=to)


@outcome.form(_back)
@require_staff(*console.ROLES)
async def hand_over(request: web.Request) -> web.StreamResponse:
    row = await _row(request)
    user = current_staff(request)
    if not _may_hand_over(user, row):
        raise errors.ApiError(errors.FORBIDDEN)
    form = await request.post()
    try:
        to = int(str(form.get("nurse_id", "")))
    except ValueError:
        raise errors.invalid({"nurse_id": "choose a nurse of the centre"}) from None
    nurses = {n["id"] for n in await console.nurses(request.app[POOL], row.centre_id)}
    if to not in nurses or to == row.nurse_id:
        raise errors.invalid({"nurse_id": "choose a nurse of the centre"})
    await _hand_over(request, user, row, to)
    raise _done(request, row, "handed_over")


def _measurements(form: Any) -> dict[str, dict[str, str]]:
    """The form's fields as ``records.content`` reads them (``m-<kind>``, ``u-<kind>``)."""
    out: dict[str, dict[str, str]] = {}
    for kind, units in content.MEASURES.items():
        value = str(form.get(f"m-{kind}", "")).strip()
        if value:
            unit = str(form.get(f"u-{kind}", "")) or next(iter(units))
            out[kind] = {"value": value, "unit": unit}
    return out


@outcome.form(_back)
@require_staff(Role.NURSE)
async def measurements(request: web.Request) -> web.StreamResponse:
    """The nurse's measurements, as a signed nursing note of the consultation: encrypted and
    audited by the records layer, read by the clinician in the call's notes panel."""
    row = await _row(request)
    user = current_staff(request)
    _own(user, row)
    taken = _measurements(await request.post())
    if not taken:
        raise errors.invalid({"measurements": "enter at least one measurement"})
    note_content = content.parse({"measurements": taken})
    rec = records_of(request)
    _ = translator(request)
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            note = await rec.create(conn, user, booking_id=row.booking_id,
                                    patient_id=row.patient_id, category=Category.NURSE,
                                    content=note_content)
            await rec.sign(conn, user, note.id)
    except Denied:
        raise errors.ApiError(errors.FORBIDDEN, _(
            "Measurements can be recorded once the patient has come: she joined at the kiosk, "
            "or a colleague checked her in.")) from None
    raise _done(request, row, "measured")
