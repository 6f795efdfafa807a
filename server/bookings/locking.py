"""Keeping concurrent booking writers apart: advisory locks taken in one fixed order before
a write, naming the booking an exclusion constraint refused, and retrying the deadlocks and
serialization failures that still happen.

Under contention an exclusion constraint alone lets concurrent inserters deadlock on each
other; taking transaction-level advisory locks on the clinician, patient and kiosk first, in
the same order for every writer, makes the constraint answer at once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TypeVar

import asyncpg

from server.bookings.model import Clash
from server.consultations import status

log = logging.getLogger("casa.bookings")

T = TypeVar("T")
# Advisory lock classes (first key of pg_advisory_xact_lock(int, int)); the order is the locking
# order, the same for every writer, which is what keeps them from deadlocking.
LOCK_CLINICIAN, LOCK_PATIENT, LOCK_KIOSK = 0x0CA5B001, 0x0CA5B002, 0x0CA5B003
# Deadlocks and serialization failures are retried this many times, never shown to the user.
CONSTRAINT_CLASH = {
    "bookings_no_clinician_overlap": "clinician",
    "bookings_no_patient_overlap": "patient",
    "bookings_no_kiosk_overlap": "kiosk",
}


# All of a writer's locks in one round trip: unnest yields the (already sorted) keys in array
# order, and the locks are taken row by row in that order.
LOCKS = """
SELECT pg_advisory_xact_lock(k, v) FROM unnest($1::int[], $2::int[]) AS t(k, v)
"""


async def lock_parties(conn: asyncpg.Connection, clinician_id: int, patient_id: int,
                       kiosk_id: int | None) -> None:
    """Serialise writers that share a clinician, patient or kiosk, always in the same order."""
    if not conn.is_in_transaction():
        raise RuntimeError("booking writes must run inside a transaction")
    keys = [(LOCK_CLINICIAN, clinician_id), (LOCK_PATIENT, patient_id)]
    if kiosk_id is not None:
        keys.append((LOCK_KIOSK, kiosk_id))
    # Ids are folded into int4; a collision only makes two writers wait for each other.
    ordered = sorted((cls, ident % 2_147_483_647) for cls, ident in keys)
    await conn.execute(LOCKS, [k for k, _v in ordered], [v for _k, v in ordered])


FIND_CLASH = {
    "clinician": "clinician_id = $1",
    "patient": "patient_id = $1",
    "kiosk": "kiosk_id = $1",
}
FIND_CLASH_SQL = """
SELECT id FROM bookings WHERE {where} AND during && tstzrange($2, $3)
  AND status = ANY($4::text[]) AND id <> $5 ORDER BY lower(during) LIMIT 1
"""


async def clash_from(conn: asyncpg.Connection, exc: asyncpg.ExclusionViolationError,
                     clinician_id: int, patient_id: int, kiosk_id: int | None,
                     starts_at: datetime, ends_at: datetime, own_id: int) -> Clash:
    """Name what clashes (from the violated constraint) and the booking it clashes with."""
    what = CONSTRAINT_CLASH.get(exc.constraint_name or "", "clinician")
    ident = {"clinician": clinician_id, "patient": patient_id, "kiosk": kiosk_id}[what]
    other = await conn.fetchval(FIND_CLASH_SQL.format(where=FIND_CLASH[what]), ident, starts_at,
                                ends_at, list(status.LIVE), own_id)
    return Clash(what, other)


# The clash an insert skipped by ON CONFLICT DO NOTHING ran into, named in the order the
# fast check names it: the clinician first, then the patient, then the kiosk.
ANY_CLASH = """
SELECT id, CASE WHEN clinician_id = $1 THEN 'clinician' WHEN patient_id = $2 THEN 'patient'
                ELSE 'kiosk' END AS what
FROM bookings
WHERE (clinician_id = $1 OR patient_id = $2 OR kiosk_id = $3) AND during && tstzrange($4, $5)
  AND status = ANY($6::text[])
ORDER BY (clinician_id = $1) DESC, (patient_id = $2) DESC, lower(during) LIMIT 1
"""


async def any_clash(conn: asyncpg.Connection, clinician_id: int, patient_id: int,
                    kiosk_id: int | None, starts_at: datetime, ends_at: datetime
                    ) -> Clash | None:
    """The live booking that overlaps [starts_at, ends_at) for this clinician, patient or
    kiosk, if any (read under the writer's advisory locks, so it cannot change meanwhile)."""
    r = await conn.fetchrow(ANY_CLASH, clinician_id, patient_id, kiosk_id, starts_at, ends_at,
                            list(status.LIVE))
    return Clash(r["what"], r["id"]) if r else None
