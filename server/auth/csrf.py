"""CSRF protection: a signed double-submit token.

Every browser gets a random ``casa_csrf`` cookie; forms and scripts send back
HMAC(secret key, cookie) as the ``csrf_token`` field or the ``X-CSRF-Token`` header. Another
site can neither read the cookie nor compute the HMAC. The cookie is replaced at login, so a
token planted before login is worthless after it. Requests authenticated by a bearer token
carry no ambient credential and are exempt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "casa_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_cookie_value() -> str:
    return secrets.token_urlsafe(24)


def token_for(secret_key: str, cookie_value: str) -> str:
    mac = hmac.new(secret_key.encode(), b"csrf:" + cookie_value.encode(), hashlib.sha256)
    return mac.hexdigest()


def valid(secret_key: str, cookie_value: str | None, presented: str | None) -> bool:
    if not cookie_value or not presented:
        return False
    return hmac.compare_digest(token_for(secret_key, cookie_value), presented)
