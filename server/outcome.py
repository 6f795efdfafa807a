"""What a form's POST did, carried to the page the browser is sent to (Post/Redirect/Get).

No page answers a form's POST: the browser keeps a POST answer's request body with the tab, in
its session-restore files on disk and for Back or reload to send again, and that body is what
was typed (a patient's name, codice fiscale, date of birth, a reason). So every page form is
answered with 303 to a GET, and what that GET must say (refused, why, which fields) rides in
one short-lived cookie: HttpOnly, SameSite=Strict, signed with the server's key, bound to the
page it is for and to the signed-in staff member. It holds catalogued codes, server-written
messages, field names and ids, never a typed value: the person types those again."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from server import errors
from server.keys import CONFIG, STAFF
from server.pages import translator
from server.request_info import is_https

# Where a form's refusal goes back to (None: nowhere, answered as any other error).
Back = Callable[[web.Request], Awaitable[str | None]]
_BACK = "casa_form_back"
H = TypeVar("H")

COOKIE = "casa_outcome"
# Long enough for the redirect and a slow kiosk to follow it, short enough that a later
# visitor of the same browser does not see someone else's refusal.
AGE_S = 60
# A cookie over ~4 KB is dropped by browsers: the payload is ids and codes, far less.
MAX_BYTES = 3000


@dataclass(frozen=True)
class Outcome:
    """What the GET shows: ``status`` is the status the POST would have answered with."""

    status: int = 200
    message: str = ""
    kind: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    # Ids, counts and choices (a centre, a service), never anything a person typed.
    keep: dict[str, Any] = field(default_factory=dict)


def _sign(secret_key: str, body: bytes) -> str:
    return hmac.new(("casa-outcome:" + secret_key).encode(), body, hashlib.sha256).hexdigest()


def _path(location: str) -> str:
    return location.split("#", 1)[0].split("?", 1)[0]


def _staff_id(request: web.Request) -> int:
    user = request.get(STAFF)
    return user.id if user is not None else 0


def _value(request: web.Request, location: str, outcome: Outcome) -> str:
    payload = {"to": _path(location), "u": _staff_id(request), "t": int(time.time()),
               "s": outcome.status, "m": outcome.message, "k": outcome.kind,
               "f": outcome.fields, "v": outcome.keep}
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    value = f"{body.decode()}.{_sign(request.app[CONFIG].secret_key, body)}"
    if len(value) > MAX_BYTES and (outcome.fields or outcome.keep):
        # Never seen (ids and field names are short), but a refusal must still say why.
        return _value(request, location, Outcome(outcome.status, outcome.message,
                                                 outcome.kind))
    return value


def _carry(request: web.Request, response: web.StreamResponse, location: str,
           outcome: Outcome) -> None:
    response.set_cookie(COOKIE, _value(request, location, outcome), max_age=AGE_S, path="/",
                        httponly=True, samesite="Strict", secure=is_https(request))


def redirect(request: web.Request, location: str, outcome: Outcome) -> web.HTTPSeeOther:
    """303 to ``location`` (a path of this site), carrying ``outcome`` to its GET."""
    response = web.HTTPSeeOther(location)
    _carry(request, response, location, outcome)
    return response


def form(back: Back) -> Callable[[H], H]:
    """Mark a page form's POST handler: any catalogued refusal of it, also those before it
    runs (the CSRF check, a session that expired while the form was being filled in), goes
    back to ``back(request)`` with the refusal (``refusal`` below, from the error pages)."""

    def mark(handler: H) -> H:
        setattr(handler, _BACK, back)
        return handler

    return mark


async def refusal(request: web.Request, exc: errors.ApiError) -> web.Response | None:
    """The 303 answering a marked form's refused POST, or None where a page answers it."""
    back: Back | None = getattr(request.match_info.handler, _BACK, None)
    if back is None or request.method != "POST":
        return None
    try:
        location = await back(request)
    except (ValueError, web.HTTPException):  # a body that cannot be read as a form
        location = None
    if location is None:
        return None
    response = web.Response(status=303, headers={"Location": location})
    _carry(request, response, location, Outcome(
        exc.kind.status, exc.message or translator(request)(exc.kind.message), kind=exc.kind.code,
        fields=errors.field_errors(exc)))
    response.headers.update(exc.headers)
    return response


def take(request: web.Request) -> Outcome | None:
    """The outcome sent to this page by this staff member's last POST, if any (a forged,
    stale or someone else's cookie reads as none). Call ``forget`` on the response."""
    value = request.cookies.get(COOKIE, "")
    body, _sep, sig = value.rpartition(".")
    if not body or not hmac.compare_digest(
            sig.encode(), _sign(request.app[CONFIG].secret_key, body.encode()).encode()):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, binascii.Error):
        return None
    if payload.get("to") != request.path or payload.get("u") != _staff_id(request) \
            or not 0 <= time.time() - float(payload.get("t", 0)) <= AGE_S:
        return None  # the cookie's own max-age aside: a copied cookie is no longer believed
    return Outcome(status=int(payload["s"]), message=str(payload["m"]), kind=str(payload["k"]),
                   fields=dict(payload["f"]), keep=dict(payload["v"]))


def forget(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Shown once: a reload shows the plain form. Another page's outcome is left for it."""
    if COOKIE in request.cookies and take(request) is not None:
        response.del_cookie(COOKIE, path="/")
    return response
