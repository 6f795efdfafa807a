"""Break-glass: a reason is required, the read is audit-logged, the author is told."""

from __future__ import annotations

import secrets

from records import content
from records.access import Category
from server.staff import Role
from tests.conftest import csrf_token, post_refused
from tests.records.conftest import api_headers, login_as


async def test_break_glass_is_logged_and_the_author_sees_it(client, conn, rec, make_staff,
                                                           make_patient, make_booking,
                                                           db_url):
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, psy.id, "violence_support")
    note = await rec.create(conn, psy, booking_id=booking, patient_id=patient,
                            category=Category.VIOLENCE_SUPPORT,
                            content=content.parse({"assessment": "SECRET-ASSESSMENT"}))
    await rec.sign(conn, psy, note.id)

    await login_as(client, gp, db_url)
    page = await (await client.get(f"/patients/{patient}/record")).text()
    assert "SECRET-ASSESSMENT" not in page and "violen" not in page.lower()
    assert f"/records/notes/{note.id}/break-glass" in page
    h = await api_headers(client)
    resp = await client.get(f"/api/v1/records/notes/{note.id}", headers=h)
    assert resp.status == 403
    token = await csrf_token(client, f"/patients/{patient}/record")
    # Refused: back to the record page saying why, without the reason typed.
    typed = "Rx" + secrets.token_hex(3)  # under 10 characters
    refused = await post_refused(client, f"/records/notes/{note.id}/break-glass",
                                 {"reason": typed, "csrf_token": token,
                                  "patient": str(patient)}, typed=(typed,))
    assert refused.status == 422 and refused.location == f"/patients/{patient}/record"
    assert "10" in refused.html and 'role="alert"' in refused.html
    resp = await client.post(f"/records/notes/{note.id}/break-glass",
                             data={"reason": "Patient in A&E, unresponsive; need history",
                                   "csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    page = await (await client.get(f"/patients/{patient}/record")).text()
    assert "SECRET-ASSESSMENT" in page

    rows = await conn.fetch("SELECT action, actor_staff_id FROM audit_log "
                            "WHERE action = 'break_glass'")
    assert [(r["action"], r["actor_staff_id"]) for r in rows] == [("break_glass", gp.id)]
    # The reason is for the author, not for the audit log (which admins read).
    detail = await conn.fetchval("SELECT detail::text FROM audit_log WHERE action = "
                                 "'break_glass'")
    assert "A&E" not in detail

    await client.post("/logout", headers=h)
    await login_as(client, psy, db_url)
    inbox = await (await client.get("/records/inbox")).text()
    assert "A&amp;E, unresponsive" in inbox and f"#note-{note.id}" in inbox


async def test_coordinators_and_admins_see_no_clinical_pages(client, make_staff, make_patient,
                                                             db_url):
    patient = await make_patient("san-siro")
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    await login_as(client, coordinator, db_url)
    for url in (f"/patients/{patient}/record", f"/patients/{patient}/record.fhir.json",
                f"/patients/{patient}/record/print", "/consultations/1/notes",
                "/admin/audit"):
        resp = await client.get(url, allow_redirects=False)
        assert resp.status == 403, url


async def test_author_shares_and_makes_a_summary_link_from_the_record_page(
        client, conn, rec, make_staff, make_patient, make_booking, db_url):
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    colleague = await make_staff(Role.GP, ("mazzini",))
    patient = await make_patient("san-siro")
    note = await rec.create(conn, psy, booking_id=await make_booking(patient, psy.id,
                                                                     "psych_session"),
                            patient_id=patient, category=Category.PSYCHOLOGICAL,
                            content=content.parse({"summary": "Talk again next week."}))
    await rec.sign(conn, psy, note.id)
    await login_as(client, psy, db_url)
    page = await (await client.get(f"/patients/{patient}/record")).text()
    assert f'<option value="{colleague.id}">' in page
    token = await csrf_token(client, f"/patients/{patient}/record")
    resp = await client.post(f"/records/notes/{note.id}/share",
                             data={"staff_id": str(colleague.id), "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303
    assert await conn.fetchval("SELECT staff_id FROM note_shares WHERE note_id = $1",
                               note.id) == colleague.id
    refused = await post_refused(client, f"/records/notes/{note.id}/share",
                                 {"staff_id": "abc", "csrf_token": token,
                                  "patient": str(patient)})
    assert refused.status == 422
    resp = await client.post(f"/records/notes/{note.id}/summary-link",
                             data={"csrf_token": token})
    text = await resp.text()
    assert resp.status == 200 and "/summary/" in text
    # The colleague may now read it, even without caring for the patient.
    assert (await rec.read(conn, colleague, note.id)).readable


async def test_a_restricted_draft_is_not_offered_for_break_glass(client, conn, rec, make_staff,
                                                                 make_patient, make_booking,
                                                                 db_url):
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, psy.id, "violence_support")
    note = await rec.create(conn, psy, booking_id=booking, patient_id=patient,
                            category=Category.VIOLENCE_SUPPORT,
                            content=content.parse({"assessment": "DRAFT-ONLY"}))
    await login_as(client, gp, db_url)
    page = await (await client.get(f"/patients/{patient}/record")).text()
    # Breaking the glass on a draft would open nothing, notify the author for nothing, and
    # tell the GP that a draft exists.
    assert f"/records/notes/{note.id}/break-glass" not in page
    token = await csrf_token(client, f"/patients/{patient}/record")
    reason = "Patient in A&E, unresponsive; " + secrets.token_hex(5)
    refused = await post_refused(client, f"/records/notes/{note.id}/break-glass",
                                 {"reason": reason, "csrf_token": token,
                                  "patient": str(patient)}, typed=(reason,))
    assert refused.status == 409
    # Without the record page to go back to (a client that is not the page), still refused.
    resp = await client.post(f"/records/notes/{note.id}/break-glass",
                             data={"reason": reason, "csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 409
    assert await conn.fetchval("SELECT count(*) FROM break_glass") == 0
    assert await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'break_glass'") == 0


async def test_break_glass_reason_is_sealed_in_the_database_and_read_by_the_author(
        client, conn, rec, make_staff, make_patient, make_booking, db_url):
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    gp = await make_staff(Role.GP, ("san-siro",))
    admin = await make_staff(Role.ADMIN, ("san-siro",))
    patient = await make_patient("san-siro")
    note = await rec.create(conn, psy, booking_id=await make_booking(patient, psy.id,
                                                                     "violence_support"),
                            patient_id=patient, category=Category.VIOLENCE_SUPPORT,
                            content=content.parse({"text": "x"}))
    await rec.sign(conn, psy, note.id)
    reason = "REASON-PLAINTEXT-3e1d: partner threatened her again, she is in A&E"

    await login_as(client, gp, db_url)
    h = await api_headers(client)
    resp = await client.post(f"/api/v1/records/notes/{note.id}/break-glass", headers=h,
                             json={"reason": reason})
    assert resp.status in (200, 204), await resp.text()

    found = []
    for table in [r["relname"] for r in await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE relkind = 'r' AND nspname = 'public'")]:
        texts = [r["row"] for r in await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')]
        for b in await conn.fetch("SELECT column_name FROM information_schema.columns "
                                  "WHERE table_name = $1 AND data_type = 'bytea'", table):
            texts += [bytes(v or b"").decode("latin-1") for v in await conn.fetchval(
                f'SELECT array_agg("{b["column_name"]}") FROM "{table}"') or []]
        found += [table for t in texts if "REASON-PLAINTEXT-" in t]
    assert not found, f"break-glass reason in plaintext in {set(found)}"

    await client.post("/logout", headers=h)
    client.session.cookie_jar.clear()
    await login_as(client, psy, db_url)  # the author, who is told
    inbox = await (await client.get("/records/inbox")).text()
    assert "REASON-PLAINTEXT-3e1d: partner threatened her again, she is in A&amp;E" in inbox

    # Erasing the patient's notes erases the reason too.
    async with conn.transaction():
        await rec.erase_patient(conn, admin, patient, "patient_request")
    inbox = await (await client.get("/records/inbox")).text()
    assert "REASON-PLAINTEXT-3e1d" not in inbox
