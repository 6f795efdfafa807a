"""What signalling reads and writes of consultations, behind one small interface.

The consultation core owns consultations (``server.consultations.store``); the engine's parts
are given a ``Directory`` (``CoreDirectory``, which calls the store and nothing else), so what
signalling asks of consultations is listed in one place."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol, TypeAlias

import asyncpg

from server.consultations import store
from server.consultations.store import Consultation

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


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
    async def set_nurse_present(self, conn: Conn, consultation_id: int,
                                nurse_id: int | None) -> None: ...
    async def nurse_present(self, conn: Conn, consultation_id: int) -> bool: ...


class CoreDirectory:
    """The directory of the consultation core's store."""

    async def get(self, conn: Conn, consultation_id: int) -> Consultation | None:
        return await store.get(conn, consultation_id)

    async def get_by_room(self, conn: Conn, room_id: str) -> Consultation | None:
        return await store.get_by_room(conn, room_id)

    async def list_for_clinician_day(self, conn: Conn, staff_id: int,
                                     day: date) -> list[Consultation]:
        return await store.list_for_clinician_day(conn, staff_id, day)

    async def resolve_patient_credential(self, conn: Conn,
                                         credential: str) -> Consultation | None:
        return await store.resolve_patient_credential(conn, credential)

    async def lookup_patient_credential(self, conn: Conn,
                                        credential: str) -> Consultation | None:
        """A known credential even past its validity: only to say "too late"."""
        return await store.lookup_patient_credential(conn, credential)

    async def record_event(self, conn: Conn, consultation_id: int, event: str, *,
                           staff_id: int | None = None,
                           detail: dict[str, Any] | None = None) -> None:
        await store.record_event(conn, consultation_id, event, staff_id=staff_id,
                                 detail=detail)

    async def add_participant(self, conn: Conn, consultation_id: int, staff_id: int) -> None:
        await store.add_participant(conn, consultation_id, staff_id)

    async def lock(self, conn: asyncpg.Connection, consultation_id: int) -> bool:
        return await store.lock(conn, consultation_id)

    async def set_nurse_present(self, conn: Conn, consultation_id: int,
                                nurse_id: int | None) -> None:
        await store.set_nurse_present(conn, consultation_id, nurse_id)

    async def nurse_present(self, conn: Conn, consultation_id: int) -> bool:
        return await store.nurse_present(conn, consultation_id)
