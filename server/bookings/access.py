"""Who may call the API, and what each role may see and change.

An API call is authenticated either by the staff session (the browser pages use the API too)
or by an ``Authorization: Bearer`` token; CSRF is skipped by the foundation for the latter.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from server import errors
from server.bookings import tokens
from server.bookings.bookings import Booking
from server.bookings.errors import BAD_TOKEN
from server.keys import POOL, STAFF
from server.staff import Role, Staff

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_STAFF = web.RequestKey("bookings_api_staff", Staff)
# Admins run the system, not the calendars: they see no patient data.
CARE_ROLES = (Role.COORDINATOR, Role.GP, Role.PSYCHOLOGIST, Role.NURSE)
# Roles that book for anybody at their centres; clinicians book only in their own calendar.
DESK_ROLES = frozenset({Role.COORDINATOR, Role.NURSE})


async def authenticate(request: web.Request) -> Staff:
    """The caller: the session's staff member, or the owner of a valid bearer token."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        found = await tokens.staff_for_token(request.app[POOL], header[7:].strip())
        if found is None:
            raise errors.ApiError(BAD_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        return found
    user: Staff | None = request.get(STAFF)
    if user is None or user.needs_totp_enrolment:
        raise errors.ApiError(errors.UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    return user


def api(*roles: Role) -> Callable[[Handler], Handler]:
    """Guard an API handler: authenticated staff with one of ``roles`` (default: care roles)."""
    allowed = roles or CARE_ROLES

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = await authenticate(request)
            if user.role not in allowed:
                raise errors.ApiError(errors.FORBIDDEN)
            request[API_STAFF] = user
            return await handler(request)

        return guarded

    return wrap


def caller(request: web.Request) -> Staff:
    return request[API_STAFF]


def can_see(user: Staff, b: Booking) -> bool:
    """Desk staff see their centres' bookings; clinicians their own and the ones they join."""
    if user.role in DESK_ROLES and b.centre_id in user.centres:
        return True
    return user.id in (b.clinician_id, b.nurse_id)


def can_book(user: Staff, centre_id: str, clinician_id: int) -> bool:
    """Desk staff book at their centres; a clinician only in their own calendar."""
    if centre_id not in user.centres:
        return False
    return user.role in DESK_ROLES or user.id == clinician_id
