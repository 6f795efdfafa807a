"""Booking statuses (FHIR R4 Appointment.status), the changes Casa allows between them, and the
named sets of statuses every package reads (nobody spells a set of statuses out elsewhere).

The same table is in migration 0100 (``booking_status_transitions``), where a trigger refuses
any other change whoever writes the row; tests check that the two agree.
"""

from __future__ import annotations

STATUSES = ("proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
            "entered-in-error", "checked-in", "waitlist")
# A booking in one of these holds its clinician, patient and kiosk (the exclusion constraints).
LIVE = frozenset({"proposed", "pending", "booked", "arrived", "fulfilled", "checked-in"})
# Only these can still move in time.
RESCHEDULABLE = frozenset({"proposed", "pending", "booked", "waitlist"})
# Never a meeting: makes nobody a carer nor lets anyone write a note in it (a missed one,
# noshow, still does: a note about a missed appointment is fine).
VOID = frozenset({"cancelled", "entered-in-error"})
# Did not and will not take place: the patient's credentials are revoked when a booking moves
# here, her link says "cancelled", dashboards and day lists leave it out.
CALLED_OFF = VOID | {"noshow"}
# Nobody enters the call any more, nor runs its pre-call check: called off, or held and
# finished (fulfilled). A consultation whose clinician ended it is closed too, by its own
# state (``store.Consultation.state``), whatever its booking's status.
CLOSED_TO_JOINING = CALLED_OFF | {"fulfilled"}

TRANSITIONS: dict[str, frozenset[str]] = {
    "proposed": frozenset({"pending", "booked", "cancelled"}),
    "pending": frozenset({"booked", "cancelled"}),
    "waitlist": frozenset({"booked", "cancelled"}),
    "booked": frozenset({"checked-in", "arrived", "cancelled", "noshow", "entered-in-error"}),
    "checked-in": frozenset({"arrived", "fulfilled", "noshow", "entered-in-error"}),
    "arrived": frozenset({"fulfilled", "entered-in-error"}),
    "fulfilled": frozenset(),
    "cancelled": frozenset(),
    "noshow": frozenset(),
    "entered-in-error": frozenset(),
}


def allowed(old: str, new: str) -> bool:
    """Whether a booking may go from ``old`` to ``new`` (staying put is not a change)."""
    return new in TRANSITIONS.get(old, frozenset())


def sql_list(statuses: frozenset[str]) -> str:
    """A set of statuses as the inside of an SQL ``IN (...)``: quoted constants, sorted."""
    assert all(s in STATUSES for s in statuses)   # constants of this module, never input
    return ", ".join(f"'{s}'" for s in sorted(statuses))
