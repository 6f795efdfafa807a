"""Request pipeline: request id and access log, errors, client address, language, staff
session and CSRF; security headers on every response, errors and static files included."""

from __future__ import annotations

import errno
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta

import asyncpg
from aiohttp import web

from server import errors, outcome
from server.auth import csrf, sessions
from server.health import note_storage_full
from server.keys import (
    ACTOR_STAFF_ID,
    CLIENT_IP,
    CONFIG,
    CSRF_COOKIE,
    CSRF_TOKEN,
    LANG,
    LANGUAGES,
    POOL,
    REQUEST_ID,
    SESSION,
    STAFF,
)
from server.metrics import observe_request
from server.pages import render_error
from server.request_info import (
    client_ip,
    from_trusted_proxy,
    is_https,
    own_origin,
    route_name,
    wants_json,
)
from web.i18n import LANGUAGE_COOKIE, choose_language, page_languages

log = logging.getLogger("casa.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Camera and microphone for our own origin only (the call pages); nothing else.
PERMISSIONS_POLICY = ("camera=(self), microphone=(self), display-capture=(self), "
                      "geolocation=(), payment=(), usb=(), interest-cohort=()")
# No inline script and no eval anywhere: every script is an ES module under /static.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# A request id a trusted proxy made (nginx's $request_id: 32 hex digits): adopted, so the
# proxy's access log line and every instance's lines of one request share it. Anything else
# (a client's own header, a malformed one) is ignored, so a client cannot forge log lines.
PROXY_REQUEST_ID = re.compile(r"[0-9A-Za-z-]{8,64}")


def request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if given and PROXY_REQUEST_ID.fullmatch(given) and from_trusted_proxy(request):
        return given
    return secrets.token_hex(8)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[REQUEST_ID] = request_id(request)
    request[CLIENT_IP] = client_ip(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        name = route_name(request)
        observe_request(request.app, request.method, name, status, elapsed)
        log.info("request", extra={"request_id": request[REQUEST_ID], "method": request.method,
                                   "route": name, "status": status,
                                   "ms": round(elapsed * 1000, 1),
                                   "staff_id": request.get(ACTOR_STAFF_ID)})


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a catalogued error: JSON for the API, a page for people."""
    # Catalogued errors, and the domain exceptions the registry maps to one (server.errors).
    catalogued: tuple[type[BaseException], ...] = (errors.ApiError, *errors.mapped_types())
    try:
        return await handler(request)
    except catalogued as raised:
        exc = errors.api_error(raised)
        assert exc is not None
        if exc.kind.status >= 500 and exc is not raised:
            # A mapped fault (a note failing its integrity check): the exception's text names
            # ids only, and the operators must hear of it.
            log.error("%s: %s", exc.kind.code, raised,
                      extra={"request_id": request[REQUEST_ID]})
        # A page form's refusal goes back to its page (server.outcome), never a page
        # answering the POST: the browser would keep what was typed with that answer.
        back = None if wants_json(request) else await outcome.refusal(request, exc)
        # The page a refusal went back to may itself be refused (the patient is not the
        # user's): its error is what is shown, once, like the refusal would have been.
        return back or outcome.forget(request, render_error(
            request, exc.kind, exc.message, exc.details, exc.headers))
    except web.HTTPRedirection:
        raise
    except web.HTTPException as exc:
        if exc.status == 404:
            kind = errors.NOT_FOUND
        elif exc.status == 405:
            kind = errors.METHOD
        elif exc.status == 413:
            kind = errors.TOO_LARGE
        elif exc.status < 400:
            raise
        else:
            kind = errors.ErrorKind("http_" + str(exc.status), exc.status, exc.reason)
        return render_error(request, kind, None, {}, {})
    except asyncpg.DataError:
        # Class 22 (a NUL byte, a number out of range, malformed text for a type): the input
        # was wrong, not the server.
        log.info("input refused by the database", extra={"request_id": request[REQUEST_ID]})
        return render_error(request, errors.BAD_REQUEST, None, {}, {})
    except Exception as exc:
        if client_gone(request):
            # The client hung up mid-request (often while we read its body): nothing to answer
            # and nothing wrong with the database.
            log.info("client went away", extra={"request_id": request[REQUEST_ID],
                                                "error": type(exc).__name__})
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        if storage_full(exc):
            note_storage_full(request.app)
            log.error("storage full", extra={"request_id": request[REQUEST_ID],
                                             "error": type(exc).__name__})
            return render_error(request, errors.STORAGE_FULL, None, {},
                                {"Retry-After": str(STORAGE_RETRY_AFTER_S)})
        if not database_unavailable(exc):
            # The traceback goes to the log under the request id, never to the client.
            log.exception("unhandled error", extra={"request_id": request[REQUEST_ID]})
            return render_error(request, errors.INTERNAL, None,
                                {"request_id": request[REQUEST_ID]}, {})
        log.error("database unavailable", extra={"request_id": request[REQUEST_ID],
                                                 "error": type(exc).__name__})
        return render_error(request, errors.DB_UNAVAILABLE, None, {}, {"Retry-After": "30"})


# The status logged for a request whose client left before the answer (nginx's convention).
CLIENT_CLOSED_REQUEST = 499
# A full disk is an operator's job: clients wait longer than for a restarting database.
STORAGE_RETRY_AFTER_S = 120


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def storage_full(exc: BaseException) -> bool:
    """PostgreSQL's disk_full (53100), or ENOSPC / EDQUOT on a write of our own."""
    if isinstance(exc, asyncpg.DiskFullError):
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


# SQLSTATEs that mean "the database cannot serve us right now", not "the query was wrong":
# admin shutdown, crash shutdown, cannot connect now, database not accepting connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "55000", "53300"})


def database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                        ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and (
        state in _UNAVAILABLE_STATES or str(state).startswith("08"))


@web.middleware
async def identity(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Loads the staff session and chooses the language; enforces CSRF on writes."""
    config = request.app[CONFIG]
    request[STAFF] = None
    request[SESSION] = None
    token = request.cookies.get(sessions.COOKIE)
    # A request that carries a bearer token is judged by that token alone: the session cookie
    # is ignored, so the CSRF exemption of bearer requests cannot lend it authority.
    if _csrf_exempt(request):
        token = None
    if token and not request.path.startswith("/static/"):
        found = await sessions.lookup_with_staff(
            request.app[POOL], token, timedelta(minutes=config.session_idle_minutes))
        if found is not None:
            request[SESSION], request[STAFF] = found
            request[ACTOR_STAFF_ID] = found[1].id if found[1] is not None else None
    user = request[STAFF]
    request[LANGUAGES] = page_languages(request.path, user is not None)
    request[LANG] = choose_language(
        [request.query.get("lang"), request.cookies.get(LANGUAGE_COOKIE),
         user.language if user else None],
        request.headers.get("Accept-Language"), config.default_language, request[LANGUAGES])
    csrf_cookie = request.cookies.get(csrf.COOKIE)
    new_cookie = None
    if not csrf_cookie:
        new_cookie = csrf_cookie = csrf.new_cookie_value()
    request[CSRF_COOKIE] = csrf_cookie
    request[CSRF_TOKEN] = csrf.token_for(config.secret_key, csrf_cookie)

    if request.method not in csrf.SAFE_METHODS and not _csrf_exempt(request):
        await _check_csrf(request)

    response = await handler(request)
    if new_cookie and not response.prepared and request.get(CSRF_COOKIE) == new_cookie:
        set_cookie(request, response, csrf.COOKIE, new_cookie, max_age=None)
    return response


def _csrf_exempt(request: web.Request) -> bool:
    # Bearer-token API calls carry no ambient credential a third-party page could ride on.
    return request.headers.get("Authorization", "").startswith("Bearer ")


async def _check_csrf(request: web.Request) -> None:
    config = request.app[CONFIG]
    origin = request.headers.get("Origin")
    # "null" is what sandboxed frames, data: URLs and cross-origin redirects send: never ours
    # (our Referrer-Policy is same-origin, under which browsers send our own origin on forms).
    if origin is not None and origin != own_origin(request):
        raise errors.ApiError(errors.CSRF)
    presented = request.headers.get(csrf.HEADER)
    if presented is None and request.content_type in ("application/x-www-form-urlencoded",
                                                      "multipart/form-data"):
        form = await request.post()
        value = form.get(csrf.FIELD)
        presented = value if isinstance(value, str) else None
    if not csrf.valid(config.secret_key, request.cookies.get(csrf.COOKIE), presented):
        raise errors.ApiError(errors.CSRF)


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
                        secure=is_https(request))


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every routed response, including errors and static files.
    (Requests too malformed to route are answered by server.serving with the same headers.)"""
    add_security_headers(response.headers, https=is_https(request),
                         cacheable=request.path.startswith("/static/"))
    if REQUEST_ID in request:
        response.headers["X-Request-Id"] = request[REQUEST_ID]


def add_security_headers(h: MutableMapping[str, str], *, https: bool, cacheable: bool) -> None:
    """The headers every response carries; ``cacheable`` only for static files."""
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    # Nothing leaves for other sites; same-origin requests keep their Origin header, which
    # "no-referrer" would turn into "null" on every form post (and CSRF needs it).
    # (The page answered at an invitation link's address says strict-origin: its own requests
    # must not carry the token in their Referer, server.bookings.join.)
    h.setdefault("Referrer-Policy", "same-origin")
    h["Permissions-Policy"] = PERMISSIONS_POLICY
    h["X-Frame-Options"] = "DENY"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    # aiohttp would announce its own and Python's versions: nobody needs them but attackers.
    h["Server"] = "Casa"
    if not cacheable:
        # Pages can show clinical or personal data: never keep them in a shared cache.
        h.setdefault("Cache-Control", "no-store")
    if https:
        h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
