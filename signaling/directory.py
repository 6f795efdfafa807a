"""What signalling needs from bookings, behind one small interface.

Bookings own consultations (server/bookings/consultations.py, see notes/contract.md); this
module is the only place that imports them, so the rest of ``signaling`` depends on the
``Directory`` protocol alone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol, TypeAlias

import asyncpg

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


class Consultation(Protocol):
    """The fields of bookings' ``Consultation`` that signalling reads."""

    @property
    def id(self) -> int: ...
    @property
    def booking_id(self) -> int: ...
    @property
    def room_id(self) -> str: ...
    @property
    def patient_id(self) -> int: ...
    @property
    def patient_language(self) -> str: ...
    @property
    def centre_id(self) -> str: ...
    @property
    def service_code(self) -> str: ...
    @property
    def sensitive(self) -> bool: ...
    @property
    def mode(self) -> str: ...
    @property
    def kiosk_id(self) -> int | None: ...
    @property
    def clinician_ids(self) -> tuple[int, ...]: ...
    @property
    def nurse_id(self) -> int | None: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def join_opens_at(self) -> datetime: ...
    @property
    def join_closes_at(self) -> datetime: ...
    @property
    def state(self) -> str: ...
    @property
    def booking_status(self) -> str: ...


# Bookings that are no longer consultations to show (bookings' credentials.ENDED_STATUSES):
# the dashboard page leaves them out, so its live list does too.
GONE_BOOKING_STATUSES = frozenset({"cancelled", "noshow", "entered-in-error"})


def staff_ids(c: Consultation) -> tuple[int, ...]:
    """Everyone on the staff side who may enter the call and sees its waiting room."""
    return c.clinician_ids + ((c.nurse_id,) if c.nurse_id and c.nurse_id not in
                              c.clinician_ids else ())


class Directory(Protocol):
    async def get(self, conn: Conn, consultation_id: int) -> Consultation | None: ...
    async def get_by_room(self, conn: Conn, room_id: str) -> Consultation | None: ...
    async def list_for_clinician_day(self, conn: Conn, staff_id: int,
                                     day: date) -> list[Consultation]: ...
    async def resolve_patient_credential(self, conn: Conn,
                                         credential: str) -> Consultation | None: ...
    async def lookup_patient_credential(self, conn: Conn,
                                        credential: str) -> Consultation | None: ...
    async def record_event(self, conn: Conn, consultation_id: int, event: str, *,
                           staff_id: int | None = None,
                           detail: dict[str, Any] | None = None) -> None: ...
    async def add_participant(self, conn: Conn, consultation_id: int, staff_id: int) -> None: ...
    async def lock(self, conn: asyncpg.Connection, consultation_id: int) -> bool: ...


class BookingsDirectory:
    """The real directory: bookings' consultations module."""

    async def get(self, conn: Conn, consultation_id: int) -> Consultation | None:
        from server.bookings import consultations

        return await consultations.get(conn, consultation_id)

    async def get_by_room(self, conn: Conn, room_id: str) -> Consultation | None:
        from server.bookings import consultations

        return await consultations.get_by_room(conn, room_id)

    async def list_for_clinician_day(self, conn: Conn, staff_id: int,
                                     day: date) -> list[Consultation]:
        from server.bookings import consultations

        return list(await consultations.list_for_clinician_day(conn, staff_id, day))

    async def resolve_patient_credential(self, conn: Conn,
                                         credential: str) -> Consultation | None:
        from server.bookings import consultations

        return await consultations.resolve_patient_credential(conn, credential)

    async def lookup_patient_credential(self, conn: Conn,
                                        credential: str) -> Consultation | None:
        """A known credential even past its validity: only to say "too late"."""
        from server.bookings import consultations

        return await consultations.lookup_patient_credential(conn, credential)

    async def record_event(self, conn: Conn, consultation_id: int, event: str, *,
                           staff_id: int | None = None,
                           detail: dict[str, Any] | None = None) -> None:
        from server.bookings import consultations

        await consultations.record_event(conn, consultation_id, event, staff_id=staff_id,
                                         detail=detail)

    async def add_participant(self, conn: Conn, consultation_id: int, staff_id: int) -> None:
        from server.bookings import consultations

        await consultations.add_participant(conn, consultation_id, staff_id)

    async def lock(self, conn: asyncpg.Connection, consultation_id: int) -> bool:
        from server.bookings import consultations

        return await consultations.lock(conn, consultation_id)
