"""Erasure reaches readings: the patient's erasure blanks their data keys and destroys the
patient key in the keyring file, so even the ciphertext and wrapped key taken from a copy of
the database before the erasure no longer open; another patient's readings still do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from records import keyring
from records.crypto import Sealed
from records.errors import UnknownKeyError
from records.readings import ReadingEnvelope, ReadingId
from server import db
from server.monitoring import service
from tests.monitoring.conftest import enrol


async def _copy(conn, patient: int) -> list[tuple[ReadingId, Sealed]]:
    """What a backup taken now holds of the patient's readings."""
    return [(ReadingId(r["id"], r["plan_id"], r["patient_id"], r["measurement"],
                       r["measured_at"]),
             Sealed(bytes(r["ciphertext"]), bytes(r["wrapped_key"]), r["kek_id"]))
            for r in await conn.fetch(
                "SELECT * FROM monitoring_readings WHERE patient_id = $1", patient)]


async def test_erasing_the_patient_makes_her_readings_unreadable_everywhere(
        conn, rec, ward, make_patient, config, db_url):
    other = await make_patient("san-siro")
    for patient in (ward.patient, other):
        plan, _ = await enrol(conn, rec, ward.nurse, patient)
        async with conn.transaction():
            await service.submit_by_staff(
                conn, rec, ward.nurse, plan.id, measurement="heart_rate",
                values={"heart_rate": 66}, text=None, measured_at=None, source="nurse",
                now=datetime.now(UTC))
    backup = await _copy(conn, ward.patient)
    control = await _copy(conn, other)
    fresh = ReadingEnvelope(keyring.load(config.keyring_path))
    assert [fresh.open(s, row) for row, s in backup + control]  # both open before

    async with conn.transaction():
        await rec.erase_patient(conn, ward.admin, ward.patient, "patient_request")
    pool = await db.create_pool(db_url)
    try:
        assert await rec.sweep(pool) >= 1
    finally:
        await pool.close()

    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings WHERE patient_id = $1"
                               " AND wrapped_key IS NOT NULL", ward.patient) == 0
    found = await rec.readings.read(conn, ward.nurse, ward.patient)
    assert [r.content for r in found] == [None]
    after = ReadingEnvelope(keyring.load(config.keyring_path))  # the file as a thief finds it
    for row, sealed in backup:
        with pytest.raises(UnknownKeyError):
            after.open(sealed, row)
    assert [after.open(s, row) for row, s in control]
    assert await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'erasure' AND patient_id = $1 "
        "AND detail->>'readings' = '1'", ward.patient) == 1


async def test_a_reading_moved_to_another_row_fails_its_integrity_check(conn, rec, ward):
    from records.errors import IntegrityError

    plan, _ = await enrol(conn, rec, ward.nurse, ward.patient)
    for rate in (61, 99):
        async with conn.transaction():
            await service.submit_by_staff(
                conn, rec, ward.nurse, plan.id, measurement="heart_rate",
                values={"heart_rate": rate}, text=None, measured_at=None, source="nurse",
                now=datetime.now(UTC))
    await conn.execute("""
        UPDATE monitoring_readings SET ciphertext = o.ciphertext, wrapped_key = o.wrapped_key
        FROM monitoring_readings o WHERE o.id <> monitoring_readings.id
          AND monitoring_readings.id = (SELECT max(id) FROM monitoring_readings)""")
    with pytest.raises(IntegrityError):
        await rec.readings.read(conn, ward.nurse, ward.patient)
