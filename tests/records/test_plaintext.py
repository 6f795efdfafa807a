"""The raw database holds no plaintext of any note field."""

from __future__ import annotations

from server.staff import Role
from tests.records.conftest import api_headers, login_as

MARKERS = {f: f"PLAINTEXT-{f.upper()}-7f3a" for f in
           ("reason", "assessment", "plan", "text", "summary")}


async def test_no_column_of_any_table_contains_note_text(client, conn, make_staff, make_patient,
                                                         make_booking, db_url):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    await login_as(client, gp, db_url)
    h = await api_headers(client)
    resp = await client.post(f"/api/v1/records/consultations/{booking}/notes", headers=h, json={
        "patient_id": patient, "category": "gp", "content": MARKERS})
    note_id = (await resp.json())["id"]
    await client.put(f"/api/v1/records/notes/{note_id}/draft", headers=h,
                     json={"content": {**MARKERS, "plan": MARKERS["plan"] + "-2"}})
    await client.post(f"/api/v1/records/notes/{note_id}/sign", headers=h)
    await client.post(f"/api/v1/records/notes/{note_id}/amend", headers=h,
                      json={"reason": "PLAINTEXT-AMEND-REASON-7f3a"})
    await client.post(f"/api/v1/records/notes/{note_id}/summary-link", headers=h)
    await client.get(f"/patients/{patient}/record")
    await client.get(f"/patients/{patient}/record.fhir.json")

    tables = [r["relname"] for r in await conn.fetch(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE relkind = 'r' AND nspname = 'public'")]
    assert {"notes", "note_versions", "audit_log"} <= set(tables)
    found = []
    for table in tables:
        # Every column as text (bytea as its escape form, so ASCII inside it shows too).
        rows = await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
        blobs = await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = $1 AND data_type = 'bytea'", table)
        texts = [r["row"] for r in rows]
        for b in blobs:
            texts += [bytes(v or b"").decode("latin-1") for v in await conn.fetchval(
                f'SELECT array_agg("{b["column_name"]}") FROM "{table}"') or []]
        # The search is for "PLAINTEXT-", not the short suffix: bytea shows in row text as hex,
        # where any four hex digits turn up by chance in a few kilobytes of ciphertext.
        found += [table for t in texts if "PLAINTEXT-" in t]
    assert not found, f"plaintext found in {set(found)}"
    # And the note still reads back through the records layer.
    body = await (await client.get(f"/api/v1/records/notes/{note_id}", headers=h)).json()
    assert body["versions"][1]["content"]["amend_reason"] == "PLAINTEXT-AMEND-REASON-7f3a"
