"""The JSON API: authentication, bookings through their life, errors, FHIR, OpenAPI."""

from __future__ import annotations

from datetime import date
from typing import Any

from openapi_spec_validator import validate

from server.bookings import tokens
from server.bookings.access import patient_pick
from tests.bookings.conftest import Api, future, open_hours
from tests.conftest import SECRET_KEY, login

OPERATIONS = {"listCentres", "listServices", "listSlots", "createPatient", "getPatient",
              "createBooking", "getBooking", "listBookings", "rescheduleBooking",
              "cancelBooking", "getBookingFhir"}


async def test_openapi_document_is_valid_and_complete(api: Api):
    resp = await api.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    validate(doc)
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert OPERATIONS <= ops


async def test_api_needs_a_session_or_a_valid_token(api: Api):
    resp = await api.client.get("/api/v1/centres")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"
    resp = await api.get("/api/v1/centres", headers={"Authorization": "Bearer casa_nope"})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_token"
    resp = await api.get("/api/v1/centres")
    assert resp.status == 200
    centres = (await resp.json())["centres"]
    assert {c["id"] for c in centres} >= {"san-siro", "gratosoglio"}
    assert any(k["id"] == api.world.kiosk for c in centres for k in c["kiosks"])


async def test_revoked_token_is_refused(api: Api):
    token_id, token = await tokens.create(api.world.conn, api.world.gp, "x")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/api/v1/services", headers=headers)).status == 200
    assert await tokens.revoke(api.world.conn, token_id)
    assert (await api.get("/api/v1/services", headers=headers)).status == 401
    row = await api.world.conn.fetchrow("SELECT token_hash FROM api_tokens WHERE id = $1",
                                        token_id)
    assert token.encode() not in bytes(row["token_hash"])


