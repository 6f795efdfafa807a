"""Keyset pagination for ``listBookings``: an opaque cursor naming the last booking of a page.

Bookings are listed in (start, id) order; the next page starts strictly after the cursor's
(start, id), so a booking added or cancelled meanwhile neither repeats nor skips another one,
unlike an offset. The cursor only says where to continue: what the caller may see is decided
again on every page.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from server import errors

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR_CHARS = 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(-?[0-9]{1,18}):([0-9]{1,19})")
_B64 = re.compile(r"[A-Za-z0-9_-]{1,64}")


def encode(starts_at: datetime, booking_id: int) -> str:
    micros = (starts_at - EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}:{booking_id}".encode()).decode().rstrip("=")


def decode(value: Any) -> tuple[datetime, int] | None:
    """The (start, id) a cursor continues after; None when absent. A cursor this server did
    not make is a 422 naming the field, never a 500."""
    if value is None:
        return None
    bad = errors.invalid({"cursor": "the next_cursor of a previous page"})
    if not isinstance(value, str) or len(value) > MAX_CURSOR_CHARS \
            or not _B64.fullmatch(value):
        raise bad
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    m = _CURSOR.fullmatch(text)
    if m is None:
        raise bad
    booking_id = int(m.group(2))
    try:
        starts_at = EPOCH + timedelta(microseconds=int(m.group(1)))
    except OverflowError:
        raise bad from None
    if not 1 <= booking_id <= 2**63 - 1 or not 1900 <= starts_at.year <= 2200:
        raise bad
    return starts_at, booking_id


def page(items: list[Any], limit_: int) -> tuple[list[Any], bool]:
    """The page and whether another follows (the query fetched one row more than the limit)."""
    return items[:limit_], len(items) > limit_

