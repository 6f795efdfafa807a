"""Missed readings become alerts: the slot after the latest reading (or the plan's start),
once later than the plan's tolerance; one alert per slot however often the check runs; none
for free symptoms, an ended plan or a plan past its end. Time is given, never waited for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from server import background
from server.monitoring import alerts, service
from server.monitoring.setup import missed_step
from tests.monitoring.conftest import enrol

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def test_a_reading_missed_beyond_the_tolerance_is_one_alert(conn, rec, ward, make_patient):
    plan, _ = await enrol(conn, rec, ward.nurse, ward.patient, now=START,
                          conditions=("copd",), ends_on=(START + timedelta(days=30)).date())
    assert plan.measurements == ["heart_rate", "spo2", "temperature", "symptoms"]
    # Daily, 12 h of tolerance: due at START + 24 h, missed after START + 36 h.
    assert await alerts.sweep_missed(conn, START + timedelta(hours=35)) == []
    raised = await alerts.sweep_missed(conn, START + timedelta(hours=37))
    assert len(raised) == 3  # symptoms are free: never due
    assert await alerts.sweep_missed(conn, START + timedelta(hours=40)) == []  # once per slot
    rows = await alerts.worklist(conn, ward.nurse.id)
    assert sorted(r.alert.measurement for r in rows) == ["heart_rate", "spo2", "temperature"]
    assert {r.alert.due_at for r in rows} == {START + timedelta(hours=24)}

    # A reading sent (late) moves the next slot on from it.
    async with conn.transaction():
        await service.submit_by_staff(
            conn, rec, ward.nurse, plan.id, measurement="spo2", values={"spo2": 95}, text=None,
            measured_at=START + timedelta(hours=40), source="nurse",
            now=START + timedelta(hours=40))
    assert await alerts.sweep_missed(conn, START + timedelta(hours=40 + 35)) == []
    later = await alerts.sweep_missed(conn, START + timedelta(hours=40 + 37))
    assert [r["measurement"] for r in await conn.fetch(
        "SELECT measurement FROM monitoring_alerts WHERE id = ANY($1)", later)] == ["spo2"]


async def test_no_missed_alert_after_the_plan_ends_or_for_another_patients_tolerance(
        conn, rec, ward, make_patient):
    other = await make_patient("san-siro")
    short, _ = await enrol(conn, rec, ward.nurse, ward.patient, now=START,
                           measurements=["weight"], ends_on=START.date())
    weekly, _ = await enrol(conn, rec, ward.nurse, other, now=START, measurements=["weight"],
                            every_hours=24 * 7, tolerance_hours=48,
                            ends_on=(START + timedelta(days=60)).date())
    # The short plan ends the same day: its first slot is past its end, never due.
    assert await alerts.sweep_missed(conn, START + timedelta(days=3)) == []
    raised = await alerts.sweep_missed(conn, START + timedelta(days=9, hours=1))
    assert [r["plan_id"] for r in await conn.fetch(
        "SELECT plan_id FROM monitoring_alerts WHERE id = ANY($1)", raised)] == [weekly.id]
    assert short.id != weekly.id


async def test_the_apps_loop_runs_the_check_with_the_time_it_is_given(conn, rec, ward, db_url):
    from server import db

    await enrol(conn, rec, ward.nurse, ward.patient, now=START, measurements=["weight"],
                ends_on=(START + timedelta(days=30)).date())
    pool = await db.create_pool(db_url)
    clock = [START + timedelta(hours=10)]

    async def no_wait(_: float) -> None:
        clock[0] += timedelta(hours=12)
        await asyncio.sleep(0)

    raised = asyncio.Event()

    async def step() -> None:
        await missed_step(pool, lambda: clock[0])
        if await pool.fetchval("SELECT count(*) FROM monitoring_alerts"):
            raised.set()

    try:
        async with background.running("monitoring-test") as tasks:
            tasks.every(60, step, "missed readings", wait=no_wait)
            async with asyncio.timeout(5):
                await raised.wait()
    finally:
        await pool.close()
    found = await conn.fetch("SELECT kind, due_at FROM monitoring_alerts")
    assert [(r["kind"], r["due_at"]) for r in found] == [("missed", START + timedelta(days=1))]
