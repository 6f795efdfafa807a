"""Demo tele-monitoring: the San Siro nurse has two patients on a plan since two weeks ago,
with a reading a day sent from home (through the same service a patient's link uses, the time
of each day injected), the last an hour ago and one blood pressure above its limit, so the
worklist, the trends and the GP's Readings tab have something to show. Idempotent: nothing is
done when any plan exists."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

from aiohttp import web

from records import keyring
from records.crypto import Envelope
from records.keys import RECORDS
from records.service import Records
from server import staff as staff_store
from server.keys import CONFIG, POOL
from server.monitoring import service
from server.timeutil import ROME, local_instant

log = logging.getLogger("casa.monitoring")

NURSE = "infermiera.colombo@casa.example"
CENTRE = "san-siro"
DAYS = 14
# (conditions, the reading of day n (0 = the first) as the form would send it)
PATIENTS: tuple[tuple[list[str], str, Any], ...] = (
    (["hypertension"], "blood_pressure",
     lambda n: {"systolic": 128 + (n * 7) % 15, "diastolic": 78 + (n * 3) % 8}),
    (["diabetes"], "glucose", lambda n: {"glucose": 105 + (n * 11) % 40}),
)
# The first patient's latest reading: above the hypertension limits, raising an alert.
HIGH = {"systolic": 172, "diastolic": 98}


async def seed_demo(app: web.Application, now: datetime | None = None) -> None:
    # The records demo made the keyring if this is the first run (as records/demo.py does).
    rec = app.get(RECORDS) or Records(Envelope(keyring.load_or_create(app[CONFIG].keyring_path)))
    now = now or datetime.now(ROME)
    today = now.astimezone(ROME).date()
    async with app[POOL].acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM monitoring_plans)"):
            return
        nurse = await staff_store.get_by_email(conn, NURSE)
        ids = [r["id"] for r in await conn.fetch(
            "SELECT id FROM patients WHERE home_centre_id = $1 ORDER BY id LIMIT $2",
            CENTRE, len(PATIENTS))]
        if nurse is None or len(ids) < len(PATIENTS):
            log.warning("monitoring demo skipped: demo nurse or patients missing")
            return
        start = local_instant(today - timedelta(days=DAYS), time(7))
        for patient_id, (conditions, measurement, value_of) in zip(ids, PATIENTS, strict=True):
            plan, _token = await service.enrol(
                conn, rec, nurse, patient_id=patient_id, conditions=conditions,
                measurements=[measurement], every_hours=24, tolerance_hours=12, thresholds=None,
                ends_on=today + timedelta(days=60), now=start)
            # A reading a day, the last an hour ago: the next is not due yet, so the
            # missed-reading check finds nothing to raise while the demo is being tried.
            for n in range(DAYS):
                at = now - timedelta(days=DAYS - 1 - n, hours=1)
                values = (HIGH if measurement == "blood_pressure" and n == DAYS - 1
                          else value_of(n))
                await service.submit_by_patient(conn, rec, plan, measurement=measurement,
                                                values=values, text=None, measured_at=None,
                                                source="home", now=at)
    log.info("monitoring demo plans created")
