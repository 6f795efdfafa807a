"""Who may see a patient: the one rule, here, that bookings (whose identity and contacts a staff
member may read), clinical records (whose notes) and signalling (who enters a consultation's
room) all rest on.

The rule has one core, *caring for the patient*, and one extension of it:

- ``caring_sql``: a staff member cares for a patient only through facts she cannot create
  alone:

  - she works at the patient's home centre;
  - she wrote a note for the patient (possible only while caring);
  - a clinician already caring referred the patient to her (``refer``, audited by the caller);
  - she is *on* one of the patient's bookings (``on_booking_sql``: its clinician, attached
    nurse or an invited participant, the booking not void) in which either
    - the patient joined the video consultation with her own link or code (signalling's
      ``record_event`` stamps ``consultations.first_arrived_at``; the join is audited), or
    - someone else who works at the booking's centre checked the patient in or marked her
      arrived (``booking_status_changes``, written by a trigger with who made each change).

  Time does not count: a booking whose start has passed, or that its own clinician marked
  arrived, makes nobody a carer. So booking a stranger (in the past, or a minute ahead and
  waiting) opens nothing. Records read notes by it.
- ``scope_sql``: whose *identity* (name, contacts, bookings) a staff member may read: desk
  staff (coordinators, nurses) also see the patients of their centres (home centre, or ever
  booked there), everyone else exactly the patients they care for. Bookings read by it.

Being *on* a consultation (``on_booking_sql`` in SQL, ``staff_on`` for one already
loaded) is what lets a staff member into its room (signalling), write a note in it (records)
and list it on her dashboard; it becomes care once the patient came.
"""

from __future__ import annotations

from typing import Protocol

import asyncpg

from server.consultations.status import VOID, sql_list
from server.staff import Role, Staff

# Roles that book for anybody at their centres and see the identity of every patient of their
# centres (``scope_sql``); clinicians book in their own calendar and see whom they care for.
DESK_ROLES = frozenset({Role.COORDINATOR, Role.NURSE})


def staff_on_sql(staff: str, booking: str) -> str:
    """Whether ``staff`` is on the staff side of ``booking`` (both SQL expressions, the booking
    by its id): its clinician, its nurse or a participant added to its consultation, whatever
    its status. ``staff_on`` is the same for a consultation already loaded. Its table aliases
    start with ``on_``, so the fragment nests in any query."""
    return f"""(EXISTS (
  SELECT 1 FROM bookings on_b
  WHERE on_b.id = {booking}
    AND (on_b.clinician_id = {staff} OR on_b.nurse_id = {staff}
         OR EXISTS (SELECT 1 FROM consultation_participants on_cp
                    JOIN consultations on_c ON on_c.id = on_cp.consultation_id
                    WHERE on_c.booking_id = on_b.id AND on_cp.staff_id = {staff}))))"""


def colleague_added_sql(consultation: str) -> str:
    """Whether a colleague was added to ``consultation`` (an SQL expression, its id): a fact
    the activity report counts, spelt here because the participants table is the rule's."""
    return f"""EXISTS (SELECT 1 FROM consultation_participants added_cp
               WHERE added_cp.consultation_id = {consultation})"""


