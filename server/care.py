"""Who cares for a patient: the one rule that both the bookings scope (whose identity and
contacts a clinician may read) and clinical records (whose notes) rest on.

A staff member cares for a patient only through facts she cannot create alone:

- she works at the patient's home centre;
- she wrote a note for the patient (possible only while caring);
- a clinician already caring referred the patient to her (``refer``, audited by the caller);
- she is the clinician, the attached nurse or an invited participant of one of the patient's
  bookings (not cancelled or entered in error) in which either
  - the patient joined the video consultation with her own link or code (signalling's
    ``record_event`` stamps ``consultations.first_arrived_at``; the join is audited), or
  - someone else who works at the booking's centre checked the patient in or marked her
    arrived (``booking_status_changes``, written by a trigger with who made each change).

Time does not count: a booking whose start has passed, or that its own clinician marked
arrived, makes nobody a carer. So booking a stranger (in the past, or a minute ahead and
waiting) opens nothing.
"""

from __future__ import annotations

import asyncpg

# Both placeholders are SQL expressions (a parameter like $1, or a column like p.id); each is
# used several times. Aliases are unusual so the fragment nests in any query.
_CARING = """(
  EXISTS (SELECT 1 FROM staff_centres care_sc
          JOIN patients care_p ON care_p.home_centre_id = care_sc.centre_id
          WHERE care_sc.staff_id = {staff} AND care_p.id = {patient})
  OR EXISTS (SELECT 1 FROM notes care_n
             WHERE care_n.author_id = {staff} AND care_n.patient_id = {patient})
  OR EXISTS (SELECT 1 FROM care_referrals care_r
             WHERE care_r.staff_id = {staff} AND care_r.patient_id = {patient})
  OR EXISTS (
    SELECT 1 FROM bookings care_b
    WHERE care_b.patient_id = {patient}
      AND care_b.status NOT IN ('cancelled', 'entered-in-error')
      AND (care_b.clinician_id = {staff} OR care_b.nurse_id = {staff}
           OR EXISTS (SELECT 1 FROM consultation_participants care_cp
                      JOIN consultations care_pc ON care_pc.id = care_cp.consultation_id
                      WHERE care_pc.booking_id = care_b.id AND care_cp.staff_id = {staff}))
      AND (EXISTS (SELECT 1 FROM consultations care_c
                   WHERE care_c.booking_id = care_b.id AND care_c.first_arrived_at IS NOT NULL)
           OR EXISTS (SELECT 1 FROM booking_status_changes care_s
                      JOIN staff_centres care_wc ON care_wc.staff_id = care_s.by_staff_id
                                                AND care_wc.centre_id = care_b.centre_id
                      WHERE care_s.booking_id = care_b.id
                        AND care_s.to_status IN ('checked-in', 'arrived')
                        AND care_s.by_staff_id <> {staff}))))"""


def caring_sql(staff: str, patient: str) -> str:
    """The care rule as one SQL boolean expression, for ``staff`` and ``patient`` given as SQL
    expressions (``caring_sql("$1", "$2")``, ``caring_sql("$2", "p.id")``)."""
    return _CARING.format(staff=staff, patient=patient)


CARING = f"SELECT {caring_sql('$1', '$2')}"


async def caring_for(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                     patient_id: int) -> bool:
    """Whether ``staff_id`` cares for ``patient_id`` (the rule in this module's docstring)."""
    return bool(await conn.fetchval(CARING, staff_id, patient_id))


REFER = """
INSERT INTO care_referrals (patient_id, staff_id, referred_by) VALUES ($1, $2, $3)
ON CONFLICT (patient_id, staff_id) DO NOTHING RETURNING id
"""


async def refer(conn: asyncpg.Connection, patient_id: int, to_staff_id: int,
                by_staff_id: int) -> bool:
    """Record a referral (the caller checked that ``by_staff_id`` cares and audits it);
    False when the colleague was referred already."""
    return await conn.fetchval(REFER, patient_id, to_staff_id, by_staff_id) is not None


def status_actor(staff_id: int | None) -> str:
    """The value of ``casa.status_by`` naming who changes a booking's status."""
    return f"staff:{staff_id}" if staff_id is not None else "system"


SET_STATUS_ACTOR = "SELECT set_config('casa.status_by', $1, true)"


async def name_status_actor(conn: asyncpg.Connection, actor: str) -> None:
    """Name, for this transaction, who is about to change booking statuses ('staff:<id>',
    'patient' or 'system'); the trigger of migration 0110 records it with each change."""
    await conn.execute(SET_STATUS_ACTOR, actor)
