"""The monitoring API: the flow from enrolment to an acknowledged alert, the access matrix
(coordinators and admins see no values, another centre's clinician is refused exactly like an
unknown id), the FHIR Observations, and no reading in the clear in any column."""

from __future__ import annotations

from typing import Any

from server.staff import Staff
from tests.monitoring.conftest import Ward, in_days
from tests.records.conftest import api_headers, login_as

BP = {"measurement": "blood_pressure", "values": {"systolic": 171, "diastolic": 97},
      "source": "nurse"}


async def _as(client: Any, user: Staff, db_url: str) -> dict[str, str]:
    client.session.cookie_jar.clear()
    await login_as(client, user, db_url)
    return await api_headers(client)


async def _plan(client: Any, ward: Ward, db_url: str, **extra: Any) -> tuple[dict[str, Any], Any]:
    h = await _as(client, ward.nurse, db_url)
    resp = await client.post("/api/v1/monitoring/plans", headers=h, json={
        "patient_id": ward.patient, "conditions": ["hypertension"],
        "ends_on": in_days(30).isoformat(), **extra})
    assert resp.status == 201, await resp.text()
    return await resp.json(), h


async def test_enrol_read_alert_and_acknowledge(client, ward, db_url):
    created, h = await _plan(client, ward, db_url,
                             thresholds={"systolic": {"low": 95, "high": 150}})
    plan = created["plan"]
    assert created["link"].startswith("/m/") and plan["thresholds"]["systolic"] == {
        "low": 95, "high": 150}
    got = await client.get(f"/api/v1/monitoring/plans/{plan['id']}", headers=h)
    assert got.status == 200 and (await got.json())["id"] == plan["id"]

    stored = await client.post(f"/api/v1/monitoring/plans/{plan['id']}/readings",
                               headers=h, json=BP)
    assert stored.status == 201, await stored.text()
    body = await stored.json()
    assert body["out_of_range"] and len(body["alerts"]) == 1
    ok = await client.post(f"/api/v1/monitoring/plans/{plan['id']}/readings", headers=h,
                           json={"measurement": "heart_rate", "values": {"heart_rate": 72}})
    assert (await ok.json())["out_of_range"] is False

    listed = await (await client.get(f"/api/v1/monitoring/plans/{plan['id']}/readings",
                                     headers=h)).json()
    assert [(r["measurement"], r["values"]) for r in listed["readings"]] == [
        ("blood_pressure", {"systolic": 171, "diastolic": 97}),
        ("heart_rate", {"heart_rate": 72})]
    only = await (await client.get(f"/api/v1/monitoring/plans/{plan['id']}/readings"
                                   "?measurement=heart_rate", headers=h)).json()
    assert len(only["readings"]) == 1

    alerts = (await (await client.get("/api/v1/monitoring/alerts", headers=h)).json())["alerts"]
    assert [(a["kind"], a["measurement"], a["state"]) for a in alerts] == [
        ("out_of_range", "blood_pressure", "open")]
    h = await _as(client, ward.gp, db_url)  # the GP escalated to sees and moves it too
    moved = await client.post(f"/api/v1/monitoring/alerts/{alerts[0]['id']}/state",
                              headers=h, json={"state": "acknowledged"})
    assert moved.status == 200 and (await moved.json())["state"] == "acknowledged"
    left = await (await client.get("/api/v1/monitoring/alerts", headers=h)).json()
    assert left["alerts"] == []
    done = await (await client.get("/api/v1/monitoring/alerts?state=acknowledged",
                                   headers=h)).json()
    assert [a["id"] for a in done["alerts"]] == [alerts[0]["id"]]


async def test_a_refused_field_is_named(client, ward, db_url):
    created, h = await _plan(client, ward, db_url)
    resp = await client.post(f"/api/v1/monitoring/plans/{created['plan']['id']}/readings",
                             headers=h, json={"measurement": "blood_pressure",
                                              "values": {"systolic": 20, "diastolic": 80}})
    assert resp.status == 422
    assert (await resp.json())["error"]["details"]["fields"] == {
        "values.systolic": "between 50 and 260 mm[Hg]"}


