"""Validation of a new booking, and the fast refusal of a clash that is already committed,
in one query outside any transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from server.bookings.model import MAX_MINUTES, MIN_MINUTES, MODES, Clash, Invalid, NewBooking
from server.consultations import status
from server.timeutil import UTC

CHECK_REFS = """
SELECT s.default_minutes, s.modes, s.roles::text[] AS roles,
       (SELECT role::text FROM staff WHERE id = $2 AND active) AS clinician_role,
       EXISTS (SELECT 1 FROM staff_centres WHERE staff_id = $2 AND centre_id = $3)
           AS clinician_at_centre,
       EXISTS (SELECT 1 FROM patients WHERE id = $4) AS patient_exists,
       EXISTS (SELECT 1 FROM centres WHERE id = $3) AS centre_exists,
       (SELECT centre_id FROM resources WHERE id = $5 AND kind = 'kiosk' AND active)
           AS kiosk_centre,
       (SELECT role::text FROM staff WHERE id = $6 AND active) AS nurse_role,
       clash.id AS clash_id, clash.what AS clash_what
FROM services s
LEFT JOIN LATERAL (
    SELECT b.id, CASE WHEN b.clinician_id = $2 THEN 'clinician'
                      WHEN b.patient_id = $4 THEN 'patient' ELSE 'kiosk' END AS what
    FROM bookings b
    WHERE (b.clinician_id = $2 OR b.patient_id = $4 OR b.kiosk_id = $5)
      AND b.during && tstzrange($7::timestamptz, coalesce(
              $8::timestamptz, $7::timestamptz + make_interval(mins => s.default_minutes)))
      AND b.status = ANY($9::text[])
    ORDER BY (b.clinician_id = $2) DESC, (b.patient_id = $4) DESC LIMIT 1
) clash ON true
WHERE s.code = $1
"""


async def check(conn: asyncpg.Connection | asyncpg.Pool,
                nb: NewBooking) -> tuple[datetime, datetime]:
    """Validate a new booking against the catalogue and refuse a clash that is already
    committed, in one query and without a transaction; returns its [start, end).
    Raises Invalid or Clash.

    The clash seen here is a fast path: most clashes are plain to see, and answering them
    before any lock keeps them from queueing behind the advisory locks. The exclusion
    constraints still decide."""
    problems: dict[str, str] = {}
    if nb.starts_at.tzinfo is None or (nb.ends_at is not None and nb.ends_at.tzinfo is None):
        raise Invalid({"starts_at": "must include a time zone offset"})
    # In UTC: Python adds to a Europe/Rome datetime by wall clock, wrong across a DST change.
    starts_at = nb.starts_at.astimezone(UTC)
    given_end = nb.ends_at.astimezone(UTC) if nb.ends_at else None
    r = await conn.fetchrow(CHECK_REFS, nb.service_code, nb.clinician_id, nb.centre_id,
                            nb.patient_id, nb.kiosk_id, nb.nurse_id, starts_at, given_end,
                            list(status.LIVE))
    if r is None:
        raise Invalid({"service_code": "unknown service"})
    ends_at = given_end or starts_at + timedelta(minutes=r["default_minutes"])
    minutes = (ends_at - starts_at).total_seconds() / 60
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        problems["ends_at"] = f"a booking lasts between {MIN_MINUTES} and {MAX_MINUTES} minutes"
    if not r["centre_exists"]:
        problems["centre_id"] = "unknown centre"
    if nb.mode not in MODES:
        problems["mode"] = "unknown mode"
    elif nb.mode not in r["modes"]:
        problems["mode"] = "this service is not offered in this mode"
    if r["clinician_role"] is None:
        problems["clinician_id"] = "unknown clinician"
    elif r["clinician_role"] not in r["roles"]:
        problems["clinician_id"] = "this clinician's role does not deliver this service"
    elif not r["clinician_at_centre"]:
        problems["clinician_id"] = "this clinician does not work at this centre"
    if not r["patient_exists"]:
        problems["patient_id"] = "unknown patient"
    if nb.mode == "kiosk_video":
        if nb.kiosk_id is None:
            problems["kiosk_id"] = "a kiosk video booking needs a kiosk"
        elif r["kiosk_centre"] != nb.centre_id:
            problems["kiosk_id"] = "no such kiosk at this centre"
    elif nb.kiosk_id is not None:
        problems["kiosk_id"] = "only kiosk video bookings use a kiosk"
    if nb.nurse_id is not None:
        if nb.mode != "kiosk_video":
            problems["nurse_id"] = "only kiosk video bookings have an attached nurse"
        elif r["nurse_role"] != "nurse":
            problems["nurse_id"] = "not a nurse"
    if problems:
        raise Invalid(problems)
    if r["clash_id"] is not None:
        raise Clash(r["clash_what"], r["clash_id"])
    return starts_at, ends_at
