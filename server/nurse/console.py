"""What the nurse console reads: today's kiosk bookings of a staff member's centres, each with
the patient's state (from the booking, the consultation and the patient's place in signalling),
the kiosks and who is at each, and the nurses a booking can be handed over to.

A booking is found only through the centres of the person asking (``visible``), so a nurse of
another centre learns nothing, not even that the booking exists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

import asyncpg

from server.consultations.status import CALLED_OFF, sql_list
from server.staff import Role, Staff
from signaling import presence
from signaling.states import Place

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


class State(StrEnum):
    """Where a kiosk patient is, as the console shows it."""

    NOT_ARRIVED = "not_arrived"
    CHECKED_IN = "checked_in"
    WAITING = "waiting"      # at the kiosk, in the waiting room
    IN_CALL = "in_call"
    FINISHED = "finished"


@dataclass(frozen=True)
class Row:
    booking_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    centre_id: str
    centre_name: str
    patient_id: int
    patient_name: str
    clinician_name: str
    nurse_id: int | None
    nurse_name: str | None
    kiosk_id: int | None
    kiosk_name: str | None
    consultation_id: int
    room_id: str
    nurse_present: bool
    state: State

    def is_nurse(self, user: Staff) -> bool:
        return self.nurse_id == user.id


_SELECT = f"""
SELECT b.id AS booking_id, lower(b.during) AS starts_at, upper(b.during) AS ends_at, b.status,
       b.centre_id, ce.name AS centre_name, b.patient_id,
       p.given_name || ' ' || p.family_name AS patient_name, st.full_name AS clinician_name,
       b.nurse_id, n.full_name AS nurse_name, b.kiosk_id, k.name AS kiosk_name,
       c.id AS consultation_id, c.room_id, c.state AS consultation_state,
       c.nurse_present_at IS NOT NULL AS nurse_present
FROM bookings b
JOIN consultations c ON c.booking_id = b.id
JOIN centres ce ON ce.id = b.centre_id
JOIN patients p ON p.id = b.patient_id
JOIN staff st ON st.id = b.clinician_id
LEFT JOIN staff n ON n.id = b.nurse_id
LEFT JOIN resources k ON k.id = b.kiosk_id
WHERE b.mode = 'kiosk_video' AND b.status NOT IN ({sql_list(CALLED_OFF)})
  AND b.centre_id = ANY($1::text[])
"""
TODAY = _SELECT + " AND b.during && tstzrange($2, $3) ORDER BY lower(b.during), b.id"
ONE = _SELECT + " AND b.id = $2"
KIOSKS = """
SELECT k.id, k.name, k.centre_id FROM resources k
WHERE k.kind = 'kiosk' AND k.active AND k.centre_id = ANY($1::text[])
ORDER BY k.centre_id, k.name, k.id
"""
NURSES = """
SELECT s.id, s.full_name FROM staff s JOIN staff_centres sc ON sc.staff_id = s.id
WHERE s.active AND s.role = 'nurse' AND sc.centre_id = $1 ORDER BY s.full_name, s.id
"""
# Console roles: the nurses who stay with kiosk patients, and the coordinators who run the
# centre's day. Nobody else works the kiosks.
ROLES = (Role.NURSE, Role.COORDINATOR)


def _state(r: asyncpg.Record, place: tuple[presence.Member, bool] | None) -> State:
    if r["consultation_state"] == "ended" or r["status"] == "fulfilled":
        return State.FINISHED
    if place is not None and place[1]:
        member, _kept = place
        if member.status == Place.IN_CALL:
            return State.IN_CALL
        if member.status == Place.WAITING:
            return State.WAITING
    if r["status"] in ("checked-in", "arrived"):
        return State.CHECKED_IN
    return State.NOT_ARRIVED


async def _rows(conn: Conn, records: list[asyncpg.Record]) -> list[Row]:
    places = await presence.patients(conn, [r["consultation_id"] for r in records])
    fields = set(Row.__dataclass_fields__) - {"state"}
    return [Row(**{k: r[k] for k in fields}, state=_state(r, places.get(r["consultation_id"])))
            for r in records]


async def today(conn: Conn, user: Staff, start: datetime, end: datetime) -> list[Row]:
    """The kiosk bookings of ``user``'s centres between ``start`` and ``end``."""
    return await _rows(conn, list(await conn.fetch(TODAY, list(user.centres), start, end)))


async def visible(conn: Conn, user: Staff, booking_id: int) -> Row | None:
    """One kiosk booking of ``user``'s centres; None for any other booking, whatever it is."""
    if user.role not in ROLES:
        return None
    r = await conn.fetchrow(ONE, list(user.centres), booking_id)
    return (await _rows(conn, [r]))[0] if r is not None else None


@dataclass(frozen=True)
class Kiosk:
    id: int
    name: str
    centre_id: str
    at: Row | None   # the patient at it now (waiting or in the call)


async def kiosks(conn: Conn, user: Staff, rows: list[Row]) -> list[Kiosk]:
    """The kiosks of ``user``'s centres, each with the patient using it now, if any."""
    there = {r.kiosk_id: r for r in rows if r.state in (State.WAITING, State.IN_CALL)}
    return [Kiosk(k["id"], k["name"], k["centre_id"], there.get(k["id"]))
            for k in await conn.fetch(KIOSKS, list(user.centres))]


async def nurses(conn: Conn, centre_id: str) -> list[asyncpg.Record]:
    """The active nurses of a centre: whom a booking can be handed over to."""
    return list(await conn.fetch(NURSES, centre_id))
