"""Consultations: the video side of a booking, as consumed by the signalling package.

One consultation per video booking: its own room id, a join window stored at booking time, a
lifecycle (scheduled -> waiting -> in_call -> ended) with the timestamps kept for reporting,
and an append-only event history. Signalling drives it through ``record_event``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

from server.consultations import care, status
from server.timeutil import day_bounds

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"

STATES = ("scheduled", "waiting", "in_call", "ended")
# The patient has arrived and the consultation has not ended: it is under way.
UNDER_WAY = ("waiting", "in_call")
# The waiting room promises it never closes by itself, so once the patient has arrived the
# join window no longer shuts anyone out: whoever is in the consultation may come back after a
# dropped connection or a reload until it ends. Bounded all the same, so a consultation that
# nobody ended does not keep its credentials alive for ever.
RETURN_AFTER_WINDOW = timedelta(hours=4)
# media_path: a participant's call page said how its media went (signaling.media; migration
# 0320), for the activity report.
EVENTS = ("arrived", "admitted", "sent_back", "ended", "participant_joined", "participant_left",
          "media_path")
# Longest credential we hash: anything longer is not ours and is refused before any query.
MAX_CREDENTIAL_CHARS = 200


@dataclass(frozen=True)
class Consultation:
    id: int
    booking_id: int
    room_id: str
    patient_id: int
    patient_language: str
    centre_id: str
    service_code: str
    sensitive: bool
    mode: str
    kiosk_id: int | None
    clinician_ids: tuple[int, ...]
    nurse_id: int | None
    starts_at: datetime
    ends_at: datetime
    join_opens_at: datetime
    join_closes_at: datetime
    state: str
    booking_status: str
    # The booking's nurse declared from the nurse console that she is with the patient.
    nurse_present: bool = False

    def join_open(self, now: datetime) -> bool:
        """Whether ``now`` is inside the join window."""
        return self.join_opens_at <= now < self.join_closes_at

    def open_until(self) -> datetime:
        """Until when its people may enter or come back: the end of the join window, or,
        once the patient has arrived, RETURN_AFTER_WINDOW past it (until it ends)."""
        if self.state in UNDER_WAY and self.booking_status not in status.CLOSED_TO_JOINING:
            return self.join_closes_at + RETURN_AFTER_WINDOW
        return self.join_closes_at

    def open_at(self, now: datetime) -> bool:
        """Whether ``now`` is before ``open_until`` (the window's opening is not looked at)."""
        return now < self.open_until()


SELECT = """
SELECT c.id, c.booking_id, c.room_id, b.patient_id, p.language AS patient_language,
       b.centre_id, b.service_code, s.sensitive, b.mode, b.kiosk_id,
       ARRAY[b.clinician_id] || coalesce(
           (SELECT array_agg(cp.staff_id ORDER BY cp.added_at, cp.staff_id)
            FROM consultation_participants cp
            WHERE cp.consultation_id = c.id AND cp.staff_id <> b.clinician_id),
           '{}'::bigint[]) AS clinician_ids,
       b.nurse_id, lower(b.during) AS starts_at, upper(b.during) AS ends_at,
       c.join_opens_at, c.join_closes_at, c.state, b.status AS booking_status,
       c.nurse_present_at IS NOT NULL AS nurse_present
FROM consultations c
JOIN bookings b ON b.id = c.booking_id
JOIN services s ON s.code = b.service_code
JOIN patients p ON p.id = b.patient_id
"""
GET = SELECT + " WHERE c.id = $1"
GET_BY_ROOM = SELECT + " WHERE c.room_id = $1"
GET_BY_BOOKING = SELECT + " WHERE c.booking_id = $1"
LIST_FOR_STAFF_BETWEEN = SELECT + f"""
WHERE b.during && tstzrange($2, $3) AND {care.staff_on_sql("$1", "b.id")}
ORDER BY lower(b.during), c.id
"""


def _row(r: asyncpg.Record) -> Consultation:
    d = dict(r)
    d["clinician_ids"] = tuple(d["clinician_ids"])
    return Consultation(**d)


async def get(conn: Conn, consultation_id: int) -> Consultation | None:
    """The consultation with this id, or None."""
    r = await conn.fetchrow(GET, consultation_id)
    return _row(r) if r else None


async def get_by_room(conn: Conn, room_id: str) -> Consultation | None:
    """The consultation whose room is ``room_id``, or None."""
    if not room_id or len(room_id) > 64:
        return None
    r = await conn.fetchrow(GET_BY_ROOM, room_id)
    return _row(r) if r else None


async def get_by_booking(conn: Conn, booking_id: int) -> Consultation | None:
    r = await conn.fetchrow(GET_BY_BOOKING, booking_id)
    return _row(r) if r else None


async def list_for_clinician_day(conn: Conn, staff_id: int, day: date) -> list[Consultation]:
    """Every consultation touching that Europe/Rome day in which ``staff_id`` is a clinician,
    an added participant or the attached nurse, cancelled ones included (the caller filters)."""
    start, end = day_bounds(day)
    return [_row(r) for r in await conn.fetch(LIST_FOR_STAFF_BETWEEN, staff_id, start, end)]


BOOKING_OF = "SELECT booking_id FROM consultations WHERE id = $1"
PATIENT_OF_BOOKING = "SELECT patient_id FROM bookings WHERE id = $1"


async def booking_of(conn: Conn, consultation_id: int) -> int | None:
    """The booking of a consultation, or None for an unknown consultation."""
    found: int | None = await conn.fetchval(BOOKING_OF, consultation_id)
    return found


async def patient_of_booking(conn: Conn, booking_id: int) -> int | None:
    """The patient of a booking, or None for an unknown booking."""
    found: int | None = await conn.fetchval(PATIENT_OF_BOOKING, booking_id)
    return found


# Past ones first (latest start first would pick next week's), then earliest; only bookings
# that took or will take place.
FIRST_HELD = f"""
SELECT b.id, b.patient_id FROM bookings b
WHERE b.clinician_id = $1 AND b.service_code = ANY($2::text[])
  AND b.status NOT IN ({status.sql_list(status.CALLED_OFF)})
ORDER BY lower(b.during) <= now() DESC, lower(b.during), b.id LIMIT 1
"""


async def first_held_booking(conn: Conn, clinician_id: int,
                             service_codes: list[str]) -> tuple[int, int] | None:
    """A booking (id, patient id) of ``clinician_id`` for one of these services that was not
    called off: a past one first, earliest first (the demo's notes are written in it)."""
    r = await conn.fetchrow(FIRST_HELD, clinician_id, service_codes)
    return (r["id"], r["patient_id"]) if r is not None else None


INSERT = """
INSERT INTO consultations (booking_id, room_id, join_opens_at, join_closes_at)
VALUES ($1, $2, $3, $4) RETURNING id
"""


def new_room_id() -> str:
    """A random, url-safe room id. It names the room; it does not grant entry."""
    return secrets.token_urlsafe(16)


async def create(conn: Conn, booking_id: int, join_opens_at: datetime,
                 join_closes_at: datetime) -> int:
    """Create the consultation of a video booking; returns its id."""
    cid: int = await conn.fetchval(INSERT, booking_id, new_room_id(), join_opens_at,
                                   join_closes_at)
    return cid


SET_NURSE_PRESENT = """
UPDATE consultations SET nurse_present_at = CASE WHEN $2::bigint IS NULL THEN NULL ELSE now() END,
       nurse_present_by = $2
WHERE id = $1
"""


async def set_nurse_present(conn: Conn, consultation_id: int, nurse_id: int | None) -> None:
    """The nurse ``nurse_id`` declares she is with the patient (None: nobody is any more);
    signalling reads it at each patient arrival (``Consultation.nurse_present``)."""
    await conn.execute(SET_NURSE_PRESENT, consultation_id, nurse_id)


NURSE_PRESENT = "SELECT nurse_present_at IS NOT NULL FROM consultations WHERE id = $1"


async def nurse_present(conn: Conn, consultation_id: int) -> bool:
    """Whether the booking's nurse declared she is with the patient (read again under the
    consultation's lock by a patient's arrival, which may have loaded the consultation
    before the declaration)."""
    return bool(await conn.fetchval(NURSE_PRESENT, consultation_id))


MOVE_WINDOW = """
UPDATE consultations SET join_opens_at = $2, join_closes_at = $3 WHERE booking_id = $1
RETURNING id
"""


async def move_window(conn: Conn, booking_id: int, join_opens_at: datetime,
                      join_closes_at: datetime) -> int | None:
    """After a reschedule: the join window follows the booking; returns the consultation id."""
    cid: int | None = await conn.fetchval(MOVE_WINDOW, booking_id, join_opens_at, join_closes_at)
    return cid


def hash_credential(credential: str) -> bytes:
    """SHA-256 of a high-entropy patient credential (link token or session token)."""
    return hashlib.sha256(b"casa-patient:" + credential.encode()).digest()


# Past its validity (the end of the join window) a credential still opens a consultation under
# way, until RETURN_AFTER_WINDOW later (see Consultation.open_until).
RESOLVE = """
SELECT pc.consultation_id FROM patient_credentials pc
JOIN consultations c ON c.id = pc.consultation_id
WHERE pc.token_hash = $1 AND pc.kind IN ('link', 'session') AND pc.revoked_at IS NULL
  AND (pc.valid_until > now()
       OR (c.state = ANY($2::text[]) AND c.join_closes_at + $3::interval > now()))
"""
# The same without the end of validity: only to tell a patient "too late" (see below).
LOOKUP = """
SELECT consultation_id FROM patient_credentials
WHERE token_hash = $1 AND kind IN ('link', 'session') AND revoked_at IS NULL
"""


async def resolve_patient_credential(conn: Conn, credential: str) -> Consultation | None:
    """The consultation that an invitation link token or a patient session token opens.

    Returned before the join window opens (the caller tells the patient when to come back);
    None when the credential is unknown, revoked or past its ``valid_until`` (the end of the
    join window) unless the consultation is under way (``Consultation.open_until``): an
    expired credential opens nothing, not even the pre-call echo test. To
    tell an expired credential from an unknown one, use ``lookup_patient_credential``.
    A token opens only its own consultation."""
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        return None
    cid = await conn.fetchval(RESOLVE, hash_credential(credential), list(UNDER_WAY),
                              RETURN_AFTER_WINDOW)
    return await get(conn, cid) if cid is not None else None


async def lookup_patient_credential(conn: Conn, credential: str) -> Consultation | None:
    """The consultation of a known, unrevoked link or session token, even past its validity.

    Grants nothing: it is for pages and errors that must say "this appointment is over" rather
    than "this link does not work" (``credentials.judge`` then says 'expired'). Anything that
    lets the patient in, or uses resources for them, calls ``resolve_patient_credential``."""
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        return None
    cid = await conn.fetchval(LOOKUP, hash_credential(credential))
    return await get(conn, cid) if cid is not None else None


LOCK = """
SELECT c.state, c.first_arrived_at, b.status FROM consultations c
JOIN bookings b ON b.id = c.booking_id WHERE c.id = $1 FOR UPDATE OF c, b
"""
UPDATE_STATE = """
UPDATE consultations SET state = $2,
    first_arrived_at = CASE WHEN $3 THEN coalesce(first_arrived_at, now())
                            ELSE first_arrived_at END,
    admitted_at = CASE WHEN $4 THEN coalesce(admitted_at, now()) ELSE admitted_at END,
    ended_at = CASE WHEN $5 THEN coalesce(ended_at, now()) ELSE ended_at END
WHERE id = $1
"""
SET_BOOKING_STATUS = """
UPDATE bookings SET status = $2, updated_at = now()
WHERE id = (SELECT booking_id FROM consultations WHERE id = $1) AND status = ANY($3::text[])
"""
INSERT_EVENT = """
INSERT INTO consultation_events (consultation_id, event, staff_id, detail)
VALUES ($1, $2, $3, $4::jsonb)
"""
# Booking statuses from which a patient's arrival or the consultation's end moves it on.
_ARRIVABLE = ["booked", "checked-in"]
_FULFILLABLE = ["booked", "checked-in", "arrived"]


def _next_state(state: str, event: str) -> str:
    if state == "ended":
        return state  # terminal: late repeats and stray events change nothing
    if event == "arrived":
        return "waiting" if state == "scheduled" else state
    if event == "admitted":
        return "in_call"
    if event == "sent_back":
        return "waiting" if state == "in_call" else state
    if event == "ended":
        return "ended"
    return state


async def lock(conn: asyncpg.Connection, consultation_id: int) -> bool:
    """Take the consultation's row locks (in the caller's transaction) before anything else
    that writes its presence or lifecycle, so concurrent arrivals and actions queue in one
    order instead of deadlocking (a presence row's foreign key takes KEY SHARE on the
    consultation, which ``record_event`` would then want to upgrade). False if unknown."""
    return await conn.fetchrow(LOCK, consultation_id) is not None


async def record_event(conn: Conn, consultation_id: int, event: str, *,
                       staff_id: int | None = None, detail: dict[str, Any] | None = None) -> None:
    """Apply a signalling event: move the state, stamp the first arrival, admission and end,
    append to the history, and move the booking (arrived on first arrival, fulfilled at the
    end of a consultation the patient attended). Repeats change nothing and add no row;
    participant joins and leaves, and media paths, are always appended."""
    if event not in EVENTS:
        raise ValueError(f"unknown consultation event {event!r}")
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as one:
            await record_event(one, consultation_id, event, staff_id=staff_id, detail=detail)
        return
    async with conn.transaction():
        row = await conn.fetchrow(LOCK, consultation_id)
        if row is None:
            raise LookupError(f"no consultation {consultation_id}")
        state = row["state"]
        new = _next_state(state, event)
        arrived = event in ("arrived", "admitted") and state != "ended"
        stamp_arrival = arrived and row["first_arrived_at"] is None
        changed = new != state or stamp_arrival
        if changed:
            # The patient's own credential brought her here (arrived); otherwise the staff
            # member who ended it, or the system. Recorded with the booking's status change.
            await care.name_status_actor(conn, "patient" if arrived and event == "arrived"
                                         else care.status_actor(staff_id))
            await conn.execute(UPDATE_STATE, consultation_id, new, arrived,
                               new == "in_call", new == "ended")
            if arrived:
                await conn.execute(SET_BOOKING_STATUS, consultation_id, "arrived", _ARRIVABLE)
            if new == "ended" and (row["first_arrived_at"] is not None or stamp_arrival):
                await conn.execute(SET_BOOKING_STATUS, consultation_id, "fulfilled",
                                   _FULFILLABLE)
        if changed or event.startswith("participant_") or event == "media_path":
            await conn.execute(INSERT_EVENT, consultation_id, event, staff_id,
                               json.dumps(detail or {}))


ADD_PARTICIPANT = """
INSERT INTO consultation_participants (consultation_id, staff_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING
"""


async def add_participant(conn: Conn, consultation_id: int, staff_id: int) -> None:
    """Invite a second clinician or an interpreter account; repeats are harmless."""
    await conn.execute(ADD_PARTICIPANT, consultation_id, staff_id)


EVENTS_OF = """
SELECT event, staff_id, detail, at FROM consultation_events
WHERE consultation_id = $1 ORDER BY at, id
"""


async def events(conn: Conn, consultation_id: int) -> list[dict[str, Any]]:
    """The consultation's history, oldest first (for the booking page and reporting)."""
    return [{"event": r["event"], "staff_id": r["staff_id"], "detail": json.loads(r["detail"]),
             "at": r["at"]} for r in await conn.fetch(EVENTS_OF, consultation_id)]
