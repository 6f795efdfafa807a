"""The patient register: validation, codice fiscale control character, search."""

from __future__ import annotations

from datetime import date

import pytest

from server import centres, patients
from server.demo import demo_codice_fiscale
from server.patients import NewPatient, codice_fiscale_problem, control_character


@pytest.mark.parametrize("cf", ["RSSMRA85T10A562S", "rssmra85t10a562s", "RSSMRA85T10A5N2J"])
def test_valid_codici_fiscali(cf):
    # The third has omocodia (a digit replaced by a letter) with its recomputed control char.
    if cf == "RSSMRA85T10A5N2J":
        cf = cf[:15] + control_character(cf[:15])
    assert codice_fiscale_problem(cf) is None


@pytest.mark.parametrize(("cf", "reason"), [
    ("RSSMRA85T10A562T", "control character"),
    ("RSSMRA85T10A562", "16 letters"),
    ("RSSMRA85Z10A562S", "16 letters"),  # Z is not a month letter
    ("1234567890123456", "16 letters"),
])
def test_invalid_codici_fiscali(cf, reason):
    problem = codice_fiscale_problem(cf)
    assert problem is not None and reason in problem


def test_demo_codici_fiscali_are_valid():
    assert all(codice_fiscale_problem(demo_codice_fiscale(i)) is None for i in range(100))


def test_new_patient_problems_name_the_fields():
    p = NewPatient(given_name="", family_name="X" * 300, date_of_birth=date(1800, 1, 1),
                   phone="call me", email="nope", language="xx", codice_fiscale="BAD")
    assert set(p.problems()) == {"given_name", "family_name", "date_of_birth", "phone", "email",
                                 "language", "codice_fiscale"}


async def test_create_search_and_duplicate(conn):
    await centres.sync(conn, centres.load_data())
    p = await patients.create(conn, NewPatient("Fatima", "El Amrani", date(1950, 3, 4),
                                               language="ar", codice_fiscale="rssmra85t10a562s",
                                               home_centre_id="san-siro"))
    assert p.codice_fiscale == "RSSMRA85T10A562S"
    assert [x.id for x in await patients.search(conn, "amrani")] == [p.id]
    assert [x.id for x in await patients.search(conn, "RSSMRA85T10A562S")] == [p.id]
    assert await patients.search(conn, "%") == []
    with pytest.raises(patients.DuplicatePatient):
        await patients.create(conn, NewPatient("Other", "Person", date(1960, 1, 1),
                                               codice_fiscale="RSSMRA85T10A562S"))


async def test_database_refuses_malformed_codice_fiscale(conn):
    import asyncpg

    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("INSERT INTO patients (given_name, family_name, date_of_birth, "
                           "codice_fiscale) VALUES ('a', 'b', '1970-01-01', 'short')")
