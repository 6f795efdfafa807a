"""Who may read a patient (review findings 2 and 3): desk staff their centres' patients,
clinicians the patients they care for, and a colleague's sensitive booking stays hidden."""

from __future__ import annotations

from datetime import date
from typing import Any

from server.staff import Role
from tests.bookings.conftest import Api, add_patient, future
from tests.conftest import login

CF = "KVLLNO61B43Z138X"


async def stranger(api: Api) -> int:
    """A patient of Mazzini with no booking anywhere (the reviewer's reproduction)."""
    pid = await add_patient(api.world.conn, "Olena", date(1961, 2, 3))
    await api.world.conn.execute(
        "UPDATE patients SET home_centre_id = 'mazzini', codice_fiscale = $2 WHERE id = $1",
        pid, CF)
    return pid


async def test_clinician_does_not_see_a_colleagues_sensitive_booking(api: Api):
    mine = await (await api.post("/api/v1/bookings", api.booking_body(future(hh=9)))).json()
    theirs = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=11), service_code="violence_support",
        clinician_id=api.world.psychologist))).json()
    got = await (await api.get(f"/api/v1/patients/{api.world.patient}", api.gp)).json()
    ids = {b["id"] for b in got["upcoming"] + got["past"]}
    assert ids == {mine["id"]}, "the psychologist's session is not the GP's business"
    assert theirs["id"] not in ids
    desk = await (await api.get(f"/api/v1/patients/{api.world.patient}")).json()
    assert {b["id"] for b in desk["upcoming"]} == {mine["id"], theirs["id"]}


async def test_patient_out_of_scope_is_not_found_through_the_api(api: Api):
    pid = await stranger(api)
    for who in (api.coordinator, api.gp, api.psychologist, api.nurse):
        resp = await api.get(f"/api/v1/patients/{pid}", who)
        assert resp.status == 404, await resp.text()
        found = (await (await api.get("/api/v1/patients", who, q="Olena")).json())["patients"]
        assert pid not in {p["id"] for p in found}
    # The full codice fiscale still finds them, to book a first appointment, without contacts.
    by_cf = (await (await api.get("/api/v1/patients", q=CF.lower())).json())["patients"]
    assert [p["id"] for p in by_cf] == [pid]
    assert by_cf[0]["phone"] is None and by_cf[0]["email"] is None
    assert by_cf[0]["date_of_birth"] == "1961-02-03"


async def test_booking_brings_the_patient_into_scope(api: Api):
    pid = await stranger(api)
    resp = await api.post("/api/v1/bookings", api.booking_body(future(), patient_id=pid))
    assert resp.status == 201
    got = await api.get(f"/api/v1/patients/{pid}", api.gp)
    assert got.status == 200 and (await got.json())["phone"]
    assert (await api.get(f"/api/v1/patients/{pid}", api.psychologist)).status == 404
    found = (await (await api.get("/api/v1/patients", api.gp, q="Olena")).json())["patients"]
    assert [p["id"] for p in found] == [pid] and found[0]["phone"]


async def test_home_centre_staff_see_their_patient(api: Api, make_staff: Any):
    pid = await stranger(api)
    mazzini = await make_staff(Role.COORDINATOR, ("mazzini",))
    assert (await login(api.client, mazzini.email)).status == 303
    assert (await api.client.get(f"/api/v1/patients/{pid}")).status == 200
    assert (await api.client.get(f"/bookings/patients/{pid}")).status == 200
    html = await (await api.client.get("/bookings/patients?q=Olena")).text()
    assert f"/bookings/patients/{pid}" in html


async def test_patient_pages_out_of_scope(api: Api, make_staff: Any):
    pid = await stranger(api)
    gp = await make_staff(Role.GP, ("gratosoglio",))
    assert (await login(api.client, gp.email)).status == 303
    page = await api.client.get(f"/bookings/patients/{pid}")
    assert page.status == 404 and "Olena" not in await page.text()
    html = await (await api.client.get("/bookings/patients?q=Olena")).text()
    assert "Rossi" not in html and "03/02/1961" not in html
    html = await (await api.client.get(f"/bookings/patients?q={CF}")).text()
    assert "Olena Rossi" not in html and "Rossi" in html and "03/02/1961" in html
    assert f"/bookings/patients/{pid}" not in html
    assert f"/bookings/new?patient={pid}" in html and "1234567" not in html
