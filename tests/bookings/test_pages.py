"""Staff pages: calendar, booking form, today, patient page, booking actions, feed page."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from server.staff import Role
from server.timeutil import ROME
from tests.bookings.conftest import Api, future
from tests.conftest import csrf_token, login, post_refused


async def signed_in(api: Api, make_staff: Any, role: Role) -> Any:
    who = await make_staff(role, ("san-siro", "gratosoglio"))
    assert (await login(api.client, who.email)).status == 303
    return who


async def test_coordinator_calendar_day_and_week_by_clinician_and_kiosk(api: Api, make_staff):
    await signed_in(api, make_staff, Role.COORDINATOR)
    assert (await api.post("/api/v1/bookings", api.booking_body(future(hh=10)))).status == 201
    assert (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=11), mode="kiosk_video", kiosk_id=api.world.kiosk,
        patient_id=api.world.patient2))).status == 201
    day = future().date().isoformat()
    for query in (f"day={day}", f"day={day}&view=week", f"day={day}&by=kiosk",
                  f"day={day}&view=week&by=kiosk", "day=garbage", "centre=atlantis"):
        resp = await api.client.get(f"/bookings/calendar?centre=san-siro&{query}")
        assert resp.status == 200, query
    html = await (await api.client.get(f"/bookings/calendar?centre=san-siro&day={day}")).text()
    assert "10:00" in html and "11:00" in html and "Rossi" in html
    kiosk = await (await api.client.get(
        f"/bookings/calendar?centre=san-siro&day={day}&by=kiosk")).text()
    assert "11:00" in kiosk and "10:00–" not in kiosk


async def test_booking_form_from_search_to_booked(api: Api, make_staff):
    await signed_in(api, make_staff, Role.NURSE)
    await api.world.conn.execute(
        "INSERT INTO availability (staff_id, centre_id, weekday, starts, ends)"
        " SELECT $1, 'san-siro', d, '09:00', '10:00' FROM generate_series(0, 6) d",
        api.world.gp)
    # The form finds only the nurse's patients: make Maria one of San Siro's.
    await api.world.conn.execute("UPDATE patients SET home_centre_id = 'san-siro' WHERE id = $1",
                                 api.world.patient)
    found = await (await api.client.get("/bookings/new?q=Maria")).text()
    assert f"/bookings/new?patient={api.world.patient}" in found
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    page = await (await api.client.get(
        f"/bookings/new?patient={api.world.patient}&centre=san-siro&service=gp_visit"
        f"&mode=home_video&day={day}")).text()
    slots = re.findall(r'name="slot" value="([^"]+)"', page)
    assert len(slots) == 3
    token = await csrf_token(api.client, "/bookings/new")
    form = {"csrf_token": token, "patient": str(api.world.patient), "centre": "san-siro",
            "service": "gp_visit", "mode": "home_video", "day": day, "slot": slots[0]}
    resp = await api.client.post("/bookings/new", data=form, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/bookings/")
    # Refusals go back to the form with the choices made (never a page answering the POST).
    again = await post_refused(api.client, "/bookings/new", form)
    assert again.status == 409 and f"patient={api.world.patient}" in again.location
    assert "Il professionista ha già una prenotazione" in again.html or \
        "Il paziente ha già" in again.html
    assert len(re.findall(r'name="slot" value="([^"]+)"', again.html)) == 2
    bad = await post_refused(api.client, "/bookings/new", {**form, "slot": "x|y"})
    assert bad.status == 422 and "Scelga prima" in bad.html


async def test_register_patient_from_the_form(api: Api, make_staff):
    await signed_in(api, make_staff, Role.COORDINATOR)
    token = await csrf_token(api.client, "/bookings/new")
    ok = await api.client.post("/bookings/new", data={
        "csrf_token": token, "action": "patient", "given_name": "Ana", "family_name": "Reyes",
        "date_of_birth": "1977-05-06", "language": "es"}, allow_redirects=False)
    assert ok.status == 303 and "patient=" in ok.headers["Location"]
    family, phone, cf = "Refused" + secrets.token_hex(4), "+39 347 " + "5" * 7, "RFSD" * 4
    bad = await post_refused(api.client, "/bookings/new", {
        "csrf_token": token, "action": "patient", "given_name": "", "family_name": family,
        "date_of_birth": "nope", "phone": phone, "codice_fiscale": cf, "language": "es"},
        typed=(family, phone, cf))
    assert bad.status == 422 and bad.location == "/bookings/new"
    assert "given_name" in bad.html and "date_of_birth" in bad.html


async def test_clinician_today_and_booking_actions(api: Api, make_staff):
    gp = await signed_in(api, make_staff, Role.GP)
    now = datetime.now(UTC).replace(microsecond=0)
    resp = await api.post("/api/v1/bookings", api.booking_body(now + timedelta(minutes=5),
                                                               clinician_id=gp.id))
    b = await resp.json()
    # The booking's own Rome day: just before midnight, now + 5 minutes is tomorrow.
    day = (now + timedelta(minutes=5)).astimezone(ROME).date().isoformat()
    html = await (await api.client.get(f"/bookings/today?day={day}")).text()
    assert f"/bookings/{b['id']}" in html and "/consultation/" in html
    page = await api.client.get(f"/bookings/{b['id']}")
    assert page.status == 200
    token = await csrf_token(api.client, f"/bookings/{b['id']}")
    act = await api.client.post(f"/bookings/{b['id']}", data={
        "csrf_token": token, "action": "arrived"}, allow_redirects=False)
    assert act.status == 303
    reason = "Reason" + secrets.token_hex(4)
    cancel = await post_refused(api.client, f"/bookings/{b['id']}", {
        "csrf_token": token, "action": "cancelled", "reason": reason}, typed=(reason,))
    assert cancel.status == 409  # an arrived booking cannot be cancelled
    assert 'role="alert"' in cancel.html
    assert (await api.client.get(f"/bookings/{b['id']}")).status == 200  # shown once
    other = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=16), patient_id=api.world.patient2))).json()
    assert (await api.client.get(f"/bookings/{other['id']}")).status == 404


async def test_patient_page_and_search(api: Api, make_staff):
    await signed_in(api, make_staff, Role.COORDINATOR)
    assert (await api.post("/api/v1/bookings", api.booking_body(future()))).status == 201
    page = await api.client.get(f"/bookings/patients/{api.world.patient}")
    assert page.status == 200
    assert "Maria" in await page.text()
    assert (await api.client.get("/bookings/patients/999999")).status == 404
    assert (await api.client.get("/bookings/patients?q=Rossi")).status == 200


async def test_feed_page_shows_the_address_once(api: Api, make_staff):
    await signed_in(api, make_staff, Role.PSYCHOLOGIST)
    token = await csrf_token(api.client, "/bookings/feed")
    resp = await api.client.post("/bookings/feed", data={"csrf_token": token})
    url = re.search(r"/calendar/([A-Za-z0-9_-]+)\.ics", await resp.text())
    assert url
    assert (await api.client.get(f"/calendar/{url.group(1)}.ics")).status == 200
    again = await api.client.get("/bookings/feed")
    assert again.status == 200 and url.group(1) not in await again.text()


async def test_admins_and_strangers_do_not_see_calendars(api: Api, make_staff):
    assert (await api.client.get("/bookings/calendar", allow_redirects=False)).status == 303
    await signed_in(api, make_staff, Role.GP)
    assert (await api.client.get("/bookings/calendar")).status == 403


async def test_coordinator_edits_availability_and_slots_follow(api: Api, make_staff):
    await signed_in(api, make_staff, Role.COORDINATOR)
    assert (await api.client.get("/bookings/availability?centre=san-siro")).status == 200
    token = await csrf_token(api.client, "/bookings/availability?centre=san-siro")
    base = {"csrf_token": token, "centre": "san-siro", "staff_id": str(api.world.gp)}
    ok = await api.client.post("/bookings/availability", data={
        **base, "action": "add_weekly", "weekday": "0", "starts": "09:00", "ends": "10:00"},
        allow_redirects=False)
    assert ok.status == 303
    slots = await (await api.get("/api/v1/slots", centre="san-siro", service="gp_visit",
                                 date="2030-06-03")).json()
    assert len(slots["slots"]) == 3
    leave = await api.client.post("/bookings/availability", data={
        **base, "action": "add_exception", "kind": "leave", "day_from": "2030-06-03",
        "starts": "09:00", "day_to": "2030-06-03", "ends": "09:40"}, allow_redirects=False)
    assert leave.status == 303
    slots = await (await api.get("/api/v1/slots", centre="san-siro", service="gp_visit",
                                 date="2030-06-03")).json()
    assert [s["starts_at"][11:16] for s in slots["slots"]] == ["09:40"]
    bad = await post_refused(api.client, "/bookings/availability", {
        **base, "action": "add_weekly", "weekday": "0", "starts": "11:00", "ends": "10:00"})
    assert bad.status == 422 and 'role="alert"' in bad.html
    assert bad.location == "/bookings/availability?centre=san-siro"
    foreign = await post_refused(api.client, "/bookings/availability", {
        **base, "centre": "mazzini", "action": "add_weekly", "weekday": "0",
        "starts": "09:00", "ends": "10:00"})
    assert foreign.status == 403


async def test_booking_page_shows_the_consultation_history(api: Api, make_staff):
    from server.consultations import store

    await signed_in(api, make_staff, Role.COORDINATOR)
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    cid = b["consultation"]["id"]
    await store.record_event(api.world.conn, cid, "arrived")
    await store.record_event(api.world.conn, cid, "admitted", staff_id=api.world.gp)
    html = await (await api.client.get(f"/bookings/{b['id']}")).text()
    assert "sala d&#39;attesa" in html or "sala d'attesa" in html
    assert "Ammesso alla chiamata" in html


async def test_code_word_of_a_sensitive_booking_is_kept_only_as_a_keyed_hash(api: Api,
                                                                             make_staff):
    from server.consultations import code_word
    from tests.conftest import SECRET_KEY

    await signed_in(api, make_staff, Role.COORDINATOR)
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    await api.world.conn.execute(
        "INSERT INTO availability (staff_id, centre_id, weekday, starts, ends)"
        " SELECT $1, 'san-siro', d, '09:00', '11:00' FROM generate_series(0, 6) d", psy.id)
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    choice = (f"patient={api.world.patient}&centre=san-siro&service=violence_support"
              f"&mode=home_video&day={day}")
    page = await (await api.client.get(f"/bookings/new?{choice}")).text()
    assert 'name="code_word"' in page
    slot = next(s for s in re.findall(r'name="slot" value="([^"]+)"', page)
                if s.startswith(f"{psy.id}|"))
    token = await csrf_token(api.client, "/bookings/new")
    form = {"csrf_token": token, "patient": str(api.world.patient), "centre": "san-siro",
            "service": "violence_support", "mode": "home_video", "day": day, "slot": slot,
            "code_word": " Girasole "}
    bad = await post_refused(api.client, "/bookings/new", {**form, "code_word": "a b c d e"})
    assert bad.status == 422
    resp = await api.client.post("/bookings/new", data=form, allow_redirects=False)
    assert resp.status == 303
    booking_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    stored = await api.world.conn.fetchval(
        "SELECT code_word_hash FROM bookings WHERE id = $1", booking_id)
    assert stored == code_word.digest(SECRET_KEY, "girasole")
    # An ordinary service has no code word field.
    ordinary = choice.replace("violence_support", "gp_visit")
    plain = await (await api.client.get(f"/bookings/new?{ordinary}")).text()
    assert 'name="code_word"' not in plain
