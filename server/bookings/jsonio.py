"""Writing API output (input is decoded by ``server.validation`` with ``schemas``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.bookings.bookings import Booking
from server.consultations.store import Consultation
from server.timeutil import to_local


def iso(dt: datetime | None) -> str | None:
    return to_local(dt).isoformat() if dt is not None else None


def consultation_json(c: Consultation | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"id": c.id, "room_id": c.room_id, "state": c.state,
            "join_opens_at": iso(c.join_opens_at), "join_closes_at": iso(c.join_closes_at)}


def booking_json(b: Booking, c: Consultation | None = None) -> dict[str, Any]:
    return {"id": b.id, "centre_id": b.centre_id, "service_code": b.service_code,
            "mode": b.mode, "patient_id": b.patient_id, "clinician_id": b.clinician_id,
            "kiosk_id": b.kiosk_id, "nurse_id": b.nurse_id, "starts_at": iso(b.starts_at),
            "ends_at": iso(b.ends_at), "status": b.status, "cancel_reason": b.cancel_reason,
            "consultation": consultation_json(c)}