def on_booking_sql(staff: str, booking: str) -> str:
    """Whether ``staff`` is on ``booking`` and it is not void (cancelled or entered in error;
    a missed one still counts, a note about it is fine): what writing a note in it and caring
    through it need."""
    return f"""({staff_on_sql(staff, booking)}
  AND EXISTS (SELECT 1 FROM bookings on_v
              WHERE on_v.id = {booking} AND on_v.status NOT IN ({sql_list(VOID)})))"""


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
      AND {on_booking}
      AND (EXISTS (SELECT 1 FROM consultations care_c
                   WHERE care_c.booking_id = care_b.id AND care_c.first_arrived_at IS NOT NULL)
           OR EXISTS (SELECT 1 FROM booking_status_changes care_s
                      JOIN staff_centres care_wc ON care_wc.staff_id = care_s.by_staff_id
                                                AND care_wc.centre_id = care_b.centre_id
                      WHERE care_s.booking_id = care_b.id
                        AND care_s.to_status IN ('checked-in', 'arrived')
                        -- Not the one asking, nor the booking's own clinician: neither is a
                        -- witness that the patient came (docs/records.md).
                        AND care_s.by_staff_id <> {staff}
                        AND care_s.by_staff_id <> care_b.clinician_id))))"""


def caring_sql(staff: str, patient: str) -> str:
    """The care rule as one SQL boolean expression, for ``staff`` and ``patient`` given as SQL
    expressions (``caring_sql("$1", "$2")``, ``caring_sql("$2", "p.id")``)."""
    return _CARING.format(staff=staff, patient=patient,
                          on_booking=on_booking_sql(staff, "care_b.id"))


def scope_sql(staff: str, centres: str, desk: str, patient: str) -> str:
    """Whose identity a staff member may read, as one SQL boolean: ``staff`` her id,
    ``centres`` her centres (text[]), ``desk`` whether she has a desk role (see
    ``scope_args``), ``patient`` the patient (SQL expressions)."""
    return f"""(
  ({desk} AND (EXISTS (SELECT 1 FROM patients scope_p
                       WHERE scope_p.id = {patient}
                         AND scope_p.home_centre_id = ANY({centres}::text[]))
               OR EXISTS (SELECT 1 FROM bookings scope_b
                          WHERE scope_b.patient_id = {patient}
                            AND scope_b.centre_id = ANY({centres}::text[]))))
  OR {caring_sql(staff, patient)})"""


def scope_args(user: Staff) -> tuple[int, list[str], bool]:
    """The parameters ``scope_sql`` takes for ``user``: id, centres, desk role."""
    return user.id, list(user.centres), user.role in DESK_ROLES


CARING = f"SELECT {caring_sql('$1', '$2')}"
IN_SCOPE = f"SELECT {scope_sql('$2', '$3', '$4', '$1')}"
ON_BOOKING = f"SELECT {on_booking_sql('$1', '$2')}"


async def caring_for(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                     patient_id: int) -> bool:
    """Whether ``staff_id`` cares for ``patient_id`` (the rule in this module's docstring)."""
    return bool(await conn.fetchval(CARING, staff_id, patient_id))


async def in_scope(conn: asyncpg.Connection | asyncpg.Pool, user: Staff,
                   patient_id: int) -> bool:
    """Whether ``user`` may read this patient's identity and bookings (``scope_sql``)."""
    return bool(await conn.fetchval(IN_SCOPE, patient_id, *scope_args(user)))


async def on_booking(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                     booking_id: int) -> bool:
    """Whether ``staff_id`` is on this booking (``on_booking_sql``)."""
    return bool(await conn.fetchval(ON_BOOKING, staff_id, booking_id))


def may_be_added(person: Staff, centre_id: str) -> bool:
    """Whether ``person`` may be added to a consultation of ``centre_id`` (invited into the
    call): being on it makes her a carer once the patient came, so only clinical staff of the
    consultation's own centre. The caller reads ``person`` among active staff."""
    return person.role.clinical and centre_id in person.centres


class ConsultationLike(Protocol):
    """What ``staff_on`` reads of a loaded consultation (``store.Consultation``)."""

    @property
    def clinician_ids(self) -> tuple[int, ...]: ...
    @property
    def nurse_id(self) -> int | None: ...


def staff_on(c: ConsultationLike) -> tuple[int, ...]:
    """Everyone on the staff side of a loaded consultation: its clinician and added
    participants (``clinician_ids``), then its nurse: ``on_booking_sql`` for a consultation
    already in memory, less the booking's status, which the caller judges (a cancelled
    consultation is refused as ended, not as unknown)."""
    return c.clinician_ids + ((c.nurse_id,) if c.nurse_id and c.nurse_id not in
                              c.clinician_ids else ())



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
