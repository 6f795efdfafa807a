"""The pre-call check's ICE servers (the third ``/api/v1/precall`` endpoint, beside the echo
peer's offer and report in ``signaling.echo``): the same short-lived STUN/TURN list the call's
``welcome`` carries, so the connection test against the echo peer can try the relay the call
would use.

``GET /api/v1/precall/ice-servers`` answers whoever may run the check (the echo peer's own
rule, ``signaling.echo_access``): a signed-in staff member, a patient (``casa_patient`` cookie
or ``Authorization: Bearer <credential>``) or a guest (``Bearer g_...``), and neither of the
last two once their consultation is over. The credentials come from
``signaling.turn`` (never minted here) and expire with the consultation's join window, at most
``SHORT_TURN_TTL_S`` from now: a check takes a minute, a stolen credential relays little."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from server.keys import CONFIG
from signaling import echo_access, turn

# In the TURN username (``<expiry>:<peer id>``): marks these allocations as pre-call checks in
# coturn's logs, and says nothing about who is checking.
PEER_PREFIX = "precall-"


async def ice_servers_view(request: web.Request) -> web.Response:
    """``GET /api/v1/precall/ice-servers``: ``{"ice_servers": [RTCIceServer...]}``."""
    closes_at = (await echo_access.caller(request)).until
    now = time.time()
    servers: list[dict[str, Any]] = turn.ice_servers(
        request.app[CONFIG], PEER_PREFIX + secrets.token_urlsafe(6),
        expires_at=min(closes_at, now + turn.SHORT_TURN_TTL_S), now=now)
    return web.json_response({"ice_servers": servers}, headers={"Cache-Control": "no-store"})
