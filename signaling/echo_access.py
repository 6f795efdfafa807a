"""Who may run the pre-call check (the echo peer and its TURN credentials), and as whom their
checks are counted.

A signed-in staff member always; a patient (``casa_patient`` cookie or ``Authorization: Bearer
<credential>``) or a guest (``Bearer g_...``) until their consultation is over: ended by the
clinician, cancelled or fulfilled, or past its join window. A check that is refused because
the consultation is over says so (``consultation_ended``, ``too_late``), so the page can tell
the patient rather than ask them to sign in. Before the window opens the check is allowed:
patients are asked to test their devices early."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from server import errors
from server.consultations.credentials import PATIENT_COOKIE
from server.consultations.store import Consultation
from server.errors import N_, ApiError, define
from server.keys import CLIENT_IP, POOL, STAFF
from signaling import errors as signal_errors
from signaling import presence
from signaling.auth import check_window
from signaling.errors import ProtocolError
from signaling.keys import DIRECTORY
from signaling.messages import MAX_CREDENTIAL_CHARS

# This person (or this address) already holds as many echo peers as one check needs.
TOO_MANY_CHECKS = define("too_many_checks", 429, N_(
    "A connection test is already running. Please wait a moment and try again."))
# Every echo peer of this instance is taken.
ECHO_BUSY = define("echo_busy", 429, N_(
    "The connection test is busy. Please try again in a minute."))


@dataclass(frozen=True)
class Caller:
    """Whose check this is: ``key`` counts one person's checks together (``staff:<id>``,
    ``patient:<consultation id>`` for every credential of that patient, ``guest:<id>``);
    ``address`` is the client's address; ``until`` (unix time) when their right ends."""

    key: str
    address: str
    until: float


async def caller(request: web.Request) -> Caller:
    """The caller of a pre-call endpoint, or the catalogued refusal (``unauthenticated``,
    ``consultation_ended``, ``too_late``)."""
    address = request.get(CLIENT_IP) or request.remote or ""
    person = request.get(STAFF)
    if person is not None:
        return Caller(f"staff:{person.id}", address, float("inf"))
    auth = request.headers.get("Authorization", "")
    credential = auth[7:] if auth.startswith("Bearer ") else request.cookies.get(PATIENT_COOKIE)
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        raise ApiError(errors.UNAUTHENTICATED)
    pool, directory = request.app[POOL], request.app[DIRECTORY]
    c: Consultation | None = None
    if credential.startswith(presence.GUEST_PREFIX):
        # A guest (interpreter, second clinician) checks their devices before entering too.
        guest = await presence.resolve_guest(pool, credential)
        c = await directory.get(pool, guest[1]) if guest else None
        key = f"guest:{guest[0]}" if guest else ""
    if c is None:   # a patient's token may start like a guest's (see signaling.auth)
        c = await directory.resolve_patient_credential(pool, credential)
        key = f"patient:{c.id}" if c else ""
    if c is None:
        raise ApiError(errors.UNAUTHENTICATED)
    try:
        check_window(c, time.time())
    except ProtocolError as exc:
        # Ended or over: the same registry entries as the WebSocket's, answered as 410.
        if exc.kind in (signal_errors.CONSULTATION_ENDED, signal_errors.TOO_LATE):
            raise ApiError(exc.kind) from None
        # too_early: the device check may run before the window opens.
    return Caller(key, address, c.open_until().timestamp())
