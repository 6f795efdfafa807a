"""Read models for the staff pages: bookings with the names a person needs to see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from server.consultations import care, status
from server.timeutil import to_local


@dataclass(frozen=True)
class Row:
    id: int
    centre_id: str
    centre_name: str
    service_code: str
    service_name: str
    sensitive: bool
    mode: str
    patient_id: int
    patient_name: str
    clinician_id: int
    clinician_name: str
    kiosk_id: int | None
    kiosk_name: str | None
    nurse_id: int | None
    starts_at: datetime
    ends_at: datetime
    status: str
    room_id: str | None
    state: str | None

    @property
    def start_hm(self) -> str:
        return to_local(self.starts_at).strftime("%H:%M")

    @property
    def end_hm(self) -> str:
        return to_local(self.ends_at).strftime("%H:%M")

    @property
    def local_day(self) -> str:
        return to_local(self.starts_at).strftime("%d/%m/%Y")

    @property
    def live(self) -> bool:
        return self.status not in status.CALLED_OFF


SELECT = """
SELECT b.id, b.centre_id, ce.name AS centre_name, b.service_code, s.name AS service_name,
       s.sensitive, b.mode, b.patient_id, p.family_name || ' ' || p.given_name AS patient_name,
       b.clinician_id, st.full_name AS clinician_name, b.kiosk_id, r.name AS kiosk_name,
       b.nurse_id, lower(b.during) AS starts_at, upper(b.during) AS ends_at, b.status,
       c.room_id, c.state
FROM bookings b
JOIN centres ce ON ce.id = b.centre_id
JOIN services s ON s.code = b.service_code
JOIN patients p ON p.id = b.patient_id
JOIN staff st ON st.id = b.clinician_id
LEFT JOIN resources r ON r.id = b.kiosk_id
LEFT JOIN consultations c ON c.booking_id = b.id
"""
AT_CENTRE = SELECT + """
WHERE b.centre_id = $1 AND b.during && tstzrange($2, $3) ORDER BY lower(b.during), b.id
"""
FOR_STAFF = SELECT + f"""
WHERE {care.staff_on_sql("$1", "b.id")}
  AND b.during && tstzrange($2, $3) ORDER BY lower(b.during), b.id
"""
FOR_PATIENT = SELECT + " WHERE b.patient_id = $1 ORDER BY lower(b.during) DESC LIMIT 200"
ONE = SELECT + " WHERE b.id = $1"


def _rows(records: list[asyncpg.Record]) -> list[Row]:
    return [Row(**dict(r)) for r in records]


async def at_centre(pool: asyncpg.Pool, centre_id: str, start: datetime,
                    end: datetime) -> list[Row]:
    return _rows(await pool.fetch(AT_CENTRE, centre_id, start, end))


async def for_staff(pool: asyncpg.Pool, staff_id: int, start: datetime,
                    end: datetime) -> list[Row]:
    return _rows(await pool.fetch(FOR_STAFF, staff_id, start, end))


async def for_patient(pool: asyncpg.Pool, patient_id: int) -> list[Row]:
    return _rows(await pool.fetch(FOR_PATIENT, patient_id))


async def one(pool: asyncpg.Pool, booking_id: int) -> Row | None:
    r = await pool.fetchrow(ONE, booking_id)
    return Row(**dict(r)) if r else None


CLINICIANS_AT = """
SELECT s.id, s.full_name, s.role::text AS role FROM staff s
JOIN staff_centres sc ON sc.staff_id = s.id
WHERE sc.centre_id = $1 AND s.active AND s.role IN ('gp', 'psychologist', 'nurse')
ORDER BY s.role, s.full_name
"""
KIOSKS_AT = "SELECT id, name FROM resources WHERE centre_id = $1 AND kind = 'kiosk' AND active " \
            "ORDER BY name"


async def clinicians_at(pool: asyncpg.Pool, centre_id: str) -> list[asyncpg.Record]:
    return list(await pool.fetch(CLINICIANS_AT, centre_id))


async def kiosks_at(pool: asyncpg.Pool, centre_id: str) -> list[asyncpg.Record]:
    return list(await pool.fetch(KIOSKS_AT, centre_id))
