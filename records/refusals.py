"""Refused requests on clinical routes are audited: who asked for what, when, and the answer.

A probe (guessing patient or note ids, booking strangers to see what opens) would otherwise
leave no trail. Each staff member's refusals are bounded per window: the first
``REFUSALS_PER_WINDOW`` are audit rows, the next one a single ``refusals_capped`` row, and the
rest only raise a counter (``server.staff_quota``), so a probe cannot flood the audit log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from records import audit
from server import errors, staff_quota
from server.keys import ACTOR_STAFF_ID, POOL
from server.middleware import Handler
from server.request_info import route_name

log = logging.getLogger("casa.records")

# Enough to see what a colleague tried; a few dozen refusals an hour is already a probe.
REFUSALS_PER_WINDOW = 20
REFUSAL_WINDOW = timedelta(minutes=10)
QUOTA_KIND = "refusal_audit"
# Routes whose refusals are audited (route patterns): records, patient pages and API, booking
# pages and API (booking ids are guessed to find patients), patient search.
CLINICAL_PREFIXES = ("/patients/", "/api/v1/records/", "/records/", "/consultations/",
                     "/api/v1/patients", "/bookings/patients", "/api/v1/bookings/",
                     "/bookings/{booking_id")
REFUSED_STATUSES = frozenset({403, 404, 429})
# Path parameters copied into the audit row (ids only, and only when they are numbers).
ID_PARAMS = ("patient_id", "booking_id", "note_id", "consultation_id")


def _ids(request: web.Request) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in ID_PARAMS:
        text = request.match_info.get(name, "")
        if text.isdigit() and len(text) < 19:
            out[name] = int(text)
    return out


async def note_refusal(request: web.Request, staff_id: int, route: str, code: str,
                       status: int) -> None:
    """Audit one refused request of ``staff_id``, within the per-window bound."""
    ids = _ids(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        used = await staff_quota.take(conn, staff_id, QUOTA_KIND, REFUSAL_WINDOW)
        if used > REFUSALS_PER_WINDOW + 1:
            return
        if used == REFUSALS_PER_WINDOW + 1:
            await audit.append(conn, action="refusals_capped", actor_staff_id=staff_id,
                               actor_kind="staff", patient_id=None, booking_id=None,
                               detail={"window_minutes": int(REFUSAL_WINDOW.total_seconds()
                                                             // 60),
                                       "logged": REFUSALS_PER_WINDOW})
            return
        await audit.append(conn, action="refused", actor_staff_id=staff_id, actor_kind="staff",
                           patient_id=ids.pop("patient_id", None),
                           booking_id=ids.pop("booking_id", None),
                           detail={"route": route, "method": request.method, "code": code,
                                   "status": status, **ids})


def _refusal(exc: BaseException) -> tuple[str, int] | None:
    refused = errors.api_error(exc)
    if refused is not None and refused.kind.status in REFUSED_STATUSES:
        return refused.kind.code, refused.kind.status
    if isinstance(exc, web.HTTPException) and exc.status in REFUSED_STATUSES:
        return "http", exc.status
    return None


async def _maybe_note(request: web.Request, refusal: tuple[str, int] | None) -> None:
    staff_id = request.get(ACTOR_STAFF_ID)
    route = route_name(request)
    if refusal is None or staff_id is None or not route.startswith(CLINICAL_PREFIXES):
        return
    try:
        await note_refusal(request, staff_id, route, *refusal)
    except Exception:  # the refusal stands even when it cannot be audited
        log.exception("refusal not audited", extra={"staff_id": staff_id})


@web.middleware
async def audit_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Audit a 403, 404 or 429 on a clinical route answered to a signed-in staff member,
    whether the handler raised it or rendered it."""
    try:
        response = await handler(request)
    except Exception as exc:  # catalogued, mapped by the registry, or an HTTP exception
        await _maybe_note(request, _refusal(exc))
        raise
    if response.status in REFUSED_STATUSES:
        await _maybe_note(request, ("page", response.status))
    return response
