"""The pre-call check's ICE servers: the same short-lived STUN/TURN list the call's ``welcome``
carries, so the connection test against the echo peer can try the relay the call would use.

``GET /api/v1/precall/ice-servers`` answers whoever may run the check (the echo peer's own
rule): a signed-in staff member, a patient (``casa_patient`` cookie or ``Authorization:
Bearer <credential>``) or a guest (``Bearer g_...``). The credentials come from
``signaling.turn`` (never minted here) and expire with the consultation's join window, at most
``SHORT_TURN_TTL_S`` from now: a check takes a minute, a stolen credential relays little."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from server import errors
from server.bookings import consultations
from server.errors import ApiError
from server.keys import CONFIG, POOL, STAFF
from signaling import presence, turn

PATIENT_COOKIE = "casa_patient"
# Longer than any credential we issue (link tokens, code sessions, guest tokens): refused
# before any query.
MAX_CREDENTIAL_CHARS = 256
# In the TURN username (``<expiry>:<peer id>``): marks these allocations as pre-call checks in
# coturn's logs, and says nothing about who is checking.
PEER_PREFIX = "precall-"


async def _closes_at(request: web.Request) -> float | None:
    """When the caller's right to the check ends (unix time): the join window's end for a
    patient or guest, ``inf`` for staff; None for anyone else."""
    if request.get(STAFF) is not None:
        return float("inf")
    auth = request.headers.get("Authorization", "")
    credential = auth[7:] if auth.startswith("Bearer ") else request.cookies.get(PATIENT_COOKIE)
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        return None
    pool = request.app[POOL]
    if credential.startswith(presence.GUEST_PREFIX):
        guest = await presence.resolve_guest(pool, credential)
        c = await consultations.get(pool, guest[1]) if guest else None
    else:
        c = await consultations.resolve_patient_credential(pool, credential)
    return c.join_closes_at.timestamp() if c is not None else None


async def ice_servers_view(request: web.Request) -> web.Response:
    """``GET /api/v1/precall/ice-servers``: ``{"ice_servers": [RTCIceServer...]}``."""
    closes_at = await _closes_at(request)
    if closes_at is None:
        raise ApiError(errors.UNAUTHENTICATED)
    now = time.time()
    servers: list[dict[str, Any]] = turn.ice_servers(
        request.app[CONFIG], PEER_PREFIX + secrets.token_urlsafe(6),
        expires_at=min(closes_at, now + turn.SHORT_TURN_TTL_S), now=now)
    return web.json_response({"ice_servers": servers}, headers={"Cache-Control": "no-store"})
