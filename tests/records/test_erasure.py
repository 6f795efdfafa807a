"""A patient's request: an admin erases every note about them (page and API)."""

from __future__ import annotations

import re

from records import content
from records.access import Category
from server.staff import Role
from tests.conftest import csrf_token, post_refused
from tests.records.conftest import api_headers, login_as


async def test_admin_erases_a_patients_notes_on_request(client, conn, rec, make_staff,
                                                        make_patient, make_booking, db_url):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient, other = await make_patient("san-siro"), await make_patient("san-siro")
    for p in (patient, patient, other):
        n = await rec.create(conn, gp, booking_id=await make_booking(p, gp.id), patient_id=p,
                             category=Category.GP, content=content.parse({"text": "x"}))
        await rec.sign(conn, gp, n.id)

    await login_as(client, gp, db_url)
    h = await api_headers(client)
    resp = await client.post(f"/api/v1/records/patients/{patient}/erase", headers=h,
                             json={"reason": "patient_request"})
    assert resp.status == 403
    assert (await client.get("/admin/records/erase")).status == 403
    await client.post("/logout", headers=h)
    client.session.cookie_jar.clear()

    admin = await make_staff(Role.ADMIN, ("san-siro",))
    await login_as(client, admin, db_url)
    token = await csrf_token(client, "/admin/records/erase")
    refused = await post_refused(client, "/admin/records/erase",
                                 {"patient": str(patient), "csrf_token": token})
    assert refused.status == 422 and 'role="alert"' in refused.html  # not confirmed
    resp = await client.post("/admin/records/erase", data={"patient": str(patient),
                                                           "confirm": "yes",
                                                           "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/records/erase"
    # The confirmation, on the page it leads to, names the count: "2 note(s) of ..." /
    # "2 nota/e di ...".
    shown = await client.get("/admin/records/erase")
    html = await shown.text()
    assert shown.status == 200 and re.search(r'role="status">2 (note\(s\) of|nota/e di) ', html)
    # Once: a reload shows the plain form.
    again = await client.get("/admin/records/erase")
    assert again.status == 200 and 'role="status"' not in await again.text()
    left = {r["patient_id"] for r in await conn.fetch(
        "SELECT n.patient_id FROM notes n JOIN note_versions v ON v.note_id = n.id "
        "WHERE v.wrapped_key IS NOT NULL")}
    assert left == {other}
    h = await api_headers(client)
    resp = await client.post(f"/api/v1/records/patients/{other}/erase", headers=h,
                             json={"reason": "because"})
    assert resp.status == 422
    resp = await client.post(f"/api/v1/records/patients/{other}/erase", headers=h,
                             json={"reason": "patient_request"})
    assert resp.status == 200 and len((await resp.json())["erased"]) == 1
    rows = await conn.fetch("SELECT actor_staff_id, patient_id FROM audit_log "
                            "WHERE action = 'erasure'")
    assert len(rows) == 3 and {r["actor_staff_id"] for r in rows} == {admin.id}
