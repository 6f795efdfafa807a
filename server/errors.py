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


def _kind(code: str, status: int, message: str) -> ErrorKind:
    kind = ErrorKind(code, status, message)
    CATALOGUE[code] = kind
    return kind


BAD_REQUEST = _kind("bad_request", 400, "The request is not valid.")  # malformed body or query
VALIDATION = _kind("validation_failed", 422, "Some fields are not valid.")  # field errors follow
UNAUTHENTICATED = _kind("unauthenticated", 401, "Please sign in.")  # no or expired session
FORBIDDEN = _kind("forbidden", 403, "You do not have access to this page.")  # wrong role
CSRF = _kind("csrf_failed", 403,
             "This form has expired. Reload the page and try again.")  # missing or wrong token
NOT_FOUND = _kind("not_found", 404, "This page does not exist.")
METHOD = _kind("method_not_allowed", 405, "This action is not allowed here.")
CONFLICT = _kind("conflict", 409, "This conflicts with something that already exists.")
TOO_LARGE = _kind("too_large", 413, "The request is too large.")
RATE_LIMITED = _kind("rate_limited", 429, "Too many attempts. Please wait and try again.")
DB_UNAVAILABLE = _kind("database_unavailable", 503,
                       "The service is briefly unavailable. Please try again in a minute.")
INTERNAL = _kind("internal_error", 500, "Something went wrong on our side. Please try again.")


class ApiError(Exception):
    """Raised by handlers; the middleware renders it as JSON or as a page."""

    def __init__(self, kind: ErrorKind, message: str | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(kind.code)
        self.kind = kind
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
