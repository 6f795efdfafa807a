"""The patient register. Patients have no passwords: they join through per-consultation links
and codes issued with their bookings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import asyncpg

from server.consultations.languages import SPOKEN_LANGUAGES
from server.text import name_problem

# Values of a character in an odd (1st, 3rd, ...) position of a codice fiscale (DM 23/12/1976).
_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18,
                 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23], strict=True))
_EVEN = {**{str(d): d for d in range(10)}, **{chr(65 + i): i for i in range(26)}}
# Digits may be replaced by these letters when two people would share a code (omocodia).
_DIGITS = "[0-9LMNPQRSTUV]"
_CF_SHAPE = re.compile(
    rf"^[A-Z]{{6}}{_DIGITS}{{2}}[A-EHLMPRST]{_DIGITS}{{2}}[A-Z]{_DIGITS}{{3}}[A-Z]$"
)


def control_character(body: str) -> str:
    """The 16th character of a codice fiscale whose first 15 are ``body`` (upper case)."""
    total = sum(_ODD[c] if i % 2 == 0 else _EVEN[c] for i, c in enumerate(body))
    return chr(65 + total % 26)


def codice_fiscale_problem(value: str) -> str | None:
    """None when ``value`` is a well-formed codice fiscale with the right control character;
    otherwise a short reason."""
    cf = value.strip().upper()
    if len(cf) != 16 or not _CF_SHAPE.match(cf):
        return "codice fiscale must be 16 letters and digits in the official pattern"
    if control_character(cf[:15]) != cf[15]:
        return "codice fiscale control character does not match"
    return None


@dataclass(frozen=True)
class Patient:
    id: int
    given_name: str
    family_name: str
    date_of_birth: date
    phone: str | None
    email: str | None
    language: str
    codice_fiscale: str | None
    home_centre_id: str | None

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class NewPatient:
    given_name: str
    family_name: str
    date_of_birth: date
    phone: str | None = None
    email: str | None = None
    language: str = "it"
    codice_fiscale: str | None = None
    home_centre_id: str | None = None

    def problems(self) -> dict[str, str]:
        """Field name -> reason, empty when valid."""
        out: dict[str, str] = {}
        for field, value in (("given_name", self.given_name), ("family_name", self.family_name)):
            problem = name_problem(value)
            if not 1 <= len(value.strip()) <= 200:
                out[field] = "required, at most 200 characters"
            elif problem:
                out[field] = problem
        if not date(1900, 1, 2) <= self.date_of_birth <= date.today():
            out["date_of_birth"] = "must be a real past date"
        if self.phone and not re.fullmatch(r"\+?[0-9 ]{6,20}", self.phone):
            out["phone"] = "digits and spaces, optionally starting with +"
        if self.email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.email):
            out["email"] = "not an e-mail address"
        if self.language not in SPOKEN_LANGUAGES:
            out["language"] = "unsupported language"
        if self.codice_fiscale:
            problem = codice_fiscale_problem(self.codice_fiscale)
            if problem:
                out["codice_fiscale"] = problem
        return out


class DuplicatePatient(ValueError):
    pass


COLUMNS = ("id, given_name, family_name, date_of_birth, phone, email, language, codice_fiscale,"
           " home_centre_id")
INSERT = f"""
INSERT INTO patients (given_name, family_name, date_of_birth, phone, email, language,
                      codice_fiscale, home_centre_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}
"""
GET = f"SELECT {COLUMNS} FROM patients WHERE id = $1"
SEARCH = f"""
SELECT {COLUMNS} FROM patients
WHERE lower(family_name || ' ' || given_name) LIKE '%' || lower($1) || '%'
   OR lower(given_name || ' ' || family_name) LIKE '%' || lower($1) || '%'
   OR codice_fiscale = upper($1)
ORDER BY family_name, given_name LIMIT $2
"""


def _row(r: asyncpg.Record) -> Patient:
    return Patient(**dict(r))


async def create(conn: asyncpg.Connection | asyncpg.Pool, p: NewPatient) -> Patient:
    problems = p.problems()
    if problems:
        raise ValueError(problems)
    try:
        r = await conn.fetchrow(INSERT, p.given_name.strip(), p.family_name.strip(),
                                p.date_of_birth, p.phone or None, p.email or None, p.language,
                                p.codice_fiscale.strip().upper() if p.codice_fiscale else None,
                                p.home_centre_id)
    except asyncpg.UniqueViolationError:
        raise DuplicatePatient("a patient with this codice fiscale is already registered") from None
    return _row(r)


async def get(conn: asyncpg.Connection | asyncpg.Pool, patient_id: int) -> Patient | None:
    r = await conn.fetchrow(GET, patient_id)
    return _row(r) if r else None


async def search(conn: asyncpg.Connection | asyncpg.Pool, text: str,
                 limit: int = 20) -> list[Patient]:
    # LIKE wildcards typed by the user are taken literally.
    cleaned = text.strip().replace("\\", "").replace("%", "").replace("_", "")
    if len(cleaned) < 2:
        return []
    return [_row(r) for r in await conn.fetch(SEARCH, cleaned, limit)]


# What staff may correct on the patient's page; date of birth and codice fiscale are identity
# (they open the join code and find the patient) and are not corrected here.
CORRECTABLE = ("given_name", "family_name", "phone", "email", "language")
CORRECT = """
UPDATE patients SET given_name = $2, family_name = $3, phone = $4, email = $5, language = $6
WHERE id = $1
"""


def correction_problems(p: Patient, values: dict[str, str]) -> dict[str, str]:
    """Field name -> reason for the corrected ``values`` of ``p`` (the rules of a new
    patient), empty when valid."""
    merged = {f: values.get(f, "") for f in CORRECTABLE}
    problems = NewPatient(given_name=merged["given_name"], family_name=merged["family_name"],
                          date_of_birth=p.date_of_birth, phone=merged["phone"] or None,
                          email=merged["email"] or None,
                          language=merged["language"]).problems()
    return {f: why for f, why in problems.items() if f in CORRECTABLE}


async def correct(conn: asyncpg.Connection, p: Patient, values: dict[str, str]) -> list[str]:
    """Write the corrections of ``p`` (already validated by ``correction_problems``); the
    names of the fields that changed."""
    new = {"given_name": values["given_name"].strip(),
           "family_name": values["family_name"].strip(),
           "phone": values["phone"].strip() or None, "email": values["email"].strip() or None,
           "language": values["language"]}
    changed = [f for f in CORRECTABLE if getattr(p, f) != new[f]]
    if changed:
        await conn.execute(CORRECT, p.id, new["given_name"], new["family_name"], new["phone"],
                           new["email"], new["language"])
    return changed
