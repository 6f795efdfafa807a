"""The patient's one-screen form for her readings, reached by her personal link without an
account (``links``).

- ``GET /m/{token}`` answers with the form itself (no redirect: the link is tapped every day,
  and on slow 3G a redirect costs seconds), gives the browser its own session in the HttpOnly
  ``casa_monitor`` cookie, and names ``/m`` as its address: ``address.js`` puts it in the bar
  in place of the token, and the answer says ``Referrer-Policy: strict-origin`` as the join
  link's does (``server.bookings.join`` explains both).
- ``GET /m`` is the form for a browser that holds the session.
- ``POST /m/readings`` takes one reading as JSON (the page's script: entries typed offline are
  kept on the phone until the server has them, ``monitor-form.js``) or the whole form as a
  plain POST (no script), answered by a redirect back to the form (``server.outcome``).

A link revoked, past its plan's end, or unknown gets one page that says it no longer works."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from records import vitals
from records.errors import InvalidContent
from records.web_common import records_of
from server import errors, outcome, validation
from server.consultations.languages import PATIENT_LANGUAGES
from server.keys import LANG, POOL
from server.middleware import set_cookie
from server.monitoring import links, service
from server.monitoring.plans import Plan
from server.monitoring.strings import field_words, script_words, unit_words
from server.pages import render, translator
from server.patients import get as get_patient
from web.i18n import LANGUAGE_COOKIE

log = logging.getLogger("casa.monitoring")
LINK_REFERRER_POLICY = "strict-origin"
LANGUAGE_AGE_S = 365 * 24 * 3600
# The measurements a Bluetooth LE device can give the form (ble-reader.js's DEVICES): each
# gets a "Read from the device" button. A pulse comes with blood pressure or SpO2, never alone.
DEVICE_KINDS = frozenset({"blood_pressure", "spo2", "weight", "glucose"})


def _now() -> datetime:
    return datetime.now(UTC)


class PatientReading(msgspec.Struct, kw_only=True):
    measurement: str
    values: dict[str, float | str | None] | None = None
    text: str | None = None
    measured_at: datetime | None = None
    client_ref: UUID | None = None
    from_device: bool = False  # read from a Bluetooth device, confirmed by the patient


def _fields(request: web.Request, plan: Plan, problems: dict[str, str]) -> list[dict[str, Any]]:
    """What the template draws: each measurement of the plan with its parts, units, ranges."""
    words, units = field_words(request), unit_words(request)
    _ = translator(request)
    out = []
    for kind in plan.measurements:
        m = vitals.MEASUREMENTS[kind]
        parts = []
        for p in m.parts:
            low, high = f"{p.low:g}", f"{p.high:g}"
            wrong = problems.get(p.name) and _(
                "Please write a number between %(low)s and %(high)s.", low=low, high=high)
            parts.append({"name": p.name, "label": words[p.name], "unit": units[p.unit],
                          "low": low, "high": high, "error": wrong})
        out.append({"kind": kind, "label": words[kind], "parts": parts,
                    "error": problems.get(kind), "device": kind in DEVICE_KINDS})
    return out


def _form(request: web.Request, plan: Plan | None, *, address: str | None = None,
          status: int = 200) -> web.StreamResponse:
    if plan is None:
        return render(request, "monitoring/closed.html", status=410)
    shown = outcome.take(request)
    problems = shown.fields if shown and shown.status >= 400 else {}
    # The language switcher comes back to the form's clean address, never the token's.
    response = render(request, "monitoring/form.html", status=status, path=links.FORM_PATH,
                      fields=_fields(request, plan, problems), address=address,
                      sent=bool(shown and shown.status < 400),
                      refused=bool(problems), strings=script_words(request))
    return outcome.forget(request, response)


async def _session_plan(request: web.Request) -> Plan | None:
    return await links.resolve(request.app[POOL], request.cookies.get(links.COOKIE, ""),
                               "session", _now())


async def open_link(request: web.Request) -> web.StreamResponse:
    """``/m/{token}``: the form, with a session of this browser's own."""
    token = request.match_info["token"]
    plan = await links.resolve(request.app[POOL], token, "link", _now())
    if plan is None:
        closed = render(request, "monitoring/closed.html", status=410, path=links.FORM_PATH)
        closed.headers["Referrer-Policy"] = LINK_REFERRER_POLICY
        return closed
    held = await _session_plan(request)
    if held is None or held.id != plan.id:
        async with request.app[POOL].acquire() as conn:
            session = await links.issue(conn, plan, "session")
            patient = await get_patient(conn, plan.patient_id)
    else:
        session, patient = None, None
    if LANGUAGE_COOKIE not in request.cookies and patient is not None \
            and patient.language in PATIENT_LANGUAGES and "lang" not in request.query:
        # The form speaks the patient's language from the first visit, as invitations do.
        request[LANG] = patient.language
    response = _form(request, plan, address=links.FORM_PATH)
    response.headers["Referrer-Policy"] = LINK_REFERRER_POLICY
    if session is not None:
        max_age = max(60, int((plan.ends_at - _now()).total_seconds()))
        set_cookie(request, response, links.COOKIE, session, max_age=max_age)
        if LANGUAGE_COOKIE not in request.cookies:
            set_cookie(request, response, LANGUAGE_COOKIE, request[LANG],
                       max_age=LANGUAGE_AGE_S)
    log.info("monitoring link opened", extra={"plan_id": plan.id})
    return response


