"""Who is on a socket: a staff session, a patient credential, a guest token or a probe token.

Staff come with the ``casa_session`` cookie of the upgrade request (a session still owing its
second factor is refused); patients with the ``casa_patient`` cookie or a credential in
``hello``; guests and probes with their token in ``hello``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from server import staff as staff_store
from server.auth import sessions
from server.consultations.care import staff_on
from server.consultations.credentials import PATIENT_COOKIE
from server.consultations.status import CLOSED_TO_JOINING
from server.consultations.store import Consultation
from server.keys import CONFIG, POOL
from signaling import errors, presence
from signaling.directory import Directory
from signaling.errors import ProtocolError
from signaling.messages import Hello
from signaling.states import Kind

PROBE_PREFIX = "probe."
# A probe call lasts seconds; a token a little longer so a slow machine still finishes.
PROBE_TOKEN_TTL_S = 600


@dataclass(frozen=True)
class Identity:
    kind: Kind
    participant: str = ""          # patient, staff:<id>, guest:<id>
    consultation: Consultation | None = None
    staff_id: int | None = None
    session_hash: bytes | None = None
    name: str = ""
    probe_room: str = ""


def probe_token(secret_key: str, nonce: str | None = None, now: float | None = None) -> str:
    """A token that lets two probe peers meet in room ``probe-<nonce>`` for ten minutes."""
    nonce = nonce or secrets.token_urlsafe(9)
    expiry = int((now or time.time()) + PROBE_TOKEN_TTL_S)
    body = f"{PROBE_PREFIX}{expiry}.{nonce}"
    return f"{body}.{_sign(secret_key, body)}"


def _sign(secret_key: str, body: str) -> str:
    mac = hmac.new(secret_key.encode(), b"casa-probe:" + body.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def check_probe_token(secret_key: str, token: str) -> str | None:
    """The probe room's nonce, or None for a forged or expired token."""
    parts = token.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_sign(secret_key, body), parts[3]):
        return None
    if int(parts[1]) < time.time():
        return None
    return parts[2]


async def identify(request: web.Request, hello: Hello, directory: Directory) -> Identity:
    """Authenticate a ``hello`` (raises ``ProtocolError`` with unauthenticated / room errors)."""
    app = request.app
    pool = app[POOL]
    credential = hello.credential
    if credential and credential.startswith(PROBE_PREFIX):
        nonce = check_probe_token(app[CONFIG].secret_key, credential)
        if nonce is None:
            raise ProtocolError(errors.UNAUTHENTICATED)
        return Identity(Kind.PROBE, probe_room=f"probe-{nonce}", name="probe")
    if credential and credential.startswith(presence.GUEST_PREFIX):
        # Patients' tokens are url-safe random text too, and one in 4,096 starts with the
        # same two characters: a credential that is no guest's goes on to the patient's.
        guest = await presence.resolve_guest(pool, credential)
        c = await directory.get(pool, guest[1]) if guest is not None else None
        if guest is not None and c is not None:
            return Identity(Kind.GUEST, f"guest:{guest[0]}", c, name=guest[2] or "")
    if credential is None:
        token = request.cookies.get(sessions.COOKIE)
        if token:
            return await _staff(request, token, hello, directory)
        credential = request.cookies.get(PATIENT_COOKIE)
    if not credential:
        raise ProtocolError(errors.UNAUTHENTICATED)
    c = await directory.resolve_patient_credential(pool, credential)
    if c is None:
        # An expired credential opens nothing, but its patient is told the time is over.
        expired = await directory.lookup_patient_credential(pool, credential)
        raise ProtocolError(errors.TOO_LATE if expired is not None else errors.UNAUTHENTICATED)
    if hello.room is not None and hello.room != c.room_id:
        raise ProtocolError(errors.ROOM_NOT_FOUND)
    from server import patients

    patient = await patients.get(pool, c.patient_id)
    return Identity(Kind.PATIENT, "patient", c, name=patient.full_name if patient else "")


async def _staff(request: web.Request, token: str, hello: Hello,
                 directory: Directory) -> Identity:
    app = request.app
    pool = app[POOL]
    idle = timedelta(minutes=app[CONFIG].session_idle_minutes)
    session = await sessions.lookup(pool, token, idle)
    if session is None or session.mfa_pending:
        raise ProtocolError(errors.UNAUTHENTICATED)
    person = await staff_store.get(pool, session.staff_id)
    if person is None or person.needs_totp_enrolment:
        raise ProtocolError(errors.UNAUTHENTICATED)
    if hello.room is None:
        return Identity(Kind.DASHBOARD, staff_id=person.id, session_hash=session.token_hash,
                        name=person.full_name)
    c = await directory.get_by_room(pool, hello.room)
    if c is None or person.id not in staff_on(c):
        raise ProtocolError(errors.ROOM_NOT_FOUND)
    return Identity(Kind.CLINICIAN, f"staff:{person.id}", c, person.id, session.token_hash,
                    person.full_name)


def check_window(c: Consultation, now_ts: float | None = None) -> None:
    """Raise the catalogued error when the consultation cannot be entered now."""
    now_ts = time.time() if now_ts is None else now_ts
    if c.state == "ended" or c.booking_status in CLOSED_TO_JOINING:
        raise ProtocolError(errors.CONSULTATION_ENDED)
    if now_ts < c.join_opens_at.timestamp():
        raise ProtocolError(errors.TOO_EARLY, {"opens_at": c.join_opens_at.isoformat()})
    # Past the window only for a consultation under way: its people may come back until it
    # ends (the waiting room never closes by itself).
    if now_ts > c.open_until().timestamp():
        raise ProtocolError(errors.TOO_LATE)
