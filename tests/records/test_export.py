"""Export: FHIR R4 JSON and the printable page, both audit-logged, restricted notes left out."""

from __future__ import annotations

from records import content
from records.access import Category
from server.staff import Role
from tests.records.conftest import login_as


async def test_fhir_and_print_exports(client, conn, rec, make_staff, make_patient, make_booking,
                                      db_url):
    nurse = await make_staff(Role.NURSE, ("san-siro",))
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    patient = await make_patient("san-siro")
    b1, b2 = await make_booking(patient, nurse.id), await make_booking(patient, psy.id)
    note = await rec.create(conn, nurse, booking_id=b1, patient_id=patient,
                            category=Category.NURSE, content=content.parse({
                                "reason": "kiosk check <b>", "measurements": {
                                    "bp_systolic": {"value": 140}, "bp_diastolic": {"value": 90},
                                    "glucose": {"value": 6.1, "unit": "mmol/L"}}}))
    await rec.sign(conn, nurse, note.id)
    hidden = await rec.create(conn, psy, booking_id=b2, patient_id=patient,
                              category=Category.PSYCHIATRIC,
                              content=content.parse({"text": "HIDDEN-PSY"}))
    await rec.sign(conn, psy, hidden.id)
    await rec.create(conn, nurse, booking_id=b1, patient_id=patient, category=Category.NURSE,
                     content=content.parse({"text": "UNSIGNED-DRAFT"}))

    await login_as(client, nurse, db_url)
    resp = await client.get(f"/patients/{patient}/record.fhir.json")
    assert resp.status == 200 and resp.content_type == "application/fhir+json"
    raw = await resp.text()
    assert "HIDDEN-PSY" not in raw and "UNSIGNED-DRAFT" not in raw
    bundle = await resp.json(content_type=None)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert bundle["resourceType"] == "Bundle" and kinds.count("Composition") == 1
    enc = next(e["resource"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Encounter")
    assert enc["class"]["code"] == "VR"
    comp = next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Composition")
    assert "kiosk check &lt;b&gt;" in comp["section"][0]["text"]["div"]
    obs = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] ==
           "Observation"]
    bp = next(o for o in obs if o["code"]["coding"][0]["code"] == "85354-9")
    assert [c["valueQuantity"]["value"] for c in bp["component"]] == [140, 90]
    glucose = next(o for o in obs if o["code"]["coding"][0]["code"] == "2339-0")
    assert glucose["valueQuantity"] == {"value": 6.1, "unit": "mmol/L",
                                        "system": "http://unitsofmeasure.org", "code": "mmol/L"}

    page = await client.get(f"/patients/{patient}/record/print")
    text = await page.text()
    assert page.status == 200 and "kiosk check" in text and "HIDDEN-PSY" not in text
    formats = [r["f"] for r in await conn.fetch(
        "SELECT detail->>'format' AS f FROM audit_log WHERE action = 'export' ORDER BY id")]
    assert formats == ["fhir", "print"]


async def test_export_of_a_patient_not_in_care_is_refused(client, make_staff, make_patient,
                                                          db_url):
    gp = await make_staff(Role.GP, ("san-siro",))
    other = await make_patient("mazzini")
    await login_as(client, gp, db_url)
    assert (await client.get(f"/patients/{other}/record.fhir.json")).status == 403
    # An unknown patient is refused like someone else's: patient ids cannot be probed.
    assert (await client.get("/patients/999999/record.fhir.json")).status == 403
