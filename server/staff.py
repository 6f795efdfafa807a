"""Staff accounts: who they are, their role and the centres where they work."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg

from server.auth.passwords import check_strength, hash_password
from server.text import name_problem


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    GP = "gp"
    PSYCHOLOGIST = "psychologist"
    NURSE = "nurse"

    @property
    def clinical(self) -> bool:
        return self in (Role.GP, Role.PSYCHOLOGIST, Role.NURSE)


# Admins hold the keys to every account: a stolen password alone must not be enough.
ROLES_REQUIRING_TOTP = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class Staff:
    id: int
    email: str
    full_name: str
    role: Role
    language: str
    totp_enabled: bool
    centres: tuple[str, ...] = field(default=())

    @property
    def needs_totp_enrolment(self) -> bool:
        return self.role in ROLES_REQUIRING_TOTP and not self.totp_enabled


class DuplicateEmail(ValueError):
    pass


SELECT_STAFF = """
SELECT s.id, s.email, s.full_name, s.role::text AS role, s.language,
       s.totp_secret IS NOT NULL AS totp_enabled,
       coalesce(array_agg(sc.centre_id ORDER BY sc.centre_id)
                FILTER (WHERE sc.centre_id IS NOT NULL), '{}') AS centres
FROM staff s LEFT JOIN staff_centres sc ON sc.staff_id = s.id
"""
GET_BY_ID = SELECT_STAFF + " WHERE s.id = $1 AND s.active GROUP BY s.id"
GET_BY_EMAIL = SELECT_STAFF + " WHERE lower(s.email) = lower($1) AND s.active GROUP BY s.id"
LIST_ALL = SELECT_STAFF + " WHERE s.active GROUP BY s.id ORDER BY s.role, s.full_name"


def from_row(r: asyncpg.Record) -> Staff:
    """A Staff from a row with SELECT_STAFF's columns."""
    return Staff(r["id"], r["email"], r["full_name"], Role(r["role"]), r["language"],
                 r["totp_enabled"], tuple(r["centres"]))


async def get(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> Staff | None:
    r = await conn.fetchrow(GET_BY_ID, staff_id)
    return from_row(r) if r else None


async def get_by_email(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> Staff | None:
    r = await conn.fetchrow(GET_BY_EMAIL, email)
    return from_row(r) if r else None


async def list_all(conn: asyncpg.Connection | asyncpg.Pool) -> list[Staff]:
    return [from_row(r) for r in await conn.fetch(LIST_ALL)]


GET_PASSWORD_HASH = "SELECT id, password_hash FROM staff WHERE lower(email) = lower($1) AND active"


async def password_hash_for(conn: asyncpg.Connection | asyncpg.Pool,
                            email: str) -> tuple[int, str] | None:
    r = await conn.fetchrow(GET_PASSWORD_HASH, email)
    return (r["id"], r["password_hash"]) if r else None


INSERT_STAFF = """
INSERT INTO staff (email, full_name, role, password_hash, language)
VALUES ($1, $2, $3::staff_role, $4, $5) RETURNING id
"""
INSERT_STAFF_CENTRE = "INSERT INTO staff_centres (staff_id, centre_id) VALUES ($1, $2)"


async def create(conn: asyncpg.Connection, *, email: str, full_name: str, role: Role,
                 password: str, language: str = "it", centres: tuple[str, ...] = (),
                 password_hash: str | None = None) -> int:
    """Create an account; the caller owns the transaction. ``password_hash`` lets bulk
    seeding reuse one hash instead of paying Argon2 per account."""
    if "@" not in email or len(email) > 254:
        raise ValueError("e-mail address is not valid")
    problem = name_problem(full_name)
    if problem or not 1 <= len(full_name.strip()) <= 200:
        raise ValueError(f"full_name {problem or 'must be 1 to 200 characters'}")
    if password_hash is None:
        check_strength(password)
        password_hash = hash_password(password)
    try:
        staff_id: int = await conn.fetchval(INSERT_STAFF, email.strip(), full_name.strip(),
                                            role.value, password_hash, language)
    except asyncpg.UniqueViolationError:
        raise DuplicateEmail(f"an account with e-mail {email} already exists") from None
    for centre in centres:
        await conn.execute(INSERT_STAFF_CENTRE, staff_id, centre)
    return staff_id


SET_TOTP = "UPDATE staff SET totp_secret = $2, totp_last_step = NULL WHERE id = $1"
GET_TOTP = "SELECT totp_secret, totp_last_step FROM staff WHERE id = $1"
# Only moves forward: two concurrent logins with the same code cannot both succeed.
ADVANCE_TOTP_STEP = """
UPDATE staff SET totp_last_step = $2
WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)
"""
SET_LANGUAGE = "UPDATE staff SET language = $2 WHERE id = $1"


async def set_totp(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                   sealed: bytes | None) -> None:
    await conn.execute(SET_TOTP, staff_id, sealed)


async def get_totp(conn: asyncpg.Connection | asyncpg.Pool,
                   staff_id: int) -> tuple[bytes | None, int | None]:
    r = await conn.fetchrow(GET_TOTP, staff_id)
    return (r["totp_secret"], r["totp_last_step"]) if r else (None, None)


async def advance_totp_step(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                            step: int) -> bool:
    return str(await conn.execute(ADVANCE_TOTP_STEP, staff_id, step)) == "UPDATE 1"


async def set_language(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int, lang: str) -> None:
    await conn.execute(SET_LANGUAGE, staff_id, lang)
