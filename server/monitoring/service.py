"""Tele-monitoring operations, for the API, the pages and the patient's form: every one runs
the access rule (``records.access.monitoring_allowed``, through ``records.readings``) before it
says anything about the patient, and writes the audit log in the caller's transaction.
Readings' values go through ``records`` only (sealed there, opened there)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from records import access, audit, vitals
from records.errors import Denied, InvalidContent
from records.readings import EPOCH, Stored
from records.service import Records
from server.monitoring import alerts, links, plans
from server.monitoring.alerts import Alert
from server.monitoring.plans import Plan
from server.staff import Staff
from server.timeutil import day_bounds

# A reading may carry its own time (entered offline, read from a device): within these bounds.
CLOCK_SKEW = timedelta(minutes=10)
OFFLINE_AGE = timedelta(days=7)
MAX_PLAN_DAYS = 366


async def _audit(conn: asyncpg.Connection, action: str, user: Staff | None, patient_id: int,
                 **detail: Any) -> None:
    await audit.append(conn, action=action, actor_staff_id=user.id if user else None,
                       actor_kind="staff" if user else "patient", patient_id=patient_id,
                       booking_id=None, detail=detail)


async def enrol(conn: asyncpg.Connection, rec: Records, user: Staff, *, patient_id: int,
                conditions: list[str], measurements: list[str] | None, every_hours: int | None,
                tolerance_hours: int | None,
                thresholds: dict[str, dict[str, float | None]] | None, ends_on: date,
                now: datetime) -> tuple[Plan, str]:
    """Enrol the patient (ending any plan she had); the plan and her new link's token."""
    await rec.readings.check(conn, user, patient_id)
    bad: dict[str, str] = {}
    if not conditions and not measurements:
        bad["conditions"] = "a condition or a measurement is required"
    if any(c not in plans.CONDITIONS for c in conditions):
        bad["conditions"] = "unknown condition"
    chosen = measurements or (plans.default_measurements(conditions) if "conditions" not in bad
                              else [])
    if any(m not in vitals.MEASUREMENTS for m in chosen):
        bad["measurements"] = "unknown measurement"
    # A day far from now is refused before it is turned into an instant: year 1 or 9999 has
    # no midnight in Rome that Python can represent (the fuzzer's 0001-01-01 was a 500).
    ends_at = (day_bounds(ends_on)[1] if abs((ends_on - now.date()).days) <= MAX_PLAN_DAYS + 2
               else None)
    if ends_at is None or not now < ends_at <= now + timedelta(days=MAX_PLAN_DAYS):
        bad["ends_on"] = f"after today and within {MAX_PLAN_DAYS} days"
    limits: dict[str, dict[str, float]] = {}
    if not bad:
        try:
            limits = plans.thresholds_for(conditions, chosen, thresholds)
        except ValueError as exc:
            bad[f"thresholds.{exc}"] = "not a part of this plan, or not a plausible range"
    if bad or ends_at is None:
        raise InvalidContent(bad)
    plan, ended = await plans.create(
        conn, patient_id=patient_id, created_by=user.id, conditions=conditions,
        measurements=chosen, every_hours=every_hours or plans.EVERY_HOURS_DEFAULT,
        tolerance_hours=tolerance_hours or plans.TOLERANCE_HOURS_DEFAULT, thresholds=limits,
        starts_at=now, ends_at=ends_at)
    for old in ended:
        await links.revoke(conn, old, now)
    token = await links.issue(conn, plan)
    await _audit(conn, "monitoring_plan", user, patient_id, plan_id=plan.id, ended=ended)
    return plan, token


async def plan_of(conn: asyncpg.Connection, rec: Records, user: Staff, plan_id: int) -> Plan:
    """A plan the caller may see; ``Denied`` alike for one that does not exist."""
    plan = await plans.get(conn, plan_id)
    if plan is None:
        raise Denied(f"monitoring plan {plan_id} refused")
    await rec.readings.check(conn, user, plan.patient_id)
    return plan


async def current_plan(conn: asyncpg.Connection, rec: Records, user: Staff,
                       patient_id: int) -> Plan | None:
    await rec.readings.check(conn, user, patient_id)
    return await plans.current(conn, patient_id)


async def change_thresholds(conn: asyncpg.Connection, rec: Records, user: Staff, plan_id: int,
                            given: dict[str, dict[str, float | None]]) -> Plan:
    """Edit the limits of a plan in force, part by part (a part not given keeps its limits);
    the patient's link is untouched."""
    plan = await plan_of(conn, rec, user, plan_id)
    merged = {**{k: dict(v) for k, v in plan.thresholds.items()}}
    try:
        fresh = plans.thresholds_for(plan.conditions, plan.measurements, given)
    except ValueError as exc:
        raise InvalidContent({f"thresholds.{exc}": "not a part of this plan, or not a "
                                                   "plausible range"}) from None
    merged.update({part: fresh[part] for part in given})
    changed = await plans.set_thresholds(conn, plan.id, merged)
    if changed is None:
        raise InvalidContent({"plan": "this plan has ended"})
    await _audit(conn, "monitoring_limits", user, plan.patient_id, plan_id=plan.id,
                 parts=sorted(given))
    return changed


