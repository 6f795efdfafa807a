"""What a booking is: its record, a request for a new one, the join window around it, and the
failures a booking change can end in (the API turns them into catalogued errors)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

MODES = ("home_video", "kiosk_video", "in_person")
VIDEO_MODES = frozenset({"home_video", "kiosk_video"})
# Bookings shorter than this are typing mistakes; longer than this are not consultations.
MIN_MINUTES, MAX_MINUTES = 5, 240


class BookingError(Exception):
    """Base of the failures the API turns into catalogued errors."""


class Invalid(BookingError):
    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("invalid booking")
        self.problems = problems


class Clash(BookingError):
    """The time is taken; ``what`` is 'clinician', 'patient' or 'kiosk'."""

    def __init__(self, what: str, other_booking_id: int | None) -> None:
        super().__init__(f"{what} already booked")
        self.what = what
        self.other_booking_id = other_booking_id


class BadTransition(BookingError):
    def __init__(self, old: str, new: str) -> None:
        super().__init__(f"status cannot change from {old} to {new}")
        self.old = old
        self.new = new


class NotFound(BookingError):
    pass


class OutsideHours(BookingError):
    """The time is not within the clinician's hours at the centre: ``reason`` is
    'outside_hours' (no weekly or extra hours then) or 'leave' (an absence covers it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not within the clinician's hours: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Booking:
    id: int
    centre_id: str
    service_code: str
    mode: str
    patient_id: int
    clinician_id: int
    kiosk_id: int | None
    nurse_id: int | None
    starts_at: datetime
    ends_at: datetime
    status: str
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def video(self) -> bool:
        return self.mode in VIDEO_MODES


@dataclass(frozen=True)
class NewBooking:
    centre_id: str
    service_code: str
    mode: str
    patient_id: int
    clinician_id: int
    starts_at: datetime
    ends_at: datetime | None = None  # the service's default duration when None
    kiosk_id: int | None = None
    nurse_id: int | None = None


@dataclass(frozen=True)
class JoinWindow:
    open_before: timedelta
    close_after: timedelta

    def around(self, starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
        return starts_at - self.open_before, ends_at + self.close_after


COLUMNS = """b.id, b.centre_id, b.service_code, b.mode, b.patient_id, b.clinician_id, b.kiosk_id,
b.nurse_id, lower(b.during) AS starts_at, upper(b.during) AS ends_at, b.status,
b.cancel_reason, b.created_at, b.updated_at"""
GET = f"SELECT {COLUMNS} FROM bookings b WHERE b.id = $1"
GET_FOR_UPDATE = GET + " FOR UPDATE"


def row_to_booking(r: asyncpg.Record) -> Booking:
    return Booking(**{k: r[k] for k in Booking.__dataclass_fields__})


async def get(conn: asyncpg.Connection | asyncpg.Pool, booking_id: int) -> Booking | None:
    r = await conn.fetchrow(GET, booking_id)
    return row_to_booking(r) if r else None
