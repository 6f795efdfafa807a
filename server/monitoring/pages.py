"""The staff's tele-monitoring pages: the worklist (``/monitoring``: alerts of the patients the
caller cares for, kept current by ``monitor-worklist.js``), a patient's page (her plan, limits,
trends per measurement, readings taken at the centre, her link) and the enrolment form.
GPs and nurses only; a patient the caller does not care for is refused like one that does not
exist. Every value shown is opened by ``records`` and the reading is audited."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from markupsafe import Markup

from records import access
from records.errors import InvalidContent
from records.keys import RECORDS
from records.readings import Stored
from records.service import Records
from records.vitals import MEASUREMENTS
from records.web_common import records_of
from server import errors, outcome, validation
from server.calls.views import READINGS_TAB
from server.keys import JINJA, LANG, POOL, STAFF
from server.monitoring import alerts, plans, service
from server.monitoring.plans import Plan
from server.monitoring.trend import chart
from server.pages import context, current_staff, render, require_staff, translator
from server.patients import get as get_patient
from server.staff import Role
from server.timeutil import ROME

WATCHERS = (Role.GP, Role.NURSE)
PATIENT = "/monitoring/patients/{patient_id}"
# The trends show this much history: what a nurse compares a reading with.
TREND_DAYS = 90


def _now() -> datetime:
    return datetime.now(UTC)


def staff_words(request: web.Request) -> dict[str, str]:
    _ = translator(request)
    return {
        "out_of_range": _("Out of range"), "missed": _("Reading missed"),
        "open": _("New"), "acknowledged": _("Acknowledged"), "to_call": _("To call"),
        "escalated": _("Escalated to the GP"),
        "blood_pressure": _("Blood pressure"), "heart_rate": _("Pulse"),
        "spo2": _("Oxygen (SpO2)"), "glucose": _("Blood sugar"), "weight": _("Weight"),
        "temperature": _("Temperature"), "symptoms": _("Symptoms"),
        "systolic": _("Systolic"), "diastolic": _("Diastolic"),
        "hypertension": _("Hypertension"), "diabetes": _("Diabetes"),
        "heart_failure": _("Heart failure"), "copd": _("COPD"),
    }


@require_staff(*WATCHERS)
async def worklist_page(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].acquire() as conn:
        rows = await service.worklist(conn, current_staff(request))
        version = await alerts.version(conn)
    last = outcome.take(request)
    return outcome.forget(request, render(
        request, "monitoring/worklist.html", rows=rows, words=staff_words(request),
        version=version, error=last.message if last and last.status >= 400 else None))


@require_staff(*WATCHERS)
async def worklist_part(request: web.Request) -> web.StreamResponse:
    """The worklist's list alone, for the page's script to put in place."""
    async with request.app[POOL].acquire() as conn:
        rows = await service.worklist(conn, current_staff(request))
        version = await alerts.version(conn)
    return render(request, "monitoring/_worklist.html", rows=rows, words=staff_words(request),
                  version=version)


@require_staff(*WATCHERS)
async def worklist_version(request: web.Request) -> web.StreamResponse:
    """What the worklist polls: changes when any alert is raised or moved (no ids, no names)."""
    return web.json_response({"version": await alerts.version(request.app[POOL])})


async def _back_to_worklist(request: web.Request) -> str:
    return "/monitoring"


@outcome.form(_back_to_worklist)
@require_staff(*WATCHERS)
async def alert_state(request: web.Request) -> web.StreamResponse:
    alert_id = validation.path_id(request, "alert_id")
    form = await request.post()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        alert = await service.set_alert_state(conn, records_of(request), current_staff(request),
                                              alert_id, str(form.get("state", "")), _now())
    back = str(form.get("back", ""))
    to = PATIENT.format(patient_id=alert.patient_id) if back == "patient" else "/monitoring"
    return outcome.redirect(request, to, outcome.Outcome(200, kind="alert"))


def _series(found: Iterable[Stored], part: str) -> list[tuple[datetime, float]]:
    return [(r.measured_at, r.content.values[part]) for r in found
            if r.content is not None and part in r.content.values]


def _trends(request: web.Request, plan: Plan, found: list[Stored]) -> list[dict[str, Any]]:
    words = staff_words(request)
    out = []
    for kind in plan.measurements:
        m = MEASUREMENTS[kind]
        mine = [r for r in found if r.measurement == kind]
        charts = []
        for p in m.parts:
            limits = plan.thresholds.get(p.name, {})
            label = words[kind] if len(m.parts) == 1 else f"{words[kind]}: {words[p.name]}"
            charts.append(chart(_series(mine, p.name), low=limits.get("low"),
                                high=limits.get("high"), unit=p.unit, label=label, tz=ROME,
                                lang=request.get(LANG, "it")))
        notes = [r for r in mine if r.content is not None and r.content.text]
        out.append({"kind": kind, "label": words[kind], "charts": charts, "notes": notes[-10:],
                    "parts": m.parts})
    return out


async def patient_view(conn: asyncpg.Connection, rec: Records, request: web.Request,
                       patient_id: int) -> dict[str, Any]:
    """What the patient's page and the call's Readings tab show (the caller checked first)."""
    user = current_staff(request)
    plan = await service.current_plan(conn, rec, user, patient_id)
    found: list[Stored] = []
    if plan is not None:
        _, found = await service.readings(conn, rec, user, plan.id,
                                          since=_now() - timedelta(days=TREND_DAYS))
    return {"plan": plan, "trends": _trends(request, plan, found) if plan else [],
            "alerts": await alerts.of_patient(conn, patient_id) if plan else [],
            "words": staff_words(request)}


@require_staff(*WATCHERS)
async def patient_page(request: web.Request) -> web.StreamResponse:
    patient_id = validation.path_id(request, "patient_id")
    last = outcome.take(request)
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        view = await patient_view(conn, rec, request, patient_id)  # checks care first
        patient = await get_patient(conn, patient_id)
    if patient is None:
        raise errors.NotFound()
    return outcome.forget(request, render(
        request, "monitoring/patient.html", status=last.status if last else 200,
        patient=patient, **view, conditions=plans.CONDITIONS, kinds=list(MEASUREMENTS),
        defaults=plans.default_thresholds(plans.CONDITIONS, list(MEASUREMENTS)),
        ends_default=(date.today() + timedelta(days=90)).isoformat(),
        error=last.message if last and last.status >= 400 else None,
        fields=last.fields if last else {}, done=last.kind if last and last.status < 400
        else None, link=(last.keep.get("link") if last else None)))


async def _back_to_patient(request: web.Request) -> str:
    return PATIENT.format(patient_id=request.match_info.get("patient_id", "0"))


def _number(form: Any, name: str) -> float | None:
    raw = str(form.get(name, "")).strip().replace(",", ".")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise errors.invalid({name: "a number"}) from None


@outcome.form(_back_to_patient)
@require_staff(*WATCHERS)
async def enrol(request: web.Request) -> web.StreamResponse:
    """The enrolment form: conditions, measurements, how often, limits, end date."""
    patient_id = validation.path_id(request, "patient_id")
    form = await request.post()
    conditions = [c for c in plans.CONDITIONS if form.get(f"c-{c}")]
    kinds = [k for k in MEASUREMENTS if form.get(f"m-{k}")]
    limits: dict[str, dict[str, float | None]] = {}
    for kind in kinds or plans.default_measurements(conditions):
        for p in MEASUREMENTS[kind].parts:
            low, high = _number(form, f"low-{p.name}"), _number(form, f"high-{p.name}")
            if low is not None or high is not None:
                limits[p.name] = {"low": low, "high": high}
    try:
        ends_on = date.fromisoformat(str(form.get("ends_on", "")))
        every = int(str(form.get("every_hours", "24")))
    except ValueError:
        raise errors.invalid({"ends_on": "a date"}) from None
    async with request.app[POOL].acquire() as conn, conn.transaction():
        _, token = await service.enrol(
            conn, records_of(request), current_staff(request), patient_id=patient_id,
            conditions=conditions, measurements=kinds or None, every_hours=every,
            tolerance_hours=None, thresholds=limits or None, ends_on=ends_on, now=_now())
    return outcome.redirect(request, PATIENT.format(patient_id=patient_id), outcome.Outcome(
        201, kind="enrolled", keep={"link": _link(request, token)}))


def _link(request: web.Request, token: str) -> str:
    return str(request.url.with_path(f"/m/{token}").with_query(None))


def _limits(form: Any, parts: Iterable[str]) -> dict[str, dict[str, float | None]]:
    """The limits a form gives, part by part (a part with both fields empty is not given)."""
    out: dict[str, dict[str, float | None]] = {}
    for part in parts:
        low, high = _number(form, f"low-{part}"), _number(form, f"high-{part}")
        if low is not None or high is not None:
            out[part] = {"low": low, "high": high}
    return out


@outcome.form(_back_to_patient)
@require_staff(*WATCHERS)
async def change_limits(request: web.Request) -> web.StreamResponse:
    """Edit the plan's limits in place: the patient keeps her link."""
    patient_id = validation.path_id(request, "patient_id")
    form = await request.post()
    rec = records_of(request)
    user = current_staff(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        plan = await service.current_plan(conn, rec, user, patient_id)
        if plan is None:
            raise errors.NotFound()
        given = _limits(form, plan.thresholds)
        if not given:
            raise errors.invalid({"thresholds": "write a limit"})
        await service.change_thresholds(conn, rec, user, plan.id, given)
    return outcome.redirect(request, PATIENT.format(patient_id=patient_id),
                            outcome.Outcome(200, kind="limits"))


@outcome.form(_back_to_patient)
@require_staff(*WATCHERS)
async def new_link(request: web.Request) -> web.StreamResponse:
    """A new link for the patient (the old one and its sessions stop working). The link is
    shown once, to this staff member, on the page the form returns to."""
    patient_id = validation.path_id(request, "patient_id")
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        plan = await service.current_plan(conn, rec, current_staff(request), patient_id)
        if plan is None:
            raise errors.NotFound()
        token = await service.new_link(conn, rec, current_staff(request), plan.id, _now())
    return outcome.redirect(request, PATIENT.format(patient_id=patient_id), outcome.Outcome(
        200, kind="link", keep={"link": _link(request, token)}))


@outcome.form(_back_to_patient)
@require_staff(*WATCHERS)
async def revoke_link(request: web.Request) -> web.StreamResponse:
    patient_id = validation.path_id(request, "patient_id")
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        plan = await service.current_plan(conn, rec, current_staff(request), patient_id)
        if plan is None:
            raise errors.NotFound()
        await service.revoke_link(conn, rec, current_staff(request), plan.id, _now())
    return outcome.redirect(request, PATIENT.format(patient_id=patient_id),
                            outcome.Outcome(200, kind="revoked"))


@outcome.form(_back_to_patient)
@require_staff(*WATCHERS)
async def add_reading(request: web.Request) -> web.StreamResponse:
    """Readings taken at the centre (the kiosk visit, the nurse's round): each measurement
    with a value written is one reading, all stored or none."""
    patient_id = validation.path_id(request, "patient_id")
    form = await request.post()
    rec = records_of(request)
    user = current_staff(request)
    source = "kiosk" if form.get("source") == "kiosk" else "nurse"
    async with request.app[POOL].acquire() as conn, conn.transaction():
        plan = await service.current_plan(conn, rec, user, patient_id)
        if plan is None:
            raise errors.NotFound()
        taken = 0
        problems: dict[str, str] = {}
        for kind in plan.measurements:
            m = MEASUREMENTS[kind]
            values = {p.name: str(form.get(p.name, "")).strip() for p in m.parts}
            text = str(form.get("symptoms", "")).strip() if kind == "symptoms" else None
            if not any(values.values()) and not text:
                continue
            try:
                await service.submit_by_staff(
                    conn, rec, user, plan.id, measurement=kind,
                    values=dict(values) or None, text=text, measured_at=None, source=source,
                    now=_now())
                taken += 1
            except InvalidContent as exc:
                problems.update(exc.problems)
        if problems or not taken:
            raise InvalidContent(problems or {"form": "write at least one value"})
    return outcome.redirect(request, PATIENT.format(patient_id=patient_id),
                            outcome.Outcome(201, kind="readings", keep={"count": taken}))


async def call_tab(request: web.Request, patient_id: int) -> Markup | None:
    """The call page's Readings tab (``server.calls.views.READINGS_TAB``): the trends of a
    patient with a plan, for a GP or nurse caring for her; None otherwise (no tab)."""
    user = request.get(STAFF)
    # Without the records keyring the readings cannot be opened: the call goes on without the
    # tab (records' own pages say why), never refused because of it.
    rec = request.app.get(RECORDS)
    if user is None or rec is None or not service.may_work_alerts(user):
        return None
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if not await access.may_monitor(conn, user, patient_id) \
                or await plans.current(conn, patient_id) is None:
            return None
        view = await patient_view(conn, rec, request, patient_id)
    html = request.app[JINJA].get_template("monitoring/_call_tab.html").render(
        context(request, **view))
    return Markup(html)  # noqa: S704 (a template of ours, autoescaped)


def setup(app: web.Application) -> None:
    app[READINGS_TAB] = call_tab
    r = app.router
    p = "/monitoring/patients/{patient_id:\\d{1,18}}"
    r.add_get("/monitoring", worklist_page, name="monitoring_worklist")
    r.add_get("/monitoring/worklist", worklist_part, name="monitoring_worklist_part")
    r.add_get("/monitoring/version", worklist_version, name="monitoring_version")
    r.add_post("/monitoring/alerts/{alert_id:\\d{1,18}}/state", alert_state,
               name="monitoring_alert_state")
    r.add_get(p, patient_page, name="monitoring_patient")
    r.add_post(p + "/plan", enrol, name="monitoring_enrol")
    r.add_post(p + "/limits", change_limits, name="monitoring_limits")
    r.add_post(p + "/link", new_link, name="monitoring_new_link")
    r.add_post(p + "/link/revoke", revoke_link, name="monitoring_revoke_link")
    r.add_post(p + "/readings", add_reading, name="monitoring_add_reading")