async def new_link(conn: asyncpg.Connection, rec: Records, user: Staff, plan_id: int,
                   now: datetime) -> str:
    plan = await plan_of(conn, rec, user, plan_id)
    if not plan.live(now):
        raise InvalidContent({"plan": "this plan has ended"})
    token = await links.new_link(conn, plan, now)
    await _audit(conn, "monitoring_link", user, plan.patient_id, plan_id=plan.id)
    return token


async def revoke_link(conn: asyncpg.Connection, rec: Records, user: Staff, plan_id: int,
                      now: datetime) -> None:
    plan = await plan_of(conn, rec, user, plan_id)
    await links.revoke(conn, plan.id, now)
    await _audit(conn, "monitoring_link_revoke", user, plan.patient_id, plan_id=plan.id)


async def _submit(conn: asyncpg.Connection, rec: Records, user: Staff | None, plan: Plan, *,
                  measurement: str, values: dict[str, Any] | None, text: str | None,
                  measured_at: datetime | None, source: str, now: datetime,
                  client_ref: UUID | None = None) -> tuple[int, list[int]]:
    if not plan.live(now):
        raise InvalidContent({"plan": "this plan has ended"})
    if measurement not in plan.measurements:
        raise InvalidContent({"measurement": "not measured in this plan"})
    reading = vitals.parse(measurement, values, text)
    at = measured_at or now
    if not (max(plan.starts_at - CLOCK_SKEW, now - OFFLINE_AGE) <= at <= now + CLOCK_SKEW):
        raise InvalidContent({"measured_at": "not a time of this plan"})
    stored = await rec.readings.submit(
        conn, user, plan_id=plan.id, patient_id=plan.patient_id, measurement=measurement,
        measured_at=at, source=source, reading=reading, thresholds=plan.thresholds,
        client_ref=client_ref)
    if stored is None:  # sent before: already stored, its alert already raised
        return 0, []
    reading_id, beyond = stored
    raised = []
    if beyond:
        raised.append(await alerts.out_of_range(conn, plan_id=plan.id,
                                                patient_id=plan.patient_id,
                                                measurement=measurement,
                                                reading_id=reading_id, now=now))
    return reading_id, raised


async def submit_by_staff(conn: asyncpg.Connection, rec: Records, user: Staff, plan_id: int, *,
                          measurement: str, values: dict[str, Any] | None, text: str | None,
                          measured_at: datetime | None, source: str, now: datetime
                          ) -> tuple[int, list[int]]:
    """A reading taken by the nurse (at the kiosk, in a visit) or sent through the API."""
    plan = await plan_of(conn, rec, user, plan_id)
    return await _submit(conn, rec, user, plan, measurement=measurement, values=values,
                         text=text, measured_at=measured_at, source=source, now=now)


async def submit_by_patient(conn: asyncpg.Connection, rec: Records, plan: Plan, *,
                            measurement: str, values: dict[str, Any] | None, text: str | None,
                            measured_at: datetime | None, source: str, now: datetime,
                            client_ref: UUID | None = None) -> tuple[int, list[int]]:
    """A reading from the patient's link (``plan`` resolved from her session); a reading sent
    again (same ``client_ref``) is stored once (answered with id 0)."""
    return await _submit(conn, rec, None, plan, measurement=measurement, values=values,
                         text=text, measured_at=measured_at, source=source, now=now,
                         client_ref=client_ref)


async def readings(conn: asyncpg.Connection, rec: Records, user: Staff, plan_id: int, *,
                   measurement: str | None = None, since: datetime | None = None
                   ) -> tuple[Plan, list[Stored]]:
    plan = await plan_of(conn, rec, user, plan_id)
    found = await rec.readings.read(conn, user, plan.patient_id, plan_id=plan.id,
                                    measurement=measurement, since=since or EPOCH)
    return plan, found


def may_work_alerts(user: Staff) -> bool:
    """Whether ``user``'s role has a worklist at all (whose alerts: the care rule, per row)."""
    return access.monitoring_allowed(user.role, True)


async def worklist(conn: asyncpg.Connection, user: Staff,
                   states: tuple[str, ...] = alerts.PENDING) -> list[alerts.Row]:
    if not may_work_alerts(user):
        raise Denied("monitoring alerts refused")
    return await alerts.worklist(conn, user.id, states)


async def set_alert_state(conn: asyncpg.Connection, rec: Records, user: Staff, alert_id: int,
                          state: str, now: datetime) -> Alert:
    """Acknowledge an alert, mark it to call, or escalate it to the GP."""
    found = await alerts.get(conn, alert_id)
    if found is None:
        raise Denied(f"monitoring alert {alert_id} refused")
    await rec.readings.check(conn, user, found.patient_id)
    if state not in alerts.STATES[1:]:
        raise InvalidContent({"state": "acknowledged, to_call or escalated"})
    changed = await alerts.set_state(conn, alert_id, state, user.id, now)
    await _audit(conn, "monitoring_alert", user, found.patient_id, alert_id=alert_id,
                 state=state)
    return changed
