"""The report's tele-monitoring table: patients with a plan in force in November, counted at
their home centre, against plans, readings and alerts written here by hand (the report counts
rows and never opens a reading, so the readings' sealed bytes are placeholders)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import asyncpg

from server.timeutil import local_instant
from tests.records.conftest import login_as
from tests.reports.conftest import QUERY, Seed
from tests.reports.test_report import bearer, table_of

COLUMNS = ("monitored", "enrolled", "sent", "out_of_range", "missed", "escalated")


def _at(day: date, hour: int = 9) -> datetime:
    return local_instant(day, time(hour))


async def _plan(conn: asyncpg.Connection, patient: int, by: int, starts: date, ends: date,
                ended: date | None = None) -> int:
    plan_id: int = await conn.fetchval(
        "INSERT INTO monitoring_plans (patient_id, created_by, created_at, conditions,"
        " measurements, every_hours, tolerance_hours, starts_at, ends_at, ended_at)"
        " VALUES ($1, $2, $3, '{hypertension}', '{blood_pressure}', 24, 12, $3, $4, $5)"
        " RETURNING id", patient, by, _at(starts), _at(ends),
        _at(ended) if ended else None)
    return plan_id


async def _reading(conn: asyncpg.Connection, plan: int, patient: int, day: date,
                   out_of_range: bool = False) -> int:
    reading_id: int = await conn.fetchval(
        "INSERT INTO monitoring_readings (plan_id, patient_id, measurement, measured_at,"
        " received_at, source, out_of_range, ciphertext, wrapped_key, kek_id)"
        " VALUES ($1, $2, 'blood_pressure', $3, $3, 'home', $4, '\\x00', '\\x00', 'test')"
        " RETURNING id", plan, patient, _at(day), out_of_range)
    return reading_id


async def _alert(conn: asyncpg.Connection, plan: int, patient: int, day: date, *,
                 reading: int | None = None, state: str = "open") -> None:
    await conn.execute(
        "INSERT INTO monitoring_alerts (plan_id, patient_id, kind, measurement, reading_id,"
        " due_at, raised_at, state) VALUES ($1, $2, $3, 'blood_pressure', $4, $5, $6, $7)",
        plan, patient, "out_of_range" if reading else "missed", reading,
        None if reading else _at(day, 8), _at(day), state)


async def _monitor(seed: Seed, conn: asyncpg.Connection) -> None:
    """San Siro: p0-p5 enrolled in November, p6-p7 since October; p8's plan ended in October
    and p9's starts in December (neither counted). Readings from p0-p5 in November, p6 only in
    October. Out of range: p0, p1 (p0's escalated to the GP). Missed: p2-p7. Gratosoglio: q0-q4
    enrolled in November, each sent a reading, no alert."""
    assert seed.nurse is not None and seed.gp is not None
    p = seed.patients
    plans: dict[str, int] = {}
    for key in ("p0", "p1", "p2", "p3", "p4", "p5"):
        plans[key] = await _plan(conn, p[key], seed.nurse.id, date(2026, 11, 3),
                                 date(2027, 2, 1))
    for key in ("p6", "p7"):
        plans[key] = await _plan(conn, p[key], seed.gp.id, date(2026, 10, 1), date(2027, 1, 1))
    await _plan(conn, p["p8"], seed.nurse.id, date(2026, 9, 1), date(2027, 1, 1),
                ended=date(2026, 10, 20))
    await _plan(conn, p["p9"], seed.nurse.id, date(2026, 12, 2), date(2027, 1, 1))
    for key in ("p0", "p1", "p2", "p3", "p4", "p5"):
        high = key in ("p0", "p1")
        reading = await _reading(conn, plans[key], p[key], date(2026, 11, 10), high)
        if high:
            await _alert(conn, plans[key], p[key], date(2026, 11, 10), reading=reading,
                         state="escalated" if key == "p0" else "to_call")
    await _reading(conn, plans["p6"], p["p6"], date(2026, 10, 15))
    for key in ("p2", "p3", "p4", "p5", "p6", "p7"):
        await _alert(conn, plans[key], p[key], date(2026, 11, 20))
    for n in range(5):
        key = f"q{n}"
        plan = await _plan(conn, p[key], seed.gp.id, date(2026, 11, 4), date(2027, 2, 1))
        await _reading(conn, plan, p[key], date(2026, 11, 12))


def _row(table: dict[str, Any], key: str) -> list[str]:
    row = next(r for r in table["rows"] if r["key"] == key)
    return [row["cells"][table["columns"].index(c)]["shown"] for c in COLUMNS]


async def test_tele_monitoring_by_centre_counts_patients_with_suppression(client, seed, conn):
    await _monitor(seed, conn)
    assert seed.coordinator is not None and seed.admin is not None
    headers = await bearer(conn, seed.coordinator.id)
    report = await (await client.get(f"/api/v1/reports/activity?{QUERY}",
                                     headers=headers)).json()
    t = table_of(report, "monitoring.centre")
    assert [r["key"] for r in t["rows"]] == ["san-siro", "total"]
    # 8 monitored, 6 enrolled, 6 sent; 2 out of range and 1 escalated are under five.
    assert _row(t, "san-siro") == ["8", "6", "6", "<5", "6", "<5"]
    assert _row(t, "total") == ["8", "6", "6", "<5", "6", "<5"]
    assert all(c["value"] is None for r in t["rows"] for c in r["cells"]
               if c["shown"] == "<5")

    # The admin sees every centre: Gratosoglio's five add to the total.
    report = await (await client.get(f"/api/v1/reports/activity?{QUERY}",
                                     headers=await bearer(conn, seed.admin.id))).json()
    t = table_of(report, "monitoring.centre")
    assert _row(t, "gratosoglio") == ["5", "5", "5", "0", "0", "0"]
    assert _row(t, "san-siro") == ["8", "6", "6", "<5", "6", "<5"]
    assert _row(t, "total") == ["13", "11", "11", "<5", "6", "<5"]

    # In the CSV and on the page, where the placeholder section used to be.
    csv_text = await (await client.get(f"/api/v1/reports/activity?{QUERY}&format=csv",
                                       headers=headers)).text()
    assert "monitoring.centre,Telemonitoraggio per centro,san-siro" in csv_text
    await login_as(client, seed.coordinator, "")
    html = await (await client.get(f"/reports/activity?{QUERY}")).text()
    assert 'data-table="monitoring.centre"' in html and "Patients monitored" in html
    assert "Not part of Casa yet" not in html