async def test_access_matrix(client, ward, db_url, conn):
    created, h = await _plan(client, ward, db_url)
    plan_id = created["plan"]["id"]
    stored = await client.post(f"/api/v1/monitoring/plans/{plan_id}/readings", headers=h,
                               json=BP)
    alert_id = (await stored.json())["alerts"][0]
    missing = 10**12
    calls = [
        ("GET", f"/api/v1/monitoring/plans/{plan_id}", None),
        ("GET", f"/api/v1/monitoring/plans/{plan_id}/readings", None),
        ("POST", f"/api/v1/monitoring/plans/{plan_id}/readings", BP),
        ("POST", f"/api/v1/monitoring/alerts/{alert_id}/state", {"state": "to_call"}),
        ("GET", f"/api/v1/monitoring/patients/{ward.patient}/observations", None),
        ("POST", "/api/v1/monitoring/plans", {"patient_id": ward.patient,
                                              "conditions": ["copd"],
                                              "ends_on": in_days(5).isoformat()}),
    ]
    unknown = [
        ("GET", f"/api/v1/monitoring/plans/{missing}", None),
        ("GET", f"/api/v1/monitoring/plans/{missing}/readings", None),
        ("POST", f"/api/v1/monitoring/plans/{missing}/readings", BP),
        ("POST", f"/api/v1/monitoring/alerts/{missing}/state", {"state": "to_call"}),
        ("GET", f"/api/v1/monitoring/patients/{missing}/observations", None),
        ("POST", "/api/v1/monitoring/plans", {"patient_id": missing, "conditions": ["copd"],
                                              "ends_on": in_days(5).isoformat()}),
    ]
    for user in (ward.coordinator, ward.admin, ward.psychologist):
        h = await _as(client, user, db_url)
        for method, path, body in calls:
            resp = await client.request(method, path, headers=h, json=body)
            text = await resp.text()
            assert resp.status == 403, (user.role, path, resp.status)
            assert "171" not in text and "blood_pressure" not in text
        resp = await client.get("/api/v1/monitoring/alerts", headers=h)
        assert resp.status == 403
    for user in (ward.other_nurse, ward.other_gp):
        h = await _as(client, user, db_url)
        for (method, path, body), (_, upath, ubody) in zip(calls, unknown, strict=True):
            theirs = await client.request(method, path, headers=h, json=body)
            nobody = await client.request(method, upath, headers=h, json=ubody)
            assert (theirs.status, (await theirs.json())["error"]["code"]) == (
                nobody.status, (await nobody.json())["error"]["code"]), path
            assert theirs.status == 403
        # Their worklist is empty: the alert is not theirs to see.
        assert (await (await client.get("/api/v1/monitoring/alerts", headers=h)).json()) == {
            "alerts": []}
    count = await conn.fetchval("SELECT count(*) FROM monitoring_readings")
    assert count == 1  # no refused caller stored anything


