"""Who may do what with clinical records: every rule in this one module.

- GPs and nurses caring for the patient read GP and nurse notes.
- Psychological, psychiatric and violence-support notes (restricted) are read only by their
  author, by clinicians the author shared them with, and by a clinician who broke the glass.
- Only the author edits, signs, amends, shares or makes a patient summary link of a note.
- A note is written only by the consultation's clinician, nurse or an invited participant,
  who must also be caring for the patient.
- A booking makes someone a carer only once the patient was really there
  (``server.consultations.care``): never by its time, nor by its own clinician marking it
  arrived.
- Coordinators and admins see no clinical content; admins search the audit log and erase.
- Tele-monitoring (plans, readings, alerts) is for GPs and nurses caring for the patient
  (``monitoring_allowed``).

"Caring for the patient" is ``caring_for`` below. Writing a note also needs the writer to be
on that consultation (``on_booking``): its clinician, its nurse or an invited participant.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncpg

from server.consultations import care
from server.staff import Role, Staff


class Category(StrEnum):
    GP = "gp"
    NURSE = "nurse"
    PSYCHOLOGICAL = "psychological"
    PSYCHIATRIC = "psychiatric"
    VIOLENCE_SUPPORT = "violence_support"

    @property
    def restricted(self) -> bool:
        return self in RESTRICTED


RESTRICTED = frozenset({Category.PSYCHOLOGICAL, Category.PSYCHIATRIC, Category.VIOLENCE_SUPPORT})

# Which categories each clinical role writes. Casa has no psychiatrist role: psychiatrists are
# physicians registered as GPs, and psychologists also write psychiatric-care notes.
WRITES: dict[Role, frozenset[Category]] = {
    Role.GP: frozenset({Category.GP, Category.PSYCHIATRIC}),
    Role.NURSE: frozenset({Category.NURSE}),
    Role.PSYCHOLOGIST: frozenset({Category.PSYCHOLOGICAL, Category.PSYCHIATRIC,
                                  Category.VIOLENCE_SUPPORT}),
}
READS_ORDINARY = frozenset({Role.GP, Role.NURSE})


class Op(StrEnum):
    READ = "read"
    CREATE = "create"          # start a note in a consultation
    EDIT = "edit"              # save draft, sign, amend
    SHARE = "share"
    BREAK_GLASS = "break_glass"
    SUMMARY_LINK = "summary_link"
    EXPORT = "export"          # the patient's record (only notes the person may read)
    AUDIT_SEARCH = "audit_search"
    ERASE = "erase"


@dataclass(frozen=True)
class Facts:
    """What is true between one staff member and one patient or note."""

    caring: bool = False
    author: bool = False
    shared: bool = False
    glass: bool = False  # an unexpired break-glass on this note
    on_booking: bool = False  # clinician, nurse or participant of the note's consultation


def allowed(role: Role, op: Op, category: Category | None, facts: Facts) -> bool:
    """The whole policy as one pure function (tested as a matrix)."""
    if op is Op.AUDIT_SEARCH or op is Op.ERASE:
        return role is Role.ADMIN
    if not role.clinical:
        return False  # coordinators and admins: no clinical content, ever
    if op is Op.EXPORT:
        return facts.caring
    if category is None:
        return False
    if op is Op.CREATE:
        # Both: being on the consultation (not someone else's session), and caring (so a
        # booking of one's own to which the patient has not come cannot be used to become an
        # author, which would make one a carer).
        return (category in WRITES.get(role, frozenset()) and facts.caring
                and facts.on_booking)
    if op is Op.READ:
        if facts.author:
            return True
        if category.restricted:
            return facts.shared or facts.glass
        return role in READS_ORDINARY and facts.caring
    if op in (Op.EDIT, Op.SUMMARY_LINK):
        return facts.author
    if op is Op.SHARE:
        return facts.author and category.restricted
    if op is Op.BREAK_GLASS:
        return (category.restricted and facts.caring and not facts.author
                and not facts.shared and not facts.glass)
    return False


def monitoring_allowed(role: Role, caring: bool) -> bool:
    """Tele-monitoring (plans, readings, alerts, trends, their FHIR Observations): GPs and
    nurses caring for the patient, as for ordinary notes; nobody else sees that a patient is
    monitored, let alone a value (coordinators and admins included)."""
    return role in READS_ORDINARY and caring


# "Caring for the patient" and being "on the booking" are the consultation core's rule
# (``server.consultations.care``), the same that bookings' identity scope and signalling's
# room entry rest on: records add no rule of their own about bookings.
caring_for = care.caring_for
on_booking = care.on_booking


# Who may open a patient's record at all (and so learn who the patient is): a carer, or a
# clinician a restricted note was shared with or who holds an unexpired break-glass on one.
MAY_OPEN = f"""
SELECT {care.caring_sql("$1", "$2")}
    OR EXISTS (SELECT 1 FROM note_shares s JOIN notes n ON n.id = s.note_id
               WHERE s.staff_id = $1 AND n.patient_id = $2)
    OR EXISTS (SELECT 1 FROM break_glass g JOIN notes n ON n.id = g.note_id
               WHERE g.staff_id = $1 AND n.patient_id = $2 AND g.expires_at > now())
"""


async def may_open_record(conn: asyncpg.Connection | asyncpg.Pool, user: Staff,
                          patient_id: int) -> bool:
    """Whether ``user`` may see that the patient exists (name, record pages): clinicians
    caring for them, or holding a share or a live break-glass on one of their notes."""
    return user.role.clinical and bool(await conn.fetchval(MAY_OPEN, user.id, patient_id))


async def may_monitor(conn: asyncpg.Connection | asyncpg.Pool, user: Staff,
                      patient_id: int) -> bool:
    """``monitoring_allowed`` for ``user`` and the patient, the care rule asked only of a role
    that could pass (so a coordinator's refusal costs no query)."""
    if not monitoring_allowed(user.role, True):
        return False
    return monitoring_allowed(user.role, await caring_for(conn, user.id, patient_id))


NOTE_FACTS = """
SELECT EXISTS (SELECT 1 FROM note_shares WHERE note_id = $1 AND staff_id = $2) AS shared,
       EXISTS (SELECT 1 FROM break_glass WHERE note_id = $1 AND staff_id = $2
               AND expires_at > now()) AS glass
"""


async def note_facts(conn: asyncpg.Connection | asyncpg.Pool, user: Staff, note_id: int,
                     author_id: int, patient_id: int) -> Facts:
    """Gather the facts ``allowed`` needs for ``user`` and one note."""
    r = await conn.fetchrow(NOTE_FACTS, note_id, user.id)
    caring = user.role.clinical and await caring_for(conn, user.id, patient_id)
    return Facts(caring=caring, author=author_id == user.id, shared=r["shared"],
                 glass=r["glass"])
