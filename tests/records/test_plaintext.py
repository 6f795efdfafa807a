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
    assert resp.status == 201
    note_id = (await resp.json())["id"]
    # Every request must succeed: a refused one would store nothing, and the search below
    # would then pass without proving anything.
    steps = [
        ("PUT", f"/api/v1/records/notes/{note_id}/draft",
         {"content": {**MARKERS, "plan": MARKERS["plan"] + "-2"}}, 200),
        ("POST", f"/api/v1/records/notes/{note_id}/sign", None, 200),
        ("POST", f"/api/v1/records/notes/{note_id}/amend",
         {"reason": "PLAINTEXT-AMEND-REASON-7f3a"}, 201),
        ("POST", f"/api/v1/records/notes/{note_id}/summary-link", None, 201),
        ("GET", f"/patients/{patient}/record", None, 200),
        ("GET", f"/patients/{patient}/record.fhir.json", None, 200),
    ]
    for method, path, body, status in steps:
        reply = await client.request(method, path, headers=h, json=body)
        assert reply.status == status, (method, path, reply.status)
    # The text is there, readable through the application, and nowhere in plain below.
    view = await (await client.get(f"/api/v1/records/notes/{note_id}", headers=h)).json()
    assert view["versions"][0]["content"]["plan"] == MARKERS["plan"] + "-2"

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
