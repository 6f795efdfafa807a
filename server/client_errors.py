"""Errors raised in people's browsers, reported so that operators see them.

``POST /api/v1/client-errors`` takes ``{"page", "name", "message", "file", "line"}`` from the
pages' error hook (``web/static/js/client-errors.js``) and answers 204. Each report is counted
in ``/metrics`` by page kind and error name (``casa_client_errors_total``) and logged in a form
that cannot hold personal data: the page kind and error name from fixed lists, the message cut
short with quoted values, addresses, digits and token-like words removed, and the script's file
name and line. The browser scrubs before sending; the server scrubs again and trusts nothing.

CSRF is the middleware's, as for every other write; reports are limited per client address
(a page stuck in a loop must not fill the log), in memory: a report is not worth a database
round trip, and a per-instance limit is enough to keep one client quiet.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from server import errors, openapi, validation
from server.keys import CLIENT_IP
from server.metrics import count_client_error

log = logging.getLogger("casa.client")

PATH = "/api/v1/client-errors"
# Error names worth a metric label of their own; any other name is counted as "other", so a
# client cannot grow the metric's label set.
NAMES = frozenset({"Error", "TypeError", "ReferenceError", "SyntaxError", "RangeError",
                   "URIError", "EvalError", "AggregateError", "DOMException", "AbortError",
                   "NotAllowedError", "NotFoundError", "NotReadableError", "NotSupportedError",
                   "InvalidStateError", "OperationError", "SecurityError", "NetworkError",
                   "TimeoutError", "unknown"})
MAX_BODY_BYTES = 2048
MESSAGE_MAX = 160
# Reports kept per client address and window.
LIMIT = 10
WINDOW_S = 60.0
# Past this many addresses the quiet ones are forgotten, so the table stays small.
MAX_CLIENTS = 10_000

FILE_RE = re.compile(r"[A-Za-z0-9_.-]{1,60}\.js")
# Where a message carries data it is quoted ("reading 'Maria'"), an address or a path, or a
# long word (a token, an id); digits are dates, phone numbers, ids.
_QUOTED = re.compile(r"""(["'`«“‘]).*?(["'`»”’]|$)""")
_URLISH = re.compile(r"\S*(?:://|[/?=@&#\\%])\S*")
_LONG_WORD = re.compile(r"\w{16,}")
_DIGITS = re.compile(r"\d+")
_UNSAFE = re.compile(r"[^\w\s.,:;()\[\]!…#-]")
_SPACES = re.compile(r"\s+")


def scrub(message: str) -> str:
    """``message`` without anything that can be data, at most ``MESSAGE_MAX`` characters."""
    text = message[:MESSAGE_MAX * 4]
    text = _QUOTED.sub("…", text)
    text = _URLISH.sub("…", text)
    text = _LONG_WORD.sub("…", text)
    text = _DIGITS.sub("#", text)
    text = _UNSAFE.sub("", text)
    return _SPACES.sub(" ", text).strip()[:MESSAGE_MAX]


def file_name(value: str) -> str:
    """The script's file name alone (no origin, path or ``?v=`` query), or ``""``."""
    name = value.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    return name if FILE_RE.fullmatch(name) else ""


Page = Literal["consultation", "dashboard", "precall", "notes", "bookings", "nurse", "other"]


class ClientError(msgspec.Struct, kw_only=True):
    """What the error hook sends; ``name`` and ``message`` are reduced before use."""

    page: Page
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    message: Annotated[str, msgspec.Meta(max_length=MAX_BODY_BYTES)] = ""
    file: Annotated[str, msgspec.Meta(max_length=MAX_BODY_BYTES)] = ""
    line: Annotated[int, msgspec.Meta(ge=0, lt=10_000_000)] = 0


@dataclass(frozen=True)
class Report:
    page: str
    name: str
    message: str
    file: str
    line: int


def parse(body: bytes) -> Report:
    """The report in ``body``, or the catalogued refusal (``server.validation``)."""
    sent = validation.decode(body, ClientError)
    return Report(page=sent.page, name=sent.name if sent.name in NAMES else "other",
                  message=scrub(sent.message), file=file_name(sent.file), line=sent.line)


@dataclass
class Limiter:
    """At most ``LIMIT`` reports per client address in any ``WINDOW_S``."""

    clock: Callable[[], float] = time.monotonic
    seen: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, client: str) -> bool:
        now = self.clock()
        if len(self.seen) >= MAX_CLIENTS:
            self.seen = {k: q for k, q in self.seen.items() if q and q[-1] > now - WINDOW_S}
            if len(self.seen) >= MAX_CLIENTS:
                self.seen.clear()
        times = self.seen.setdefault(client, deque())
        while times and times[0] <= now - WINDOW_S:
            times.popleft()
        if len(times) >= LIMIT:
            return False
        times.append(now)
        return True


LIMITER = web.AppKey("client_error_limiter", Limiter)


async def report_view(request: web.Request) -> web.Response:
    """``POST /api/v1/client-errors``: 204, or 400 / 413 / 429 with the usual error body."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.ApiError(errors.TOO_LARGE)
    # Read already, within the app's size and time limits (server.edge); this one is smaller.
    body = await request.read()
    if len(body) > MAX_BODY_BYTES:
        raise errors.ApiError(errors.TOO_LARGE)
    # Counted before it is read: a page that sends nonsense in a loop is limited too.
    if not request.app[LIMITER].allow(request[CLIENT_IP]):
        raise errors.ApiError(errors.RATE_LIMITED, headers={"Retry-After": str(int(WINDOW_S))})
    report = parse(body)
    count_client_error(request.app, report.page, report.name)
    log.info("client error", extra={"page": report.page, "error": report.name,
                                    "error_message": report.message, "file": report.file,
                                    "line": report.line})
    return web.Response(status=204)


def setup(app: web.Application, clock: Callable[[], float] = time.monotonic) -> None:
    app[LIMITER] = Limiter(clock)
    openapi.route(app, openapi.Operation(
        "POST", PATH.removeprefix(openapi.PREFIX), "client_errors",
        "Report an error raised in a page (counted in /metrics, logged without data)",
        ok=204, body=ClientError, errors=(400, 403, 413, 422, 429), tag="operations"),
        report_view)
