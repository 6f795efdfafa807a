"""Helpers shared by the records API and pages: the booking's patient and JSON shapes (records
failures become HTTP errors through the registry, ``records.errors``). Only ids, states and
(for readers allowed to see it) content leave through here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from records import access
from records import errors as rerr
from records.keys import RECORDS
from records.service import NoteView, Records
from server import errors
from server.consultations import store
from server.staff import Staff

log = logging.getLogger("casa.records")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def records_of(request: web.Request) -> Records:
    found = request.app.get(RECORDS)
    if found is None:
        raise errors.ApiError(rerr.RECORDS_UNAVAILABLE)
    return found


async def booking_patient(conn: asyncpg.Connection, booking_id: int,
                          given: int | None) -> int:
    """The consultation's patient, from its booking; a ``given`` patient must match it."""
    known = await store.patient_of_booking(conn, booking_id)
    if known is None:
        raise errors.NotFound(rerr.NOTE_NOT_FOUND, f"booking {booking_id}")
    if given is not None and known != given:
        raise errors.invalid({"patient_id": "not this booking's"})
    return int(known)


async def consultation_patient(conn: asyncpg.Connection, user: Staff, booking_id: int) -> int:
    """The patient of a consultation whose editor ``user`` may open, checked before anything
    about the patient is loaded. Refused alike for an unknown booking and another's, so
    booking ids cannot be probed."""
    if not (user.role.clinical and await access.on_booking(conn, user.id, booking_id)):
        raise rerr.Denied(f"booking {booking_id}: not on this consultation")
    patient_id = await booking_patient(conn, booking_id, None)
    if not await access.caring_for(conn, user.id, patient_id):
        raise rerr.Denied(f"booking {booking_id}: not caring for the patient")
    return patient_id


async def record_of_booking(conn: asyncpg.Connection, user: Staff, booking_id: int) -> int:
    """The patient of a booking whose record ``user`` may open; an unknown booking is refused
    like a record the user may not open, so booking ids cannot be probed."""
    try:
        patient_id = await booking_patient(conn, booking_id, None)
    except errors.NotFound:
        raise rerr.Denied(f"booking {booking_id}: unknown") from None
    await check_record(conn, user, patient_id)
    return patient_id


def same_patient(given: int | None, patient_id: int) -> None:
    """A patient the client named must be the booking's; checked only once the caller is
    authorised, so a mismatch answer cannot be used to guess whose booking it is."""
    if given is not None and given != patient_id:
        raise errors.invalid({"patient_id": "not this booking's"})


async def check_record(conn: asyncpg.Connection, user: Staff, patient_id: int) -> None:
    """Refuse, before the patient is loaded, anyone who may not open the patient's record;
    an unknown patient is refused the same way, so patient ids cannot be probed."""
    if not await access.may_open_record(conn, user, patient_id):
        raise rerr.Denied(f"patient {patient_id}: record refused")


def view_json(view: NoteView) -> dict[str, Any]:
    n = view.note
    return {
        "id": n.id, "booking_id": n.booking_id, "patient_id": n.patient_id,
        "category": n.category.value if view.readable else None,
        "author_id": n.author_id if view.readable else None,
        "created_at": n.created_at.isoformat(), "erased": n.erased_at is not None,
        "readable": view.readable, "can_edit": view.can_edit,
        "can_break_glass": view.can_break_glass,
        "versions": [{
            "version": v.version, "status": v.status, "amends_version": v.amends_version,
            "author_id": v.author_id, "saved_at": v.saved_at.isoformat(),
            "signed_at": v.signed_at.isoformat() if v.signed_at else None,
            "erased": v.erased_at is not None,
            "content": v.content.to_json() if v.content else None,
        } for v in view.versions],
    }
