"""Page handlers: who is looking at a consultation decides which page they get.

The consultation page serves three audiences from one route: the clinicians of the booking
(signed-in staff), the patient (the ``casa_patient`` cookie set by the join pages) and a guest
(an interpreter holding ``#guest=TOKEN``: a fragment never reaches the server, so to us a guest
is simply a visitor; the page's script puts the token in ``hello.credential``). A visitor
sees nothing about the consultation until the WebSocket accepts their credential.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from markupsafe import Markup

from records import drafts
from server import centres, errors, patients, staff
from server.calls.strings import client_strings
from server.consultations import care, credentials, status, store
from server.consultations.store import Consultation
from server.keys import LANG, POOL, STAFF
from server.pages import current_staff, render, require_staff, translator
from server.staff import Role, Staff
from server.timeutil import ROME, local_day_text, local_time_text
from web.i18n import LANGUAGE_COOKIE, LANGUAGES

log = logging.getLogger("casa.calls")

VIDEO_MODES = frozenset({"home_video", "kiosk_video"})
CLINICAL_ROLES = (Role.GP, Role.PSYCHOLOGIST, Role.NURSE)
# What server.consultations.store.new_room_id makes (secrets.token_urlsafe(16): 22 url-safe
# base64 characters). Anything else is no room of ours: not found, without asking the database
# (a NUL or a 10 KB path would otherwise reach the query).
ROOM_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def _attends(user: Staff | None, c: Consultation) -> bool:
    """The signed-in staff member is on the consultation (the core's rule, as signalling's)."""
    return user is not None and user.id in care.staff_on(c)


def _when(request: web.Request, instant: datetime) -> dict[str, str]:
    local = instant.astimezone(ROME)
    lang = request.get(LANG, "it")
    today = datetime.now(ROME).date()
    day = "" if local.date() == today else local_day_text(local, lang)
    return {"time": local_time_text(instant, lang), "day": day, "iso": instant.isoformat()}


async def _centre_name(request: web.Request, centre_id: str) -> str:
    for centre in await centres.list_all(request.app[POOL]):
        if centre.id == centre_id:
            return centre.name
    return ""


async def consultation(request: web.Request) -> web.StreamResponse:
    """``/consultation/{room_id}``: pre-call check, waiting room, call and end page."""
    pool = request.app[POOL]
    room_id = request.match_info["room_id"]
    if not ROOM_ID.fullmatch(room_id):
        raise errors.ApiError(errors.NOT_FOUND)
    c = await store.get_by_room(pool, room_id)
    if c is None or c.mode not in VIDEO_MODES:
        raise errors.ApiError(errors.NOT_FOUND)
    user: Staff | None = request.get(STAFF)
    if _attends(user, c):
        return await _clinician_page(request, c, current_staff(request))
    cookie = request.cookies.get(credentials.PATIENT_COOKIE, "")
    mine = await store.resolve_patient_credential(pool, cookie) if cookie else None
    if mine is None or mine.id != c.id:
        # A guest (token in the fragment) or someone without a credential: no details at all.
        # The centre is not told to a visitor: the page lists every centre's number.
        return _page(request, "call/consultation.html", c, role="visitor",
                     all_centres=await centres.list_all(pool))
    if (c.patient_language in LANGUAGES and "lang" not in request.query
            and LANGUAGE_COOKIE not in request.cookies):
        # Nobody chose a language on this device: speak the one the patient booked in.
        request[LANG] = c.patient_language
    return await patient_page(request, c)


async def patient_page(request: web.Request, c: Consultation,
                       address: str | None = None) -> web.StreamResponse:
    """The patient's page of ``c`` (already known to be hers). ``address``: the page is answered
    at another address (the invitation link, server.bookings.join), and this is its own, which
    address.js puts in the address bar and the language form sends back to."""
    pool = request.app[POOL]
    now = datetime.now(UTC)
    where: dict[str, Any] = {} if address is None else {"address": address, "path": address}
    outcome = credentials.judge(c, now)
    # After the end the patient sees the end page (what happens next), not "link expired".
    if outcome != "ok" and not (outcome == "expired" and c.state == "ended"):
        return render(request, "call/closed.html", outcome=outcome,
                      when=_when(request, c.starts_at), opens=_when(request, c.join_opens_at),
                      centre=await _centre_name(request, c.centre_id),
                      contact=await centres.get(pool, c.centre_id), **where)
    # Sensitive services (psychological, psychiatric, violence support): someone may see the
    # patient's screen, so the page names neither the clinician nor the service; the page's
    # script likewise shows no one's name (``data-discreet``) though signalling sends them.
    lead = None if c.sensitive else await staff.get(pool, c.clinician_ids[0])
    return _page(request, "call/consultation.html", c, role="patient", discreet=c.sensitive,
                 clinician_name=lead.full_name if lead else "",
                 centre=await _centre_name(request, c.centre_id),
                 contact=await centres.get(pool, c.centre_id),
                 when=_when(request, c.starts_at), **where)


async def _clinician_page(request: web.Request, c: Consultation, user: Staff) -> web.Response:
    pool = request.app[POOL]
    patient = await patients.get(pool, c.patient_id)
    taken = set(c.clinician_ids) | {c.nurse_id}
    colleagues = [s for s in await staff.list_all(pool)
                  if s.role in CLINICAL_ROLES and c.centre_id in s.centres and s.id not in taken]
    lead = await staff.get(pool, c.clinician_ids[0])
    readings_tab = request.app.get(READINGS_TAB)
    readings = await readings_tab(request, c.patient_id) if readings_tab else None
    return _page(request, "call/consultation.html", c, role="clinician", readings=readings,
                 patient_name=f"{patient.given_name} {patient.family_name}" if patient else "",
                 patient_language=c.patient_language, clinician_name=lead.full_name if lead else "",
                 centre=await _centre_name(request, c.centre_id),
                 when=_when(request, c.starts_at), colleagues=colleagues,
                 admit=request.query.get("admit") == "1", me=user,
                 note_editor=drafts.editor_of(c.booking_id))


# The "Readings" tab of the clinician's panel: tele-monitoring (a package below this one) sets
# it; it answers the tab's content for the patient, or None when she has no plan or the
# clinician may not see it (then the call page has no such tab).
ReadingsTab = Callable[[web.Request, int], Awaitable[Markup | None]]
READINGS_TAB: web.AppKey[ReadingsTab] = web.AppKey("call_readings_tab")


def _page(request: web.Request, template: str, c: Consultation, **ctx: Any) -> web.Response:
    return render(request, template, room_id=c.room_id, consultation_id=c.id,
                  kiosk=c.mode == "kiosk_video", ended=c.state == "ended",
                  strings=client_strings(translator(request),
                                         clinician=ctx.get("role") == "clinician"), **ctx)


async def away(request: web.Request) -> web.StreamResponse:
    """``/away``: where a quick exit lands. A neutral page (a weather link) saying nothing of
    Casa or of an appointment, in the visitor's language; it sets and reads nothing."""
    return render(request, "call/away.html")


