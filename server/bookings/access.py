"""Who may call the API, and what each role may see and change.

An API call is authenticated either by the staff session (the browser pages use the API too)
or by an ``Authorization: Bearer`` token; CSRF is skipped by the foundation for the latter.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol

import asyncpg
from aiohttp import web

from records import audit
from server import errors, patients, staff_quota
from server.bookings import tokens
from server.bookings.errors import BAD_TOKEN
from server.consultations import care
from server.consultations.care import DESK_ROLES
from server.keys import ACTOR_STAFF_ID, POOL, STAFF
from server.patients import Patient
from server.staff import Role, Staff

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_STAFF = web.RequestKey("bookings_api_staff", Staff)
# Admins run the system, not the calendars: they see no patient data.
CARE_ROLES = (Role.COORDINATOR, Role.GP, Role.PSYCHOLOGIST, Role.NURSE)


async def authenticate(request: web.Request) -> Staff:
    """The caller: the session's staff member, or the owner of a valid bearer token."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        token = header[7:].strip()
        found = await tokens.staff_for_token(request.app[POOL], token)
        if found is None:
            raise errors.ApiError(BAD_TOKEN, headers={"WWW-Authenticate": "Bearer"})
        request[ACTOR_STAFF_ID] = found.id  # for the request log and refusal audit
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


class BookingLike(Protocol):
    """What ``can_see`` needs: a ``Booking`` or a page's ``views.Row``."""

    @property
    def centre_id(self) -> str: ...
    @property
    def clinician_id(self) -> int: ...
    @property
    def nurse_id(self) -> int | None: ...


def can_see(user: Staff, b: BookingLike) -> bool:
    """Desk staff see their centres' bookings; clinicians their own and the ones they join."""
    if user.role in DESK_ROLES and b.centre_id in user.centres:
        return True
    return user.id in (b.clinician_id, b.nurse_id)


def can_book(user: Staff, centre_id: str, clinician_id: int) -> bool:
    """Desk staff book at their centres; a clinician only in their own calendar."""
    if centre_id not in user.centres:
        return False
    return user.role in DESK_ROLES or user.id == clinician_id


# Whose identity a caller may read (review finding 3): the scope of the consultation core's
# care rule (``server.consultations.care.scope_sql``). Parameters: $2 caller id, $3 caller's
# centres, $4 desk (``care.scope_args``).
SCOPE = care.scope_sql("$2", "$3", "$4", "p.id")
# The foundation's matching (server/patients.py), limited to the caller's scope; a full
# codice fiscale also finds a patient out of scope (see ``search_patients``).
SEARCH = f"""
SELECT {", ".join("p." + c.strip() for c in patients.COLUMNS.split(","))},
       {SCOPE} AS in_scope
FROM patients p
WHERE (lower(p.family_name || ' ' || p.given_name) LIKE '%' || lower($1) || '%'
       OR lower(p.given_name || ' ' || p.family_name) LIKE '%' || lower($1) || '%'
       OR p.codice_fiscale = upper($1))
  AND ({SCOPE} OR p.codice_fiscale = upper($1))
ORDER BY p.family_name, p.given_name LIMIT $5
"""


def patient_pick(secret_key: str, user: Staff, patient_id: int) -> str:
    """Proof, for the booking form, that ``user`` found this patient legitimately: in their
    scope, by the full codice fiscale, or by registering them. Bound to the user and the
    patient; it lets the form show the name and date of birth and book, nothing more."""
    msg = f"casa-booking-pick:{user.id}:{patient_id}".encode()
    return hmac.new(secret_key.encode(), msg, hashlib.sha256).hexdigest()[:32]


def valid_pick(secret_key: str, user: Staff, patient_id: int, pick: object) -> bool:
    return isinstance(pick, str) and hmac.compare_digest(
        pick.encode(), patient_pick(secret_key, user, patient_id).encode())


async def may_see_patient(conn: asyncpg.Connection | asyncpg.Pool, user: Staff,
                          patient_id: int) -> bool:
    """Whether ``user`` may read this patient's identity and bookings."""
    return await care.in_scope(conn, user, patient_id)


# A search by full codice fiscale tells its author that the person is a patient here (and her
# name and date of birth): each is audited as an access, and each staff member may make only
# this many per window, counted atomically in PostgreSQL (``server.staff_quota``).
CF_SEARCHES_PER_WINDOW = 30
CF_SEARCH_WINDOW = timedelta(hours=1)
CF_QUOTA = "cf_search"


def _is_codice_fiscale(text: str) -> bool:
    # Its shape, not its control character: a register imported with a mistyped code would
    # otherwise be searched without limit.
    return len(text) == 16 and text.isascii() and text.isalnum()


async def search_patients(conn: asyncpg.Connection | asyncpg.Pool, user: Staff, query: str,
                          limit: int) -> list[tuple[Patient, bool]]:
    """Patients matching ``query`` that ``user`` may find, each with whether its details are
    in scope. A search by the full codice fiscale finds a patient out of scope too (False):
    whoever has it has the patient or their card in front of them, e.g. to book a first
    appointment; such a match is shown with name and date of birth only. Every search by
    codice fiscale is audited (``patient_search``, one row per match or one without patient)
    and limited per staff member; over the limit it raises ``RATE_LIMITED``."""
    cleaned = query.replace("\x00", "").strip().replace("\\", "").replace("%", "")
    cleaned = cleaned.replace("_", "")
    if len(cleaned) < 2:
        return []
    if not _is_codice_fiscale(cleaned):
        rows = await conn.fetch(SEARCH, cleaned, *care.scope_args(user), limit)
        return [_found(r) for r in rows]
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as one:
            return await _search_by_codice_fiscale(one, user, cleaned, limit)
    return await _search_by_codice_fiscale(conn, user, cleaned, limit)


def _found(r: asyncpg.Record) -> tuple[Patient, bool]:
    return Patient(**{k: v for k, v in dict(r).items() if k != "in_scope"}), r["in_scope"]


async def _search_by_codice_fiscale(conn: asyncpg.Connection, user: Staff, cf: str,
                                    limit: int) -> list[tuple[Patient, bool]]:
    # Counted in its own statement, before the search and whatever becomes of it: a refused
    # or failed search still uses the budget.
    used = await staff_quota.take(conn, user.id, CF_QUOTA, CF_SEARCH_WINDOW)
    if used > CF_SEARCHES_PER_WINDOW:
        raise errors.ApiError(errors.RATE_LIMITED, headers={
            "Retry-After": str(int(CF_SEARCH_WINDOW.total_seconds()))})
    async with conn.transaction():
        found = [_found(r) for r in await conn.fetch(SEARCH, cf, *care.scope_args(user), limit)]
        hits: list[tuple[int | None, bool]] = [(p.id, ok) for p, ok in found] or [(None, False)]
        for patient_id, in_scope in hits:
            await audit.append(conn, action="patient_search", actor_staff_id=user.id,
                               actor_kind="staff", patient_id=patient_id, booking_id=None,
                               detail={"by": "codice_fiscale", "found": patient_id is not None,
                                       "in_scope": in_scope})
    return found
