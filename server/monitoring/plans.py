"""Monitoring plans: what a patient measures at home, how often, and her alert limits.

A plan names the patient's conditions (hypertension, diabetes, heart failure, COPD); each
brings the measurements usually watched and default limits (``default_thresholds``). The
clinician may edit any limit; a limit given replaces the default of that part. One plan is in
force per patient: enrolling again ends the old one and its links. Plans hold limits and
schedules, never a reading."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from records.readings import Thresholds
from records.vitals import MEASUREMENTS, PARTS

CONDITIONS = ("hypertension", "diabetes", "heart_failure", "copd")
# What each condition watches, and its limits (ESC/ESH, ADA and GOLD home-monitoring figures
# rounded to what a community nurse acts on).
WATCHES: dict[str, tuple[str, ...]] = {
    "hypertension": ("blood_pressure", "heart_rate"),
    "diabetes": ("glucose",),
    "heart_failure": ("blood_pressure", "heart_rate", "weight", "spo2", "symptoms"),
    "copd": ("spo2", "heart_rate", "temperature", "symptoms"),
}
GENERAL: Thresholds = {
    "systolic": {"low": 90, "high": 180}, "diastolic": {"low": 50, "high": 110},
    "heart_rate": {"low": 50, "high": 120}, "spo2": {"low": 92},
    "glucose": {"low": 70, "high": 300}, "temperature": {"low": 35, "high": 38},
}
BY_CONDITION: dict[str, Thresholds] = {
    "hypertension": {"systolic": {"high": 160}, "diastolic": {"high": 100},
                     "heart_rate": {"high": 110}},
    "diabetes": {"glucose": {"low": 70, "high": 250}},
    "heart_failure": {"systolic": {"low": 90, "high": 160}, "heart_rate": {"high": 110}},
    "copd": {"spo2": {"low": 90}, "heart_rate": {"high": 110}, "temperature": {"high": 38}},
}
EVERY_HOURS_DEFAULT = 24
# A daily reading may come up to half a day late before it counts as missed.
TOLERANCE_HOURS_DEFAULT = 12


def default_measurements(conditions: Iterable[str]) -> list[str]:
    wanted = {m for c in conditions for m in WATCHES[c]}
    return [k for k in MEASUREMENTS if k in wanted]


def default_thresholds(conditions: Iterable[str], measurements: Iterable[str]) -> Thresholds:
    """The limits of the plan's parts: a condition's own limit replaces the general one (COPD
    lives with a lower saturation), and conditions that meet narrow each other (the higher
    low, the lower high)."""
    parts = [p.name for m in measurements for p in MEASUREMENTS[m].parts]
    out: Thresholds = {}
    for part in parts:
        limits = dict(GENERAL.get(part, {}))
        for side, pick in (("low", max), ("high", min)):
            own = [BY_CONDITION[c][part][side] for c in conditions
                   if side in BY_CONDITION[c].get(part, {})]
            if own:
                limits[side] = pick(own)
        out[part] = limits
    return out


def thresholds_for(conditions: Iterable[str], measurements: Iterable[str],
                   given: Mapping[str, Mapping[str, float | None]] | None) -> Thresholds:
    """The defaults with each part given by the clinician replaced (``{"low": None}`` removes
    a limit); a part not measured by the plan is refused (ValueError names it)."""
    conditions, measurements = list(conditions), list(measurements)
    out = default_thresholds(conditions, measurements)
    for part, limits in (given or {}).items():
        if part not in out:
            raise ValueError(part)
        p = PARTS[part]
        chosen = {k: float(v) for k, v in limits.items() if k in ("low", "high")
                  and v is not None}
        if any(not p.low <= v <= p.high for v in chosen.values()) or (
                len(chosen) == 2 and chosen["low"] >= chosen["high"]):
            raise ValueError(part)
        out[part] = chosen
    return out


@dataclass(frozen=True)
class Plan:
    id: int
    patient_id: int
    created_by: int
    created_at: datetime
    conditions: list[str]
    measurements: list[str]
    every_hours: int
    tolerance_hours: int
    thresholds: Thresholds
    starts_at: datetime
    ends_at: datetime
    ended_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.ended_at is None and self.starts_at <= now < self.ends_at

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "patient_id": self.patient_id, "created_by": self.created_by,
                "conditions": self.conditions, "measurements": self.measurements,
                "every_hours": self.every_hours, "tolerance_hours": self.tolerance_hours,
                "thresholds": self.thresholds, "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat(),
                "ended_at": self.ended_at.isoformat() if self.ended_at else None}


COLUMNS = """id, patient_id, created_by, created_at, conditions, measurements, every_hours,
       tolerance_hours, thresholds::text AS thresholds, starts_at, ends_at, ended_at"""


def _plan(r: asyncpg.Record) -> Plan:
    return Plan(r["id"], r["patient_id"], r["created_by"], r["created_at"], list(r["conditions"]),
                list(r["measurements"]), r["every_hours"], r["tolerance_hours"],
                json.loads(r["thresholds"]), r["starts_at"], r["ends_at"], r["ended_at"])


GET = f"SELECT {COLUMNS} FROM monitoring_plans WHERE id = $1"
CURRENT = f"SELECT {COLUMNS} FROM monitoring_plans WHERE patient_id = $1 AND ended_at IS NULL"
END_CURRENT = """
UPDATE monitoring_plans SET ended_at = $2 WHERE patient_id = $1 AND ended_at IS NULL
RETURNING id
"""
INSERT = f"""
INSERT INTO monitoring_plans (patient_id, created_by, conditions, measurements, every_hours,
                              tolerance_hours, thresholds, starts_at, ends_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
RETURNING {COLUMNS}
"""


async def get(conn: asyncpg.Connection | asyncpg.Pool, plan_id: int) -> Plan | None:
    r = await conn.fetchrow(GET, plan_id)
    return _plan(r) if r else None


async def current(conn: asyncpg.Connection | asyncpg.Pool, patient_id: int) -> Plan | None:
    """The patient's plan not ended (it may have run past its end date)."""
    r = await conn.fetchrow(CURRENT, patient_id)
    return _plan(r) if r else None


async def create(conn: asyncpg.Connection, *, patient_id: int, created_by: int,
                 conditions: list[str], measurements: list[str], every_hours: int,
                 tolerance_hours: int, thresholds: Thresholds, starts_at: datetime,
                 ends_at: datetime) -> tuple[Plan, list[int]]:
    """A new plan (in the caller's transaction), ending the patient's previous one; the new
    plan and the ids of plans it ended."""
    ended = [r["id"] for r in await conn.fetch(END_CURRENT, patient_id, starts_at)]
    r = await conn.fetchrow(INSERT, patient_id, created_by, conditions, measurements,
                            every_hours, tolerance_hours, json.dumps(thresholds), starts_at,
                            ends_at)
    return _plan(r), ended


SET_THRESHOLDS = f"""
UPDATE monitoring_plans SET thresholds = $2::jsonb WHERE id = $1 AND ended_at IS NULL
RETURNING {COLUMNS}
"""


async def set_thresholds(conn: asyncpg.Connection, plan_id: int,
                         thresholds: Thresholds) -> Plan | None:
    """New limits for a plan in force (readings from now on are judged by them)."""
    r = await conn.fetchrow(SET_THRESHOLDS, plan_id, json.dumps(thresholds))
    return _plan(r) if r else None


END = "UPDATE monitoring_plans SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL"


async def end(conn: asyncpg.Connection, plan_id: int, at: datetime) -> None:
    await conn.execute(END, plan_id, at)
