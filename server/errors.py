"""The HTTP error catalogue: a stable code per failure, its status, and a message to translate.

Clients and tests match on ``code``; ``message`` is for people and goes through gettext.
The text never carries request data back (no echoed input, no stack trace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorKind:
    code: str
    status: int
    message: str


CATALOGUE: dict[str, ErrorKind] = {}


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


def _kind(code: str, status: int, message: str) -> ErrorKind:
    kind = ErrorKind(code, status, message)
    CATALOGUE[code] = kind
    return kind


BAD_REQUEST = _kind("bad_request", 400, N_("The request is not valid."))  # malformed body or query
# Field errors follow in details.
VALIDATION = _kind("validation_failed", 422, N_("Some fields are not valid."))
UNAUTHENTICATED = _kind("unauthenticated", 401, N_("Please sign in."))  # no or expired session
FORBIDDEN = _kind("forbidden", 403, N_("You do not have access to this page."))  # wrong role
CSRF = _kind("csrf_failed", 403,
             N_("This form has expired. Reload the page and try again."))  # missing or wrong token
NOT_FOUND = _kind("not_found", 404, N_("This page does not exist."))
METHOD = _kind("method_not_allowed", 405, N_("This action is not allowed here."))
CONFLICT = _kind("conflict", 409, N_("This conflicts with something that already exists."))
TOO_LARGE = _kind("too_large", 413, N_("The request is too large."))
RATE_LIMITED = _kind("rate_limited", 429, N_("Too many attempts. Please wait and try again."))
DB_UNAVAILABLE = _kind("database_unavailable", 503,
                       N_("The service is briefly unavailable. Please try again in a minute."))
# The body did not arrive within the body timeout (server.edge): a stalled or hostile client.
REQUEST_TIMEOUT = _kind("request_timeout", 408,
                        N_("The request took too long to arrive. Please try again."))
# PostgreSQL's disk_full (53100) or ENOSPC on our own writes: nothing was saved; retry later.
STORAGE_FULL = _kind("storage_full", 503,
                     N_("The service cannot save anything right now. Please try again later."))
INTERNAL = _kind("internal_error", 500, N_("Something went wrong on our side. Please try again."))


class ApiError(Exception):
    """Raised by handlers; the middleware renders it as JSON or as a page."""

    def __init__(self, kind: ErrorKind, message: str | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(kind.code)
        self.kind = kind
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
