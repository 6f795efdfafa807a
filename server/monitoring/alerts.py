"""Alerts: a reading beyond the patient's limits (raised as it is stored), and a reading not
sent within the plan's tolerance (raised by ``sweep_missed``, which the app runs every minute
with the time given, so tests inject it). The nurse moves an alert to acknowledged, to call or
escalated to the GP. Alerts say which measurement and why, never a value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from server.consultations import care

STATES = ("open", "acknowledged", "to_call", "escalated")
# What a worklist shows: every alert not yet acknowledged.
PENDING = ("open", "to_call", "escalated")


@dataclass(frozen=True)
class Alert:
    id: int
    plan_id: int
    patient_id: int
    kind: str
    measurement: str
    reading_id: int | None
    due_at: datetime | None
    raised_at: datetime
    state: str
    state_at: datetime | None

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "plan_id": self.plan_id, "patient_id": self.patient_id,
                "kind": self.kind, "measurement": self.measurement,
                "reading_id": self.reading_id,
                "due_at": self.due_at.isoformat() if self.due_at else None,
                "raised_at": self.raised_at.isoformat(), "state": self.state,
                "state_at": self.state_at.isoformat() if self.state_at else None}


COLUMNS = """a.id, a.plan_id, a.patient_id, a.kind, a.measurement, a.reading_id, a.due_at,
       a.raised_at, a.state, a.state_at"""


def _alert(r: asyncpg.Record) -> Alert:
    return Alert(r["id"], r["plan_id"], r["patient_id"], r["kind"], r["measurement"],
                 r["reading_id"], r["due_at"], r["raised_at"], r["state"], r["state_at"])


OUT_OF_RANGE = """
INSERT INTO monitoring_alerts (plan_id, patient_id, kind, measurement, reading_id, raised_at)
VALUES ($1, $2, 'out_of_range', $3, $4, $5) RETURNING id
"""


async def out_of_range(conn: asyncpg.Connection, *, plan_id: int, patient_id: int,
                       measurement: str, reading_id: int, now: datetime) -> int:
    return int(await conn.fetchval(OUT_OF_RANGE, plan_id, patient_id, measurement, reading_id,
                                   now))


# For each live plan and each measurement that is due (free symptoms never are): the slot
# after the latest reading (or the plan's start) is missed once it is later than the
# tolerance. One alert per slot however often this runs (the unique index); a patient silent
# for a week is one alert, not seven, until she sends again.
MISSED = """
INSERT INTO monitoring_alerts (plan_id, patient_id, kind, measurement, due_at, raised_at)
SELECT p.id, p.patient_id, 'missed', m.measurement, d.due_at, $1
FROM monitoring_plans p
CROSS JOIN LATERAL unnest(p.measurements) AS m (measurement)
CROSS JOIN LATERAL (
    SELECT greatest(p.starts_at, (SELECT max(r.measured_at) FROM monitoring_readings r
                                  WHERE r.plan_id = p.id AND r.measurement = m.measurement))
           + make_interval(hours => p.every_hours) AS due_at) d
WHERE p.ended_at IS NULL AND p.starts_at <= $1 AND m.measurement <> 'symptoms'
  AND d.due_at < p.ends_at
  AND d.due_at + make_interval(hours => p.tolerance_hours) < $1
ON CONFLICT (plan_id, measurement, due_at) WHERE kind = 'missed' DO NOTHING
RETURNING id
"""


async def sweep_missed(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[int]:
    """Raise an alert for every reading missed beyond its tolerance as of ``now``."""
    return [r["id"] for r in await conn.fetch(MISSED, now)]


SET_STATE = f"""
UPDATE monitoring_alerts a SET state = $2, state_by = $3, state_at = $4
WHERE a.id = $1 RETURNING {COLUMNS}
"""
GET = f"SELECT {COLUMNS} FROM monitoring_alerts a WHERE a.id = $1"


async def get(conn: asyncpg.Connection | asyncpg.Pool, alert_id: int) -> Alert | None:
    r = await conn.fetchrow(GET, alert_id)
    return _alert(r) if r else None


async def set_state(conn: asyncpg.Connection, alert_id: int, state: str, by: int,
                    now: datetime) -> Alert:
    if state not in STATES[1:]:
        raise ValueError(state)
    return _alert(await conn.fetchrow(SET_STATE, alert_id, state, by, now))


@dataclass(frozen=True)
class Row:
    """A line of the worklist: an alert with its patient's name (the caller cares for her)."""

    alert: Alert
    patient_name: str


# The caller's worklist: alerts not acknowledged of patients she cares for (the one care rule),
# newest first. Plans ended are left off: their alerts are history.
WORKLIST = f"""
SELECT {COLUMNS}, pt.given_name || ' ' || pt.family_name AS patient_name
FROM monitoring_alerts a
JOIN monitoring_plans p ON p.id = a.plan_id AND p.ended_at IS NULL
JOIN patients pt ON pt.id = a.patient_id
WHERE a.state = ANY($2::text[]) AND {care.caring_sql("$1", "a.patient_id")}
ORDER BY a.raised_at DESC, a.id DESC
LIMIT $3
"""
WORKLIST_LIMIT = 200


async def worklist(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                   states: tuple[str, ...] = PENDING, limit: int = WORKLIST_LIMIT) -> list[Row]:
    return [Row(_alert(r), r["patient_name"])
            for r in await conn.fetch(WORKLIST, staff_id, list(states), limit)]


OF_PATIENT = f"""
SELECT {COLUMNS} FROM monitoring_alerts a WHERE a.patient_id = $1
ORDER BY a.raised_at DESC, a.id DESC LIMIT 100
"""


async def of_patient(conn: asyncpg.Connection | asyncpg.Pool, patient_id: int) -> list[Alert]:
    return [_alert(r) for r in await conn.fetch(OF_PATIENT, patient_id)]


# What a worklist's page polls: a number that changes whenever any alert is raised or moved.
# It says nothing of whose (a count anyone could guess), and costs two index lookups.
VERSION = """
SELECT coalesce((SELECT max(id) FROM monitoring_alerts), 0)::text || '.' ||
       coalesce((SELECT extract(epoch FROM max(state_at)) FROM monitoring_alerts), 0)::text
"""


async def version(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    return str(await conn.fetchval(VERSION))
