"""Writing, signing and amending notes through the API and pages, and bad input refused."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from server.staff import Role
from tests.records.conftest import api_headers, login_as

NOTE = {"reason": "cough for a week", "assessment": "viral bronchitis", "plan": "rest, fluids",
        "text": "free text", "summary": "You have a cold; rest and drink.",
        "measurements": {"heart_rate": {"value": 88}, "spo2": {"value": "96"},
                         "bp_systolic": {"value": 130}, "bp_diastolic": {"value": 80}}}


async def _gp_with_note(client: Any, make_staff: Any, make_patient: Any, make_booking: Any,
                        db_url: str) -> tuple[Any, int, int, dict[str, str], int]:
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    await login_as(client, gp, db_url)
    h = await api_headers(client)
    resp = await client.post(f"/api/v1/records/consultations/{booking}/notes", headers=h,
                             json={"patient_id": patient, "category": "gp", "content": NOTE})
    assert resp.status == 201, await resp.text()
    return gp, patient, (await resp.json())["id"], h, booking


async def test_draft_autosave_sign_then_amend(client, make_staff, make_patient, make_booking,
                                              db_url):
    _gp, patient, note_id, h, booking = await _gp_with_note(client, make_staff, make_patient,
                                                       make_booking, db_url)
    resp = await client.put(f"/api/v1/records/notes/{note_id}/draft", headers=h,
                            json={"content": {**NOTE, "plan": "rest, fluids, paracetamol"}})
    assert resp.status == 200 and (await resp.json())["version"] == 1
    resp = await client.post(f"/api/v1/records/notes/{note_id}/sign", headers=h)
    assert (await resp.json()) == {"version": 1, "status": "signed"}
    resp = await client.post(f"/api/v1/records/notes/{note_id}/amend", headers=h,
                             json={"reason": "dose added"})
    assert resp.status == 201 and (await resp.json())["version"] == 2
    resp = await client.put(f"/api/v1/records/notes/{note_id}/draft", headers=h,
                            json={"content": {**NOTE, "plan": "paracetamol 1 g"}})
    assert resp.status == 200
    assert (await client.post(f"/api/v1/records/notes/{note_id}/sign", headers=h)).status == 200
    body = await (await client.get(f"/api/v1/records/notes/{note_id}", headers=h)).json()
    v1, v2 = body["versions"]
    assert v1["content"]["plan"] == "rest, fluids, paracetamol" and v1["status"] == "signed"
    assert v2["amends_version"] == 1 and v2["content"]["amend_reason"] == "dose added"
    assert v2["content"]["measurements"]["spo2"] == {"value": 96.0, "unit": "%"}
    page = await client.get(f"/patients/{patient}/record")
    text = await page.text()
    assert page.status == 200 and "paracetamol 1 g" in text and "dose added" in text
    editor = await client.get(f"/consultations/{booking}/notes")
    html = await editor.text()
    assert editor.status == 200 and "data-notes-editor" in html
    # The editor's own page has one main heading (the call page's panel has a section heading).
    assert html.count("<h1") == 1 and '<h1 id="editor-title">' in html


async def test_signed_note_cannot_be_changed_by_api_or_sql(client, make_staff, make_patient,
                                                           make_booking, db_url, conn):
    _gp, _p, note_id, h, _booking = await _gp_with_note(client, make_staff, make_patient,
                                                       make_booking, db_url)
    assert (await client.post(f"/api/v1/records/notes/{note_id}/sign", headers=h)).status == 200
    resp = await client.put(f"/api/v1/records/notes/{note_id}/draft", headers=h,
                            json={"content": NOTE})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "note_locked"
    resp = await client.post(f"/api/v1/records/notes/{note_id}/sign", headers=h)
    assert resp.status == 409
    # The database itself refuses, whichever role the application connects as.
    for sql, why in (
            ("UPDATE note_versions SET ciphertext = 'x'::bytea WHERE note_id = $1",
             "signed note versions are locked"),
            ("UPDATE note_versions SET status = 'draft', signed_at = NULL WHERE note_id = $1",
             "signed note versions are locked"),
            ("DELETE FROM note_versions WHERE note_id = $1", "never deleted"),
            ("DELETE FROM notes WHERE id = $1", "never deleted"),
            ("UPDATE notes SET patient_id = patient_id + 1 WHERE id = $1",
             "identity cannot change")):
        # integrity_constraint_violation exactly: not a subclass (a check or foreign key
        # refusal would mean the trigger never ran).
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match=why) as refused:
            await conn.execute(sql, note_id)
        assert refused.value.sqlstate == "23000", sql


async def test_amending_needs_a_reason_and_a_signed_note(client, make_staff, make_patient,
                                                         make_booking, db_url):
    _gp, _p, note_id, h, _booking = await _gp_with_note(client, make_staff, make_patient,
                                                       make_booking, db_url)
    resp = await client.post(f"/api/v1/records/notes/{note_id}/amend", headers=h,
                             json={"reason": "x"})
    assert resp.status == 409  # still a draft
    assert (await client.post(f"/api/v1/records/notes/{note_id}/sign", headers=h)).status == 200
    resp = await client.post(f"/api/v1/records/notes/{note_id}/amend", headers=h,
                             json={"reason": "  "})
    assert resp.status == 422


BAD_CONTENT = [
    ({"measurements": {"heart_rate": {"value": 720}}}, "measurements.heart_rate"),
    ({"measurements": {"spo2": {"value": "abc"}}}, "measurements.spo2"),
    ({"measurements": {"temperature": {"value": 37, "unit": "F"}}}, "measurements.temperature"),
    ({"measurements": {"bp_systolic": {"value": 120}}}, "measurements.bp"),
    ({"measurements": {"bp_systolic": {"value": 80}, "bp_diastolic": {"value": 90}}},
     "measurements.bp"),
    ({"measurements": {"cholesterol": {"value": 5}}}, "measurements.cholesterol"),
    ({"measurements": {"weight": {"value": "nan"}}}, "measurements.weight"),
    ({"measurements": [1, 2]}, "measurements"),
    ({"text": 5}, "text"),
    ({"plan": "x" * 20_001}, "plan"),
    ("not an object", "content"),
]


async def test_implausible_or_malformed_content_is_refused(client, make_staff, make_patient,
                                                           make_booking, db_url, conn):
    nurse = await make_staff(Role.NURSE, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, nurse.id, "nurse_visit")
    await login_as(client, nurse, db_url)
    h = await api_headers(client)
    for bad, field in BAD_CONTENT:
        resp = await client.post(f"/api/v1/records/consultations/{booking}/notes", headers=h,
                                 json={"patient_id": patient, "category": "nurse",
                                       "content": bad})
        assert resp.status == 422, bad
        assert field in (await resp.json())["error"]["details"]["fields"], bad
    assert await conn.fetchval("SELECT count(*) FROM notes") == 0


async def test_bad_requests(client, make_staff, make_patient, make_booking, db_url):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    await login_as(client, gp, db_url)
    h = await api_headers(client)
    url = f"/api/v1/records/consultations/{booking}/notes"
    assert (await client.post(url, headers=h, data="{not json")).status == 400
    assert (await client.post(url, headers=h, json=[1])).status == 400
    resp = await client.post(url, headers=h, json={"patient_id": patient, "category": "x"})
    assert resp.status == 422
    resp = await client.post(url, headers=h, json={"patient_id": 99999999, "category": "gp"})
    assert resp.status == 422  # not this booking's patient
    # An unknown booking is refused like someone else's, and a guessed patient id on someone
    # else's booking gets the same answer as the right one: nothing can be probed.
    resp = await client.post("/api/v1/records/consultations/99999999/notes", headers=h,
                             json={"category": "gp"})
    assert resp.status == 403
    assert (await client.get("/api/v1/records/consultations/99999999/notes",
                             headers=h)).status == 403
    colleague = await make_staff(Role.GP, ("mazzini",))
    stranger = await make_patient("mazzini")
    theirs = f"/api/v1/records/consultations/{await make_booking(stranger, colleague.id)}/notes"
    for guess in (stranger, patient, 99999999):
        resp = await client.post(theirs, headers=h, json={"patient_id": guess, "category": "gp"})
        assert resp.status == 403, guess
        resp = await client.get(theirs, headers=h, params={"patient_id": str(guess)})
        assert resp.status == 403, guess
    # The editor refuses an unknown booking like someone else's: ids cannot be probed.
    assert (await client.get("/consultations/99999999/notes")).status == 403
    resp = await client.post(url, headers=h, json={"category": "gp"})
    assert resp.status == 201  # the patient comes from the booking
    assert (await client.get("/api/v1/records/notes/abc", headers=h)).status == 422
    assert (await client.get("/api/v1/records/notes/424242", headers=h)).status == 404
    # Without the CSRF header a browser write is refused.
    resp = await client.post(url, json={"patient_id": patient, "category": "gp"})
    assert resp.status == 403


async def test_booking_patient_cannot_be_switched(client, make_staff, make_patient, make_booking,
                                                  db_url):
    _gp, _patient, _note, h, booking = await _gp_with_note(client, make_staff, make_patient,
                                                       make_booking, db_url)
    other = await make_patient("san-siro")
    resp = await client.post(f"/api/v1/records/consultations/{booking}/notes", headers=h,
                             json={"patient_id": other, "category": "gp"})
    assert resp.status == 422


async def test_summary_link_lets_the_patient_read_the_summary_only(client, make_staff,
                                                                   make_patient, make_booking,
                                                                   db_url, conn):
    _gp, _patient, note_id, h, _booking = await _gp_with_note(client, make_staff, make_patient,
                                                       make_booking, db_url)
    resp = await client.post(f"/api/v1/records/notes/{note_id}/summary-link", headers=h)
    assert resp.status == 409  # not signed yet
    assert (await client.post(f"/api/v1/records/notes/{note_id}/sign", headers=h)).status == 200
    url = (await (await client.post(f"/api/v1/records/notes/{note_id}/summary-link",
                                    headers=h)).json())["url"]
    assert (await client.post("/logout", headers=h)).status == 200
    client.session.cookie_jar.clear()
    landing = await client.get(url, allow_redirects=False)
    assert landing.status == 303 and landing.headers["Location"] == "/summary"
    page = await client.get("/summary")
    text = await page.text()
    assert page.status == 200 and "rest and drink" in text and "viral bronchitis" not in text
    stored = await conn.fetchval("SELECT count(*) FROM summary_links WHERE token_hash = $1",
                                 url.rsplit("/", 1)[1].encode())
    assert stored == 0  # only the hash is stored
    client.session.cookie_jar.clear()
    assert (await client.get("/summary/not-a-real-token")).status == 404
    await conn.execute("UPDATE summary_links SET expires_at = now() - interval '1 s'")
    assert (await client.get(url)).status == 404
    row = await conn.fetchrow("SELECT actor_kind, detail->>'part' AS part FROM audit_log "
                              "WHERE actor_kind = 'patient'")
    assert row is not None and row["part"] == "summary"


async def test_call_page_panel_serves_the_editor_for_the_consultation(client, conn, make_staff,
                                                                      make_patient,
                                                                      make_booking, db_url):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    consultation = await conn.fetchval("SELECT id FROM consultations WHERE booking_id = $1",
                                       booking)
    await login_as(client, gp, db_url)
    resp = await client.get(f"/records/consultations/{consultation}/panel")
    text = await resp.text()
    assert resp.status == 200 and f'data-booking-id="{booking}"' in text
    assert "<html" not in text  # a fragment, for the panel beside the video
    assert (await client.get("/records/consultations/999999/panel")).status == 403
