"""The one error registry: a stable code per failure, its HTTP status, its WebSocket close code,
a message to translate, and which domain exceptions become which error.

Clients and tests match on ``code``; ``message`` is for people and goes through gettext.
The text never carries request data back (no echoed input, no stack trace). Every package
defines its errors here with ``define`` (a code defined twice fails at import) and maps its own
exceptions with ``maps``; the error pages, ``/api/v1`` and the WebSocket all answer through it.

Field errors have one shape wherever they come from (hand checks, msgspec, a domain
``Invalid``): ``details = {"fields": {path: message}}``, where ``path`` names the field as the
client sent it (``content.summary``, ``items[2].id``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class ErrorKind:
    code: str
    status: int
    message: str
    # The WebSocket close code when this error ends the socket; 0: the socket stays open.
    close_code: int = 0

    @property
    def fatal(self) -> bool:
        return self.close_code != 0


class DuplicateCode(Exception):
    """Two errors were defined with one code: clients could not tell them apart."""


REGISTRY: dict[str, ErrorKind] = {}


def define(code: str, status: int, message: str, *, close_code: int = 0) -> ErrorKind:
    """Catalogue an error; a code already catalogued raises at import."""
    if code in REGISTRY:
        raise DuplicateCode(code)
    kind = REGISTRY[code] = ErrorKind(code, status, message, close_code)
    return kind


BAD_REQUEST = define("bad_request", 400, N_("The request is not valid."))  # malformed body/query
# Field errors follow in details (``fields``, see above).
VALIDATION = define("validation_failed", 422, N_("Some fields are not valid."))
# No or expired session or credential; on the WebSocket it closes the socket.
UNAUTHENTICATED = define("unauthenticated", 401, N_("Please sign in."), close_code=4001)
FORBIDDEN = define("forbidden", 403, N_("You do not have access to this page."))  # wrong role
CSRF = define("csrf_failed", 403,
              N_("This form has expired. Reload the page and try again."))  # missing/wrong token
NOT_FOUND = define("not_found", 404, N_("This page does not exist."))
METHOD = define("method_not_allowed", 405, N_("This action is not allowed here."))
CONFLICT = define("conflict", 409, N_("This conflicts with something that already exists."))
TOO_LARGE = define("too_large", 413, N_("The request is too large."))
RATE_LIMITED = define("rate_limited", 429, N_("Too many attempts. Please wait and try again."))
DB_UNAVAILABLE = define("database_unavailable", 503,
                        N_("The service is briefly unavailable. Please try again in a minute."))
# The body did not arrive within the body timeout (server.edge): a stalled or hostile client.
REQUEST_TIMEOUT = define("request_timeout", 408,
                         N_("The request took too long to arrive. Please try again."))
# PostgreSQL's disk_full (53100) or ENOSPC on our own writes: nothing was saved; retry later.
STORAGE_FULL = define("storage_full", 503,
                      N_("The service cannot save anything right now. Please try again later."))
INTERNAL = define("internal_error", 500, N_("Something went wrong on our side. Please try again."))


class ApiError(Exception):
    """Raised by handlers; the middleware renders it as JSON or as a page."""

    def __init__(self, kind: ErrorKind, message: str | None = None,
                 details: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(kind.code)
        self.kind = kind
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def invalid(fields: Mapping[str, str]) -> ApiError:
    """``validation_failed`` with its field errors, in the one detail shape."""
    return ApiError(VALIDATION, details={"fields": {str(k): str(v) for k, v in fields.items()}})


def field_errors(exc: ApiError) -> dict[str, str]:
    """The field errors of a refusal (empty for errors that are not about fields)."""
    fields = exc.details.get("fields")
    return dict(fields) if isinstance(fields, dict) else {}


class NotFound(Exception):
    """The thing asked for does not exist (or is not the caller's to know of). Raised on
    purpose by the code that looked: a ``KeyError`` or ``LookupError`` is a bug (500), never a
    404."""

    def __init__(self, kind: ErrorKind = NOT_FOUND, what: str = "") -> None:
        super().__init__(what or kind.code)
        self.kind = kind


E = TypeVar("E", bound=BaseException)
Mapper = Callable[[Any], ApiError]
_MAPPERS: dict[type[BaseException], Mapper] = {}


def maps(exc_type: type[E]) -> Callable[[Callable[[E], ApiError]], Callable[[E], ApiError]]:
    """Register the mapper of a domain exception (and its subclasses without their own);
    mapping one exception type twice raises at import."""

    def register(mapper: Callable[[E], ApiError]) -> Callable[[E], ApiError]:
        if exc_type in _MAPPERS:
            raise DuplicateCode(f"{exc_type.__module__}.{exc_type.__qualname__} mapped twice")
        _MAPPERS[exc_type] = mapper
        return mapper

    return register


def maps_to(exc_type: type[BaseException], kind: ErrorKind) -> None:
    """Map a domain exception to one catalogued error, without details."""
    maps(exc_type)(lambda _exc: ApiError(kind))


def mapped_types() -> tuple[type[BaseException], ...]:
    """The exception types the registry maps (read when an error is being answered: packages
    register theirs at import)."""
    return tuple(_MAPPERS)


def api_error(exc: BaseException) -> ApiError | None:
    """The catalogued error for ``exc``: itself, its registered mapping (the nearest class
    in its hierarchy), or None for an exception nobody mapped, which is a fault (500)."""
    if isinstance(exc, ApiError):
        return exc
    for cls in type(exc).__mro__:
        mapper = _MAPPERS.get(cls)
        if mapper is not None:
            return mapper(exc)
    return None


maps(NotFound)(lambda exc: ApiError(exc.kind))
