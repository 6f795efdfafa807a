"""ICE servers for a peer: STUN/TURN URLs from configuration, and short-lived TURN credentials
in the TURN REST API form coturn's ``use-auth-secret`` accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from server.config import Config

# A credential never outlives the consultation's join window, and never this (a stolen one
# relays for a bounded time).
MAX_TURN_TTL_S = 4 * 3600
# Probe and echo peers are not tied to a consultation: ten minutes is plenty for a test call.
SHORT_TURN_TTL_S = 600


def turn_password(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)): the password coturn derives for the username."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_username(expiry_unix: int, peer_id: str) -> str:
    return f"{expiry_unix}:{peer_id}"


def ice_servers(config: Config, peer_id: str, expires_at: float | None = None,
                now: float | None = None) -> list[dict[str, Any]]:
    """RTCIceServer dicts for one peer; TURN credentials expire at ``expires_at`` (unix time),
    capped at MAX_TURN_TTL_S from now."""
    now = time.time() if now is None else now
    out: list[dict[str, Any]] = []
    if config.stun_urls:
        out.append({"urls": list(config.stun_urls)})
    if config.turn_urls and config.turn_secret:
        expiry = int(min(expires_at or now + SHORT_TURN_TTL_S, now + MAX_TURN_TTL_S))
        username = turn_username(expiry, peer_id)
        out.append({"urls": list(config.turn_urls), "username": username,
                    "credential": turn_password(config.turn_secret, username)})
    return out