async def test_session_calls_need_csrf_for_writes(api: Api, make_staff):
    from server.staff import Role

    who = await make_staff(Role.COORDINATOR, ("san-siro",))
    assert (await login(api.client, who.email)).status == 303
    assert (await api.client.get("/api/v1/services")).status == 200
    resp = await api.client.post("/api/v1/patients", json={"given_name": "A"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"


async def test_services_list_marks_sensitive_ones(api: Api):
    services = (await (await api.get("/api/v1/services")).json())["services"]
    sensitive = {s["code"] for s in services if s["sensitive"]}
    assert sensitive == {"psych_session", "psychiatric_followup", "violence_support"}
    assert len(services) == 6


async def test_create_and_read_patient_with_bad_inputs(api: Api):
    body = {"given_name": "Olena", "family_name": "Kovalenko", "date_of_birth": "1961-02-03",
            "language": "uk", "phone": "+39 333 7654321", "codice_fiscale": "RSSMRA85T10A562S",
            "home_centre_id": "san-siro"}
    resp = await api.post("/api/v1/patients", body)
    assert resp.status == 201, await resp.text()
    p = await resp.json()
    again = await api.post("/api/v1/patients", body)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "duplicate_patient"
    got = await (await api.get(f"/api/v1/patients/{p['id']}")).json()
    assert got["family_name"] == "Kovalenko" and got["upcoming"] == [] and got["past"] == []
    for bad in ({}, {"given_name": "A", "family_name": "B", "date_of_birth": "1961-13-40"},
                {**body, "codice_fiscale": "RSSMRA85T10A562X"},
                {**body, "codice_fiscale": None, "email": "nope"},
                {**body, "given_name": 42}, {**body, "language": ["it"]}):
        resp = await api.post("/api/v1/patients", bad)
        assert resp.status == 422, (bad, await resp.text())
        assert (await resp.json())["error"]["code"] == "validation_failed"
    assert (await api.client.post("/api/v1/patients", data="not json",
                                  headers=api.coordinator)).status == 400
    assert (await api.get("/api/v1/patients/99999999")).status == 404
    assert (await api.get("/api/v1/patients/-1")).status == 422
    assert (await api.get("/api/v1/patients/99999999999999999999999")).status == 422


async def test_booking_life_through_the_api(api: Api):
    await open_hours(api.world.conn, api.world.gp)
    resp = await api.post("/api/v1/bookings", api.booking_body(future(hh=10)))
    assert resp.status == 201, await resp.text()
    b = await resp.json()
    assert b["status"] == "booked" and b["consultation"]["state"] == "scheduled"
    assert b["starts_at"].endswith(("+01:00", "+02:00"))
    got = await (await api.get(f"/api/v1/bookings/{b['id']}")).json()
    assert got == b
    day = future().date().isoformat()
    listed = await (await api.get("/api/v1/bookings", centre="san-siro", day=day,
                                  status="booked")).json()
    assert [x["id"] for x in listed["bookings"]] == [b["id"]]
    assert (await (await api.get("/api/v1/bookings", day="2030-01-01")).json())["bookings"] == []
    moved = await api.post(f"/api/v1/bookings/{b['id']}/reschedule",
                           {"starts_at": future(hh=11).isoformat()})
    assert moved.status == 200
    assert (await moved.json())["starts_at"] == future(hh=11).isoformat()
    done = await api.post(f"/api/v1/bookings/{b['id']}/cancel", {"reason": "patient unwell"})
    assert done.status == 200 and (await done.json())["status"] == "cancelled"
    again = await api.post(f"/api/v1/bookings/{b['id']}/cancel", {})
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "invalid_status_change"


async def test_clash_is_a_409_that_names_what_clashes(api: Api):
    first = await api.post("/api/v1/bookings", api.booking_body(future(hh=10)))
    assert first.status == 201
    resp = await api.post("/api/v1/bookings",
                          api.booking_body(future(hh=10, mm=10), patient_id=api.world.patient2),
                          {**api.coordinator, "Accept-Language": "en"})
    assert resp.status == 409
    err = (await resp.json())["error"]
    assert err["code"] == "clinician_busy" and "clinician" in err["message"]
    assert err["details"]["other_booking_id"] == (await first.json())["id"]
    resp = await api.post("/api/v1/bookings", api.booking_body(
        future(hh=10, mm=10), clinician_id=api.world.gp2))
    assert (await resp.json())["error"]["code"] == "patient_busy"


async def test_italian_clash_message(api: Api):
    assert (await api.post("/api/v1/bookings", api.booking_body(future(hh=10)))).status == 201
    resp = await api.client.post(
        "/api/v1/bookings", json=api.booking_body(future(hh=10), patient_id=api.world.patient2),
        headers={**api.coordinator, "Accept-Language": "it"})
    err = (await resp.json())["error"]
    assert err["code"] == "clinician_busy" and "professionista" in err["message"]


async def test_status_changes_and_forbidden_ones(api: Api):
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    early = await api.post(f"/api/v1/bookings/{b['id']}/status", {"status": "noshow"})
    assert early.status == 409
    ok = await api.post(f"/api/v1/bookings/{b['id']}/status", {"status": "arrived"})
    assert ok.status == 200 and (await ok.json())["status"] == "arrived"
    bad = await api.post(f"/api/v1/bookings/{b['id']}/status", {"status": "checked-in"})
    assert bad.status == 409
    assert (await bad.json())["error"]["details"] == {"from": "arrived", "to": "checked-in"}
    assert (await api.post(f"/api/v1/bookings/{b['id']}/status",
                           {"status": "booked"})).status == 422
    no_move = await api.post(f"/api/v1/bookings/{b['id']}/reschedule",
                             {"starts_at": future(hh=15).isoformat()})
    assert no_move.status == 409
    fin = await api.post(f"/api/v1/bookings/{b['id']}/status", {"status": "fulfilled"})
    assert (await fin.json())["status"] == "fulfilled"


async def test_clinicians_book_only_in_their_own_calendar(api: Api):
    other = api.booking_body(future(), clinician_id=api.world.gp2)
    assert (await api.post("/api/v1/bookings", other, api.gp)).status == 403
    # The GP has not seen this patient yet (of another home centre): booking them takes the
    # pick the booking form gives for a patient found by the full codice fiscale.
    await api.world.conn.execute("UPDATE patients SET home_centre_id = 'mazzini' WHERE id = $1",
                                 api.world.patient)
    first = api.booking_body(future())
    assert (await api.post("/api/v1/bookings", first, api.gp)).status == 404
    pick = patient_pick(SECRET_KEY, await _staff(api, api.world.gp), api.world.patient)
    mine = await api.post("/api/v1/bookings", {**first, "patient_pick": pick}, api.gp)
    assert mine.status == 201
    theirs = await (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=15), clinician_id=api.world.gp2))).json()
    # Another clinician's booking does not exist for a GP.
    assert (await api.get(f"/api/v1/bookings/{theirs['id']}", api.gp)).status == 404
    listed = await (await api.get("/api/v1/bookings", api.gp)).json()
    assert [b["clinician_id"] for b in listed["bookings"]] == [api.world.gp]
    wrong_centre = api.booking_body(future(hh=17), centre_id="mazzini")
    assert (await api.post("/api/v1/bookings", wrong_centre)).status == 403
    assert (await api.post("/api/v1/bookings", api.booking_body(
        future(hh=17), centre_id="atlantis"))).status == 404