async def precall(request: web.Request) -> web.StreamResponse:
    """``/precall``: the device check alone, for anyone (no connection test without a
    credential: the echo peer needs a patient or staff credential)."""
    return render(request, "call/precall.html", strings=client_strings(translator(request)),
                  signed_in=request.get(STAFF) is not None)


@require_staff(*CLINICAL_ROLES)
async def dashboard(request: web.Request) -> web.StreamResponse:
    """``/dashboard``: today's consultations with their live waiting state."""
    user = current_staff(request)
    pool = request.app[POOL]
    today = datetime.now(ROME).date()
    names = {centre.id: centre.name for centre in await centres.list_all(pool)}
    unsigned = await drafts.unsigned(pool, user)
    to_sign = {d.booking_id: d.editor for d in unsigned}
    rows = []
    for c in await store.list_for_clinician_day(pool, user.id, today):
        if c.booking_status in status.CALLED_OFF or c.mode not in VIDEO_MODES:
            continue
        patient = await patients.get(pool, c.patient_id)
        rows.append({"c": c, "when": _when(request, c.starts_at),
                     "centre": names.get(c.centre_id, c.centre_id),
                     "to_sign": to_sign.get(c.booking_id),
                     "patient": f"{patient.given_name} {patient.family_name}" if patient else ""})
    return render(request, "call/dashboard.html", rows=rows, unsigned_notes=unsigned,
                  strings=client_strings(translator(request), clinician=True),
                  day=local_day_text(today, request.get(LANG, "it")))
