"""Page forms answer a POST with a redirect, never with a page: the browser keeps a POST
answer's request body (a codice fiscale searched, a patient's details) with the tab, in its
session-restore files. What the page after it shows rides in a signed cookie of ids and codes."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from server import outcome
from server.staff import Role
from tests.bookings.conftest import Api, add_patient
from tests.conftest import SECRET_KEY, csrf_token, login, post_refused


async def _desk(api: Api, make_staff: Any) -> None:
    who = await make_staff(Role.COORDINATOR, ("san-siro", "gratosoglio"))
    assert (await login(api.client, who.email)).status == 303


async def _with_cf(api: Api, patient: int) -> str:
    cf = "PRG" + secrets.token_hex(6).upper() + "Z"
    await api.world.conn.execute("UPDATE patients SET codice_fiscale = $1 WHERE id = $2",
                                 cf, patient)
    return cf


async def test_a_search_by_codice_fiscale_redirects_to_its_results(api: Api, make_staff: Any):
    await _desk(api, make_staff)
    mine = api.world.patient
    # Another centre's patient: found only by the full codice fiscale, offered for booking.
    elsewhere = await add_patient(api.world.conn, "Lucia", home_centre="mazzini")
    for page, extra in (("/bookings/patients", {}), ("/bookings/new", {"action": "search"})):
        for patient in (mine, elsewhere):
            # Their own centre's patient opens; the other is offered for booking (with the
            # proof that this user found her).
            link = (f"/bookings/patients/{patient}" if page == "/bookings/patients"
                    and patient == mine else f"/bookings/new?patient={patient}&amp;pick=")
            cf = await _with_cf(api, patient)
            token = await csrf_token(api.client, page)
            resp = await api.client.post(page, data={"csrf_token": token, "q": cf, **extra},
                                         allow_redirects=False)
            assert resp.status == 303 and resp.headers["Location"] == page
            shown = await api.client.get(page)
            html = await shown.text()
            assert shown.status == 200 and cf not in html
            assert link in html
            # Shown once: a reload is the empty search.
            again = await api.client.get(page)
            assert again.status == 200 and link not in await again.text()


async def test_an_outcome_is_read_only_by_its_page_and_only_signed(api: Api, make_staff: Any):
    await _desk(api, make_staff)
    cf = await _with_cf(api, api.world.patient)
    token = await csrf_token(api.client, "/bookings/patients")
    resp = await api.client.post("/bookings/patients", data={"csrf_token": token, "q": cf},
                                 allow_redirects=False)
    value = resp.cookies["casa_outcome"].value
    body, _dot, sig = value.rpartition(".")
    jar = api.client.session.cookie_jar
    # Another page does not take it (it is for the search page), and leaves it for it.
    other = await api.client.get("/bookings/new")
    assert other.status == 200 and f"patient={api.world.patient}" not in await other.text()
    assert f"/bookings/patients/{api.world.patient}" in await (await api.client.get(
        "/bookings/patients")).text()
    # A cookie whose body was changed is not believed.
    forged = body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    jar.update_cookies({"casa_outcome": f"{forged}.{sig}"})
    html = await (await api.client.get("/bookings/patients")).text()
    assert f"/bookings/patients/{api.world.patient}" not in html
    # A copy kept past its minute is not believed either, signed or not.
    payload = json.loads(base64.urlsafe_b64decode(body))
    old = base64.urlsafe_b64encode(json.dumps(
        payload | {"t": payload["t"] - outcome.AGE_S - 1}).encode())
    jar.update_cookies({"casa_outcome": f"{old.decode()}.{outcome._sign(SECRET_KEY, old)}"})
    html = await (await api.client.get("/bookings/patients")).text()
    assert f"/bookings/patients/{api.world.patient}" not in html
    # Another staff member's outcome is not shown to whoever signs in next on that browser.
    other = await make_staff(Role.COORDINATOR, ("san-siro",))
    assert (await login(api.client, other.email)).status == 303
    jar.update_cookies({"casa_outcome": value})
    html = await (await api.client.get("/bookings/patients")).text()
    assert f"/bookings/patients/{api.world.patient}" not in html


async def test_refusals_before_the_form_runs_go_back_to_it_too(api: Api, make_staff: Any):
    """A stale CSRF token (the form was open across a restart) or an expired session: the
    refusal comes before the form's handler, and still goes back to the form."""
    await _desk(api, make_staff)
    family, phone = "Stale" + secrets.token_hex(5), "+39 347 " + "6" * 7
    typed = {"action": "patient", "given_name": "Ana", "family_name": family,
             "date_of_birth": "1961-02-03", "phone": phone, "language": "es"}
    refused = await post_refused(api.client, "/bookings/new",
                                 {**typed, "csrf_token": "0" * 64}, typed=(family, phone))
    assert refused.status == 403 and refused.location == "/bookings/new"
    assert "scadut" in refused.html or "expired" in refused.html
    api.client.session.cookie_jar.clear()
    token = await csrf_token(api.client, "/login")  # a fresh, signed-out browser
    resp = await api.client.post("/bookings/new", data={**typed, "csrf_token": token},
                                 allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/bookings/new"
    # The form, for someone signed out, is the sign-in page.
    resp = await api.client.get("/bookings/new", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    # A client that asks for JSON still gets the error itself.
    resp = await api.client.post("/bookings/new", data={**typed, "csrf_token": token},
                                 headers={"Accept": "application/json"})
    assert resp.status in (401, 403)


async def test_a_kiosk_join_with_a_stale_form_goes_back_to_the_join_form(api: Api):
    await csrf_token(api.client, "/join")
    refused = await post_refused(api.client, "/join", {
        "csrf_token": "0" * 64, "code": "918273", "day": "17", "month": "4", "year": "1946"},
        typed=("918273", "1946"))
    assert refused.status == 403 and refused.location == "/join"
    assert 'role="alert"' in refused.html and 'name="code"' in refused.html