async def test_fhir_observations_are_vital_signs_with_loinc_and_ucum(client, ward, db_url):
    created, h = await _plan(client, ward, db_url, measurements=[
        "blood_pressure", "heart_rate", "spo2", "glucose", "weight", "temperature", "symptoms"])
    plan_id = created["plan"]["id"]
    for body in (BP, {"measurement": "heart_rate", "values": {"heart_rate": 64}},
                 {"measurement": "spo2", "values": {"spo2": 95}},
                 {"measurement": "glucose", "values": {"glucose": 131}},
                 {"measurement": "weight", "values": {"weight": 71.4}},
                 {"measurement": "temperature", "values": {"temperature": 37.2}},
                 {"measurement": "symptoms", "text": "short of breath"}):
        resp = await client.post(f"/api/v1/monitoring/plans/{plan_id}/readings", headers=h,
                                 json=body)
        assert resp.status == 201, await resp.text()
    resp = await client.get(f"/api/v1/monitoring/patients/{ward.patient}/observations",
                            headers=h)
    assert resp.status == 200 and resp.content_type == "application/fhir+json"
    bundle = await resp.json(content_type=None)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    obs = [e["resource"] for e in bundle["entry"]]
    assert bundle["total"] == len(obs) == 6  # free symptoms are no vital sign
    expected = {"85354-9": None, "8867-4": ("/min", 64), "59408-5": ("%", 95),
                "2339-0": ("mg/dL", 131), "29463-7": ("kg", 71.4), "8310-5": ("Cel", 37.2)}
    for o, entry in zip(obs, bundle["entry"], strict=True):
        # The vital-signs profile: final, the vital-signs category, a subject, a time, a
        # LOINC code, and a UCUM quantity (or components, for the panel).
        assert o["resourceType"] == "Observation" and o["status"] == "final"
        assert entry["fullUrl"] == f"urn:casa:Observation/{o['id']}"
        assert o["category"][0]["coding"][0] == {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs", "display": "Vital Signs"}
        assert o["subject"] == {"reference": f"Patient/{ward.patient}"}
        assert o["effectiveDateTime"].endswith("+00:00")
        coding = o["code"]["coding"][0]
        assert coding["system"] == "http://loinc.org" and coding["code"] in expected
        want = expected.pop(coding["code"])
        if want is None:
            assert "valueQuantity" not in o
            assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]) for c in
                    o["component"]] == [
                ("8480-6", {"value": 171, "unit": "mm[Hg]", "system":
                            "http://unitsofmeasure.org", "code": "mm[Hg]"}),
                ("8462-4", {"value": 97, "unit": "mm[Hg]", "system":
                            "http://unitsofmeasure.org", "code": "mm[Hg]"})]
        else:
            assert o["valueQuantity"] == {"value": want[1], "unit": want[0], "code": want[0],
                                          "system": "http://unitsofmeasure.org"}
    assert expected == {}
    # The patient's record export carries them too.
    record = await (await client.get(f"/patients/{ward.patient}/record.fhir.json")).json(
        content_type=None)
    codes = [e["resource"]["code"]["coding"][0]["code"] for e in record["entry"]
             if e["resource"]["resourceType"] == "Observation"]
    assert sorted(codes) == sorted(["85354-9", "8867-4", "59408-5", "2339-0", "29463-7",
                                    "8310-5"])


async def test_no_reading_in_the_clear_in_any_column(client, ward, db_url, conn):
    marker = "PLAINTEXT-SYMPTOM-5e1d"
    created, h = await _plan(client, ward, db_url, measurements=["weight", "symptoms"])
    plan_id = created["plan"]["id"]
    for body in ({"measurement": "symptoms", "text": marker},
                 {"measurement": "weight", "values": {"weight": 123.7}}):
        resp = await client.post(f"/api/v1/monitoring/plans/{plan_id}/readings", headers=h,
                                 json=body)
        assert resp.status == 201
    listed = await (await client.get(f"/api/v1/monitoring/plans/{plan_id}/readings",
                                     headers=h)).json()
    assert next(r["text"] for r in listed["readings"]) == marker  # readable through Casa
    tables = [r["relname"] for r in await conn.fetch(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE relkind = 'r' AND nspname = 'public'")]
    found = []
    for table in tables:
        rows = [r["row"] for r in await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')]
        blobs = await conn.fetch("SELECT column_name FROM information_schema.columns "
                                 "WHERE table_name = $1 AND data_type = 'bytea'", table)
        for b in blobs:
            rows += [bytes(v or b"").decode("latin-1") for v in await conn.fetchval(
                f'SELECT array_agg("{b["column_name"]}") FROM "{table}"') or []]
        found += [table for t in rows if "PLAINTEXT-" in t or '"weight":123.7' in t
                  or "123.7" in t.replace("\\x", " ")]
    assert not found, f"a reading in the clear in {set(found)}"


async def test_an_end_day_out_of_any_calendar_is_refused_not_a_server_error(client, ward,
                                                                            db_url):
    """The fuzzer's 0001-01-01 (and 9999-12-31) had no Rome midnight Python could represent:
    a 500. Now 422 naming the field, like any end day too far or in the past."""
    h = await _as(client, ward.nurse, db_url)
    for day in ("0001-01-01", "9999-12-31", "2020-01-01"):
        resp = await client.post("/api/v1/monitoring/plans", headers=h, json={
            "patient_id": ward.patient, "conditions": ["hypertension"], "ends_on": day})
        assert resp.status == 422, (day, await resp.text())
        assert "ends_on" in await resp.text()
