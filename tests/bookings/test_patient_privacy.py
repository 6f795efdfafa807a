"""Who may read a patient (review findings 2 and 3): desk staff their centres' patients,
clinicians the patients they care for, and a colleague's sensitive booking stays hidden."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from server import staff as staff_store
from server.bookings.access import patient_pick
from server.staff import Role
from tests.bookings.conftest import Api, add_patient, future
from tests.conftest import SECRET_KEY, login, post_refused

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


async def test_a_stranger_is_booked_only_with_a_pick_then_comes_into_scope(api: Api):
    pid = await stranger(api)
    # Booking by a guessed id would make the GP someone who cares for the patient: refused,
    # with the same answer as for a patient who does not exist.
    body = api.booking_body(future(), patient_id=pid)
    guessed = await api.post("/api/v1/bookings", body)
    assert guessed.status == 404
    assert (await guessed.json())["error"]["code"] == "patient_not_found"
    for wrong in ("0" * 32, "", "x" * 64):
        assert (await api.post("/api/v1/bookings", {**body, "patient_pick": wrong})).status in (
            404, 422)
    # Another user's pick does not work either.
    gp = await staff_store.get(api.world.conn, api.world.gp)
    assert gp is not None
    theirs = patient_pick(SECRET_KEY, gp, pid)
    assert (await api.post("/api/v1/bookings", {**body, "patient_pick": theirs})).status == 404
    # Found by the full codice fiscale, the coordinator's own pick books them.
    coordinator = await staff_store.get(api.world.conn, api.world.coordinator)
    assert coordinator is not None
    pick = patient_pick(SECRET_KEY, coordinator, pid)
    resp = await api.post("/api/v1/bookings", {**body, "patient_pick": pick})
    assert resp.status == 201
    # Booked, the GP does not care for them yet: only once the patient came (the desk
    # checks them in) does the GP see their details (``server.consultations.care``).
    assert (await api.get(f"/api/v1/patients/{pid}", api.gp)).status == 404
    booking = (await resp.json())["id"]
    assert (await api.post(f"/api/v1/bookings/{booking}/status",
                           {"status": "checked-in"})).status == 200
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


async def _as(api: Api, make_staff: Any, role: Role, centres: tuple[str, ...]) -> Any:
    who = await make_staff(role, centres)
    assert (await login(api.client, who.email)).status == 303
    return who


async def test_booking_form_search_finds_only_the_callers_patients(api: Api, make_staff: Any):
    pid = await stranger(api)
    for role in (Role.GP, Role.NURSE, Role.COORDINATOR):
        await _as(api, make_staff, role, ("gratosoglio",))
        html = await (await api.client.get("/bookings/new?q=Olena")).text()
        assert "Rossi" not in html and "03/02/1961" not in html, role
        assert f"patient={pid}" not in html, role
    # Mazzini's desk finds its home-centre patient by name.
    await _as(api, make_staff, Role.NURSE, ("mazzini",))
    html = await (await api.client.get("/bookings/new?q=Olena")).text()
    assert f"/bookings/new?patient={pid}&amp;pick=" in html


async def test_booking_form_does_not_show_a_patient_out_of_scope_by_id(api: Api, make_staff: Any):
    pid = await stranger(api)
    await _as(api, make_staff, Role.GP, ("gratosoglio",))
    for path in (f"/bookings/new?patient={pid}",
                 f"/bookings/new?patient={pid}&centre=gratosoglio&service=gp_visit",
                 f"/bookings/new?patient={pid}&pick=" + "0" * 32,
                 f"/bookings/new?patient={pid}&pick=%00%ff",
                 f"/bookings/new?patient={pid}&pick=" + "a" * 5000):
        page = await api.client.get(path)
        body = await page.text()
        assert page.status == 404, path
        assert "Olena" not in body and "Rossi" not in body and "03/02/1961" not in body, path
    # Nor can the form book them without having found them.
    from tests.conftest import csrf_token

    token = await csrf_token(api.client, "/bookings/new")
    refused = await post_refused(api.client, "/bookings/new", {
        "csrf_token": token, "patient": str(pid), "centre": "gratosoglio",
        "service": "gp_visit", "mode": "home_video", "slot": "1|2030-01-01T09:00:00+01:00"})
    assert refused.status == 404 and "Olena" not in refused.html
    assert await api.world.conn.fetchval(
        "SELECT count(*) FROM bookings WHERE patient_id = $1", pid) == 0


async def test_full_codice_fiscale_on_the_booking_form_finds_name_and_birth_date_only(
        api: Api, make_staff: Any):
    pid = await stranger(api)
    await _as(api, make_staff, Role.GP, ("gratosoglio",))
    html = await (await api.client.get(f"/bookings/new?q={CF}")).text()
    assert "Rossi" in html and "03/02/1961" in html and "1234567" not in html
    link = re.search(rf'href="(/bookings/new\?patient={pid}&amp;pick=[0-9a-f]+)"', html)
    assert link is not None
    chosen = await api.client.get(link.group(1).replace("&amp;", "&"))
    text = await chosen.text()
    assert chosen.status == 200 and "Rossi" in text and "1234567" not in text
    assert "p@example.org" not in text
    # The proof is the caller's own: another user's link shows nothing.
    await _as(api, make_staff, Role.GP, ("gratosoglio",))
    assert (await api.client.get(link.group(1).replace("&amp;", "&"))).status == 404


async def test_patients_page_book_link_opens_the_form(api: Api, make_staff: Any):
    pid = await stranger(api)
    await _as(api, make_staff, Role.NURSE, ("gratosoglio",))
    html = await (await api.client.get(f"/bookings/patients?q={CF}")).text()
    link = re.search(rf'href="(/bookings/new\?patient={pid}&amp;pick=[0-9a-f]+)"', html)
    assert link is not None
    assert (await api.client.get(link.group(1).replace("&amp;", "&"))).status == 200


async def test_a_patient_registered_on_the_form_can_be_booked_by_a_clinician(
        api: Api, make_staff: Any):
    from tests.conftest import csrf_token

    await _as(api, make_staff, Role.GP, ("gratosoglio",))
    token = await csrf_token(api.client, "/bookings/new")
    resp = await api.client.post("/bookings/new", data={
        "csrf_token": token, "action": "patient", "given_name": "Ana", "family_name": "Reyes",
        "date_of_birth": "1977-05-06", "language": "es"}, allow_redirects=False)
    assert resp.status == 303 and "&pick=" in resp.headers["Location"]
    page = await api.client.get(resp.headers["Location"])
    assert page.status == 200 and "Reyes" in await page.text()