async def form_page(request: web.Request) -> web.StreamResponse:
    return _form(request, await _session_plan(request))


def _texts(values: dict[str, str]) -> dict[str, float | str | None]:
    return dict(values)


def _from_form(plan: Plan, form: Any) -> list[PatientReading]:
    """The readings a plain form holds: each measurement with any part written."""
    out = []
    for kind in plan.measurements:
        m = vitals.MEASUREMENTS[kind]
        if kind == "symptoms":
            words = str(form.get("symptoms", "")).strip()
            if words:
                out.append(PatientReading(measurement=kind, text=words))
            continue
        values = {p.name: str(form.get(p.name, "")).strip() for p in m.parts}
        if any(values.values()):
            out.append(PatientReading(measurement=kind, values=_texts(values)))
    return out


async def _store(request: web.Request, plan: Plan, readings: list[PatientReading],
                 source: str) -> list[int]:
    """Every reading in one transaction: all stored, or none (``InvalidContent`` names the
    fields, as the form's names them)."""
    problems: dict[str, str] = {}
    raised: list[int] = []
    async with request.app[POOL].acquire() as conn, conn.transaction():
        for r in readings:
            try:
                _, alerts = await service.submit_by_patient(
                    conn, records_of(request), plan, measurement=r.measurement,
                    values=r.values, text=r.text, measured_at=r.measured_at, source=source,
                    now=_now(), client_ref=r.client_ref)
                raised += alerts
            except InvalidContent as exc:
                problems.update({("symptoms" if k == "text" else k.removeprefix("values.")): v
                                 for k, v in exc.problems.items()})
        if problems:
            raise InvalidContent(problems)
    return raised


async def _back(request: web.Request) -> str:
    return links.FORM_PATH


async def _plan_or_refuse(request: web.Request) -> Plan:
    plan = await _session_plan(request)
    if plan is None:
        raise errors.ApiError(errors.UNAUTHENTICATED)
    return plan


async def submit_one(request: web.Request) -> web.StreamResponse:
    """One reading from the page's script (JSON); refusals are JSON with the fields."""
    plan = await _plan_or_refuse(request)
    reading = await validation.body(request, PatientReading)
    await _store(request, plan, [reading], "device" if reading.from_device else "home")
    return web.json_response({"stored": True}, status=201)


@outcome.form(_back)
async def submit(request: web.Request) -> web.StreamResponse:
    """The whole form, posted without script."""
    plan = await _plan_or_refuse(request)
    readings = _from_form(plan, await request.post())
    if not readings:
        raise errors.invalid({"form": "empty"})
    await _store(request, plan, readings, "home")
    return outcome.redirect(request, links.FORM_PATH, outcome.Outcome(201))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(links.FORM_PATH, form_page, name="monitoring_form")
    r.add_post(links.FORM_PATH + "/readings", submit, name="monitoring_submit")
    r.add_post(links.FORM_PATH + "/reading", submit_one, name="monitoring_submit_one")
    r.add_get(links.LINK_PATH, open_link, name="monitoring_link")
