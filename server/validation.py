"""HTTP input decoded by msgspec Structs, the library the signalling wire uses too: a body or a
query either becomes its Struct or is refused as a catalogued error.

A body that is not JSON, or not a JSON object, is ``bad_request`` (400); a field of the wrong
type, out of range or missing is ``validation_failed`` (422) with the one detail shape of
``server.errors``: ``{"fields": {path: message}}``, where ``path`` names the field as sent
(``starts_at``, ``content.measurements.spo2``). msgspec's messages say what was expected and
never repeat the value sent. The same Structs describe the API (``server.openapi``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Hashable
from datetime import date, datetime
from typing import Annotated, TypeVar, cast

import msgspec
import msgspec.inspect
from aiohttp import web

from server import errors

T = TypeVar("T")

MAX_ID = 2**63 - 1
# A database id: bigint, positive.
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
# An instant with its offset (``2026-03-02T10:00:00+01:00``); callers bound the years.
Instant = Annotated[datetime, msgspec.Meta(
    tz=True, description="ISO 8601 with offset; shown in Europe/Rome")]
# Not blank and without NUL (PostgreSQL refuses NUL in text): the pattern says both, and
# needs no look-ahead, which not every client's regex engine has.
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


def text(max_len: int, min_len: int = 1) -> object:
    """Constraints of a text field: ``min_len`` to ``max_len`` characters, not blank."""
    return msgspec.Meta(min_length=min_len, max_length=max_len, pattern=NOT_BLANK)


Text200 = Annotated[str, text(200)]

_MISSING = re.compile(r"Object missing required field `([^`]+)`")


def field_errors(exc: msgspec.ValidationError) -> dict[str, str]:
    """msgspec's ``message - at `$.path``` as ``{path: message}``."""
    message, sep, where = str(exc).partition(" - at `")
    path = where.rstrip("`").removeprefix("$") if sep else ""
    missing = _MISSING.fullmatch(message)
    if missing is not None:
        path = f"{path}.{missing.group(1)}"
        message = "required"
    return {path.removeprefix(".") or "body": message}


def _refused(exc: msgspec.ValidationError) -> errors.ApiError:
    fields = field_errors(exc)
    if list(fields) == ["body"] and str(exc).startswith("Expected `object`"):
        return errors.ApiError(errors.BAD_REQUEST, details={"reason": "body must be an object"})
    return errors.invalid(fields)


def decode(raw: bytes | str, type_: type[T]) -> T:
    """``raw`` JSON as ``type_``, or the catalogued refusal."""
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise _refused(exc) from None
    except msgspec.DecodeError:
        raise errors.ApiError(errors.BAD_REQUEST, details={"reason": "body is not JSON"}) from None


async def body(request: web.Request, type_: type[T]) -> T:
    """The request's JSON body as ``type_``."""
    return decode(await request.read(), type_)


def convert(value: object, type_: type[T]) -> T:
    """Already-parsed input (a form, path parameters) as ``type_``: text becomes numbers and
    dates where the type says so."""
    try:
        return msgspec.convert(value, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise _refused(exc) from None


@functools.cache
def _whole_numbers(type_: Hashable) -> frozenset[str]:
    """The fields of a query Struct that hold whole numbers."""
    info = msgspec.inspect.type_info(type_)
    assert isinstance(info, msgspec.inspect.StructType)
    out = set()
    for f in info.fields:
        kinds = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        if any(isinstance(k.type if isinstance(k, msgspec.inspect.Metadata) else k,
                          msgspec.inspect.IntType) for k in kinds):
            out.add(f.encode_name)
    return frozenset(out)


def query(request: web.Request, type_: type[T]) -> T:
    """The query string as ``type_`` (the first of a repeated parameter counts). An empty
    value is a value: ``?day=`` is no date, refused, not "every day". A whole number is
    written in ASCII digits only (msgspec alone would read ``1e2``, ``+5`` or ``５``)."""
    first: dict[str, str] = {}
    for key, value in request.query.items():
        first.setdefault(key, value)
    for name in _whole_numbers(cast(Hashable, type_)):
        number = first.get(name)
        if number is not None and not (number.isascii() and number.isdigit()
                                       and len(number) < 20):
            raise errors.invalid({name: "a whole number"})
    return convert(first, type_)


def an_id(raw: object, name: str) -> int:
    """A database id written as text (a path parameter, a form field), 422 naming ``name``
    unless it is ASCII digits within a bigint."""
    text = raw if isinstance(raw, str) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 19 \
            or not 1 <= int(text) <= MAX_ID:
        raise errors.invalid({name: "a positive whole number"})
    return int(text)


def path_id(request: web.Request, name: str) -> int:
    """A numeric path parameter, 422 naming it when it is not an id."""
    return an_id(request.match_info[name], name)


def years(value: datetime | date | None, field: str, lo: int, hi: int) -> None:
    """Refuse a date outside ``lo``..``hi`` (a year 9999 is a typing mistake, and past
    PostgreSQL's range arithmetic)."""
    if value is not None and not lo <= value.year <= hi:
        raise errors.invalid({field: f"years {lo}-{hi}"})
