"""Booking statuses (FHIR R4 Appointment.status) and the changes Casa allows between them.

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
