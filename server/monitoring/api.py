"""The monitoring API under ``/api/v1/monitoring``: GPs and nurses caring for the patient
(``records.access.monitoring_allowed``), by session or bearer token as the records API.
Coordinators and admins are refused by role; a plan, alert or patient the caller does not care
for is refused exactly as one that does not exist."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from records import fhir
from records.web_common import records_of
from server import openapi, validation
from server.bookings.access import api, caller
from server.keys import POOL
from server.monitoring import alerts, schemas, service
from server.staff import Role

WATCHERS = (Role.GP, Role.NURSE)
Op = openapi.Operation
REFUSED = (401, 403, 404)
PLAN = "/monitoring/plans/{plan_id}"


def _now() -> datetime:
    return datetime.now(UTC)


@api(*WATCHERS)
async def create_plan(request: web.Request) -> web.StreamResponse:
    body = await validation.body(request, schemas.NewPlanBody)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        plan, token = await service.enrol(
            conn, records_of(request), caller(request), patient_id=body.patient_id,
            conditions=list(body.conditions),
            measurements=list(body.measurements) if body.measurements else None,
            every_hours=body.every_hours, tolerance_hours=body.tolerance_hours,
            thresholds=body.thresholds, ends_on=body.ends_on, now=_now())
    return web.json_response({"plan": plan.json(), "link": f"/m/{token}"}, status=201)


@api(*WATCHERS)
async def get_plan(request: web.Request) -> web.StreamResponse:
    plan_id = validation.path_id(request, "plan_id")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        plan = await service.plan_of(conn, records_of(request), caller(request), plan_id)
    return web.json_response(plan.json())


@api(*WATCHERS)
async def submit_reading(request: web.Request) -> web.StreamResponse:
    plan_id = validation.path_id(request, "plan_id")
    body = await validation.body(request, schemas.ReadingBody)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        reading_id, raised = await service.submit_by_staff(
            conn, records_of(request), caller(request), plan_id, measurement=body.measurement,
            values=body.values, text=body.text, measured_at=body.measured_at,
            source=body.source, now=_now())
    return web.json_response({"id": reading_id, "out_of_range": bool(raised),
                              "alerts": raised}, status=201)


@api(*WATCHERS)
async def list_readings(request: web.Request) -> web.StreamResponse:
    plan_id = validation.path_id(request, "plan_id")
    q = validation.query(request, schemas.ReadingsQuery)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        _, found = await service.readings(conn, records_of(request), caller(request), plan_id,
                                          measurement=q.measurement, since=q.since)
    return web.json_response({"readings": [r.json() for r in found]})


@api(*WATCHERS)
async def list_alerts(request: web.Request) -> web.StreamResponse:
    q = validation.query(request, schemas.AlertsQuery)
    states = (q.state,) if q.state else alerts.PENDING
    async with request.app[POOL].acquire() as conn:
        rows = await service.worklist(conn, caller(request), states)
    return web.json_response({"alerts": [r.alert.json() for r in rows]})


@api(*WATCHERS)
async def acknowledge_alert(request: web.Request) -> web.StreamResponse:
    alert_id = validation.path_id(request, "alert_id")
    body = await validation.body(request, schemas.AlertStateBody)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        alert = await service.set_alert_state(conn, records_of(request), caller(request),
                                              alert_id, body.state, _now())
    return web.json_response(alert.json())


@api(*WATCHERS)
async def patient_observations(request: web.Request) -> web.StreamResponse:
    patient_id = validation.path_id(request, "patient_id")
    rec = records_of(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        found = await rec.readings.read(conn, caller(request), patient_id, action="export")
    return web.Response(text=json.dumps(fhir.observations_bundle(
        [r for r in found if r.content is not None]), ensure_ascii=False),
        content_type="application/fhir+json")


ROUTES: list[tuple[openapi.Operation, openapi.Handler]] = [
    (Op("POST", "/monitoring/plans", "createMonitoringPlan",
        "Enrol a patient in tele-monitoring (ends her previous plan); her link, once", 201,
        answer=schemas.PlanCreated, body=schemas.NewPlanBody, errors=REFUSED,
        tag="monitoring"), create_plan),
    (Op("GET", PLAN, "getMonitoringPlan", "A monitoring plan", answer=schemas.Plan,
        errors=REFUSED, tag="monitoring"), get_plan),
    (Op("POST", PLAN + "/readings", "submitReading",
        "Add a reading (sealed like a note); one beyond the limits raises an alert", 201,
        answer=schemas.ReadingStored, body=schemas.ReadingBody, errors=REFUSED,
        tag="monitoring"), submit_reading),
    (Op("GET", PLAN + "/readings", "listReadings", "The plan's readings, oldest first",
        answer=schemas.ReadingList, query=schemas.ReadingsQuery, errors=REFUSED,
        tag="monitoring"), list_readings),
    (Op("GET", "/monitoring/alerts", "listMonitoringAlerts",
        "Alerts of the patients the caller cares for (not acknowledged, unless asked)",
        answer=schemas.AlertList, query=schemas.AlertsQuery, errors=REFUSED,
        tag="monitoring"), list_alerts),
    (Op("POST", "/monitoring/alerts/{alert_id}/state", "acknowledgeAlert",
        "Acknowledge an alert, mark it to call, or escalate it to the GP",
        answer=schemas.Alert, body=schemas.AlertStateBody, errors=REFUSED, tag="monitoring"),
     acknowledge_alert),
    (Op("GET", "/monitoring/patients/{patient_id}/observations", "getPatientObservationsFhir",
        "The patient's readings as FHIR R4 vital-signs Observations",
        answer=schemas.FhirBundle, errors=REFUSED, media_type="application/fhir+json",
        tag="monitoring"), patient_observations),
]


def setup(app: web.Application) -> None:
    for op, handler in ROUTES:
        openapi.route(app, op, handler)