async def test_booking_bad_inputs_are_422(api: Api):
    base = api.booking_body(future())
    for bad in ({**base, "starts_at": "tomorrow"}, {**base, "starts_at": "2026-01-01T10:00"},
                {**base, "patient_id": "x"}, {**base, "patient_id": 10**30},
                {**base, "mode": "hologram"}, {**base, "service_code": "vaccination"},
                {**base, "kiosk_id": api.world.kiosk}, {**base, "ends_at": base["starts_at"]},
                {**base, "starts_at": "9999-01-01T10:00:00+01:00"},
                {**base, "patient_pick": 42}, {**base, "patient_pick": "x" * 65},
                {k: v for k, v in base.items() if k != "clinician_id"}):
        resp = await api.post("/api/v1/bookings", bad)
        assert resp.status == 422, (bad, resp.status, await resp.text())
    assert (await api.post("/api/v1/bookings", [1, 2])).status == 400
    # A patient who does not exist is not found, like one the caller may not see.
    unknown = await api.post("/api/v1/bookings", {**base, "patient_id": 424242})
    assert unknown.status == 404
    assert (await unknown.json())["error"]["code"] == "patient_not_found"


async def test_fhir_export(api: Api):
    b = await (await api.post("/api/v1/bookings", api.booking_body(
        future(), service_code="psych_session", clinician_id=api.world.psychologist))).json()
    resp = await api.get(f"/api/v1/bookings/{b['id']}/fhir")
    assert resp.status == 200
    doc = await resp.json(content_type=None)
    assert doc["resourceType"] == "Appointment" and doc["status"] == "booked"
    assert doc["minutesDuration"] == 50
    refs = {p["actor"]["reference"] for p in doc["participant"]}
    assert f"Patient/{api.world.patient}" in refs
    assert f"Practitioner/{api.world.psychologist}" in refs
    assert doc["meta"]["security"][0]["code"] == "R"


async def test_slots_through_the_api(api: Api):
    await api.world.conn.execute(
        "INSERT INTO availability (staff_id, centre_id, weekday, starts, ends)"
        " VALUES ($1, 'san-siro', 0, '09:00', '10:00')", api.world.gp)
    resp = await api.get("/api/v1/slots", centre="san-siro", service="gp_visit",
                         date="2030-06-03", days="7")
    slots = (await resp.json())["slots"]
    assert [s["starts_at"][11:16] for s in slots] == ["09:00", "09:20", "09:40"]
    for bad in ({"date": "x"}, {"days": "0"}, {"days": "abc"}, {"clinician": "-3"}):
        params = {"centre": "san-siro", "service": "gp_visit", "date": "2030-06-03"} | bad
        resp = await api.client.get("/api/v1/slots", params=params, headers=api.coordinator)
        assert resp.status == 422
    assert date(2030, 6, 3).weekday() == 0


WRONG_TYPES: list[Any] = [{"a": 1}, ["x"], 1.5, True, 10**30, None, "", "x" * 5000]


async def test_status_of_the_wrong_json_type_is_422(api: Api):
    b = await (await api.post("/api/v1/bookings", api.booking_body(future(hh=9)))).json()
    for bad in WRONG_TYPES:
        resp = await api.post(f"/api/v1/bookings/{b['id']}/status", {"status": bad})
        assert resp.status == 422, (bad, await resp.text())


async def test_every_json_field_of_the_wrong_type_is_422_never_500(api: Api):
    b = await (await api.post("/api/v1/bookings", api.booking_body(future(hh=9)))).json()
    patient = {"given_name": "Ana", "family_name": "Reyes", "date_of_birth": "1977-05-06",
               "language": "es", "phone": "+39 333 1", "email": "a@example.org",
               "codice_fiscale": "RSSMRA85T10A562S", "home_centre_id": "san-siro"}
    booking = api.booking_body(future(hh=15), ends_at=future(hh=15, mm=20).isoformat(),
                               nurse_id=api.world.nurse)
    writes = [("/api/v1/patients", patient),
              ("/api/v1/bookings", booking),
              (f"/api/v1/bookings/{b['id']}/reschedule",
               {"starts_at": future(hh=16).isoformat(), "ends_at": future(hh=17).isoformat()}),
              (f"/api/v1/bookings/{b['id']}/cancel", {"reason": "x"}),
              (f"/api/v1/bookings/{b['id']}/status", {"status": "checked-in"})]
    for path, body in writes:
        for field in body:
            for bad in WRONG_TYPES[:5]:
                resp = await api.post(path, {**body, field: bad})
                assert resp.status < 500, (path, field, bad)
                if not isinstance(bad, bool) and bad is not None:
                    assert resp.status == 422, (path, field, bad, await resp.text())


async def test_json_nested_too_deep_is_a_400(api: Api):
    resp = await api.client.post("/api/v1/patients", data="[" * 100000,
                                 headers={**api.coordinator, "Content-Type": "application/json"})
    assert resp.status == 400


async def _staff(api: Api, staff_id: int) -> Any:
    from server import staff as staff_store

    found = await staff_store.get(api.world.conn, staff_id)
    assert found is not None
    return found
