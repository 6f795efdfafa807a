"""Parsing API input at the edge (bad input is a 400/422 with the field named, never a 500)
and writing API output."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from aiohttp import web

from server import errors
from server.bookings.bookings import Booking
from server.consultations.store import Consultation
from server.timeutil import to_local

MAX_ID = 2**63 - 1


def invalid(field: str, reason: str) -> errors.ApiError:
    return errors.ApiError(errors.VALIDATION, details={"fields": {field: reason}})


async def body(request: web.Request) -> dict[str, Any]:
    """The JSON object in the request body."""
    try:
        data = json.loads(await request.text())
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested thousands deep ("[[[[..."), which is no booking either.
        raise errors.ApiError(errors.BAD_REQUEST, details={"reason": "body is not JSON"}) from None
    if not isinstance(data, dict):
        raise errors.ApiError(errors.BAD_REQUEST, details={"reason": "body must be an object"})
    return data


def an_id(value: Any, field: str, *, required: bool = True) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise invalid(field, "a positive whole number")
    return value


def text(value: Any, field: str, *, max_len: int = 200, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise invalid(field, f"text of 1 to {max_len} characters")
    if "\x00" in value:
        raise invalid(field, "must not contain NUL characters")
    return value.strip()


def instant(value: Any, field: str, *, required: bool = True) -> datetime | None:
    """An ISO 8601 date-time with its offset (``2026-03-02T10:00:00+01:00``)."""
    if value is None and not required:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or not 2000 <= parsed.year <= 2100:
        raise invalid(field, "an ISO 8601 date-time with a time zone offset, years 2000-2100")
    return parsed


def a_date(value: Any, field: str, *, lo: int = 1900, hi: int = 2100) -> date:
    try:
        parsed = date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None or not lo <= parsed.year <= hi:
        raise invalid(field, f"a date YYYY-MM-DD, years {lo}-{hi}")
    return parsed


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
