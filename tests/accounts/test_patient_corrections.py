"""The staff patient page shows the patient number (the one the erase form and the audit
search ask for) and takes corrections of name, phone, e-mail and language from whoever may see
the patient: validated, audited with the fields' names only."""

from __future__ import annotations

from typing import Any

import asyncpg

from server import patients
from server.staff import Role
from tests.conftest import csrf_token, post_refused
from tests.records.conftest import login_as

GOOD = {"given_name": "Olena", "family_name": "Kovalenko", "phone": "+39 333 123 4567",
        "email": "olena@example.org", "language": "uk"}


async def corrections(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT actor_staff_id, patient_id, detail::text AS detail "
                            "FROM audit_log WHERE action = 'patient_corrected' ORDER BY id"))


async def test_staff_who_see_the_patient_correct_and_it_is_audited(client, make_staff,
                                                                   make_patient, db_url, conn):
    pid = await make_patient("san-siro")
    nurse = await make_staff(Role.NURSE, ("san-siro",))
    await login_as(client, nurse, db_url)
    path = f"/bookings/patients/{pid}"
    page = await client.get(path)
    html = await page.text()
    assert page.status == 200 and f'id="patient-number">{pid}<' in html
    token = await csrf_token(client, path)
    resp = await client.post(path, data={**GOOD, "csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == path
    shown = await (await client.get(path)).text()
    assert 'data-changed="given_name family_name phone email language"' in shown
    assert "Kovalenko" in shown
    p = await patients.get(conn, pid)
    assert p is not None and (p.given_name, p.family_name, p.phone, p.email, p.language) == (
        "Olena", "Kovalenko", "+39 333 123 4567", "olena@example.org", "uk")
    [entry] = await corrections(conn)
    assert entry["actor_staff_id"] == nurse.id and entry["patient_id"] == pid
    assert entry["detail"] == ('{"fields": ["given_name", "family_name", "phone", "email", '
                               '"language"]}')
    for value in GOOD.values():
        assert value not in entry["detail"] or value == "uk"
    # The same again changes nothing and writes nothing.
    await client.post(path, data={**GOOD, "csrf_token": token}, allow_redirects=False)
    assert 'data-changed="">' in await (await client.get(path)).text()
    assert len(await corrections(conn)) == 1
    # Emptying phone and e-mail is a correction too.
    await client.post(path, data={**GOOD, "phone": "", "email": "", "csrf_token": token},
                      allow_redirects=False)
    p = await patients.get(conn, pid)
    assert p is not None and p.phone is None and p.email is None
    assert (await corrections(conn))[-1]["detail"] == '{"fields": ["phone", "email"]}'


async def test_corrections_are_validated_with_the_fields_named(client, make_staff, make_patient,
                                                               db_url, conn):
    pid = await make_patient("san-siro")
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    await login_as(client, coordinator, db_url)
    path = f"/bookings/patients/{pid}"
    token = await csrf_token(client, path)
    for field, bad in (("phone", "call me"), ("phone", "12"), ("email", "olena@"),
                       ("language", "xx"), ("given_name", ""), ("given_name", "Ol\u202eena"),
                       ("family_name", "Ko\x00"), ("family_name", "K" * 201)):
        refused = await post_refused(client, path, {**GOOD, field: bad, "csrf_token": token},
                                     typed=(bad,) if len(bad) > 3 else ())
        assert refused.status == 422, (field, bad)
        assert f'href="#fix-{field}"' in refused.html, (field, bad)
        assert f'id="fix-{field}"' in refused.html
    p = await patients.get(conn, pid)
    assert p is not None and p.given_name.startswith("Test")
    assert await corrections(conn) == []


async def test_who_may_not_see_the_patient_cannot_correct(client, make_staff, make_patient,
                                                         db_url, conn):
    pid = await make_patient("san-siro")
    path = f"/bookings/patients/{pid}"
    before = await patients.get(conn, pid)
    strangers: list[Any] = [await make_staff(role, ("gratosoglio",)) for role in
                            (Role.COORDINATOR, Role.GP, Role.NURSE, Role.PSYCHOLOGIST)]
    for who in [*strangers, await make_staff(Role.ADMIN, ())]:
        await login_as(client, who, db_url)
        expected = 403 if who.role is Role.ADMIN else 404
        assert (await client.get(path)).status == expected, who.role
        token = await csrf_token(client, "/home")
        resp = await client.post(path, data={**GOOD, "csrf_token": token},
                                 allow_redirects=False)
        assert resp.status == 303
        assert (await client.get(resp.headers["Location"])).status == expected, who.role
        client.session.cookie_jar.clear()
    assert await patients.get(conn, pid) == before
    assert await corrections(conn) == []
