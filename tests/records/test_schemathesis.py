"""Property-based fuzzing of the records API under /api/v1 with a clinician's bearer token: no
5xx on any operation (the same run as the bookings API's, ``tests.bookings.test_schemathesis``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg

from server.bookings import tokens
from server.staff import Role
from tests.bookings.test_schemathesis import BUDGET_S, fuzz
from tests.records.test_notes_api import NOTE


async def test_records_api_by_bearer_token_and_fuzzed_has_no_server_error(
        client: Any, make_staff: Any, make_patient: Any, make_booking: Any,
        db_url: str) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    conn = await asyncpg.connect(db_url)
    try:
        _id, token = await tokens.create(conn, gp.id, "test")
    finally:
        await conn.close()
    bearer = {"Authorization": f"Bearer {token}"}
    # The token alone opens the API (no session, no CSRF token): the clinician writes a note.
    made = await client.post(f"/api/v1/records/consultations/{booking}/notes", headers=bearer,
                             json={"category": "gp", "content": NOTE})
    assert made.status == 201, await made.text()
    note = (await made.json())["id"]
    got = await client.get(f"/api/v1/records/notes/{note}", headers=bearer)
    assert got.status == 200 and (await got.json())["versions"][0]["content"]["plan"]
    refused = await client.get(f"/api/v1/records/notes/{note}",
                               headers={"Authorization": "Bearer casa_not-a-token"})
    assert refused.status == 401

    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert any(path.startswith("/records/") for path in doc["paths"])
    base = str(client.make_url("/api/v1"))
    calls: list[int] = []
    failures = await asyncio.wait_for(
        asyncio.to_thread(fuzz, doc, base, bearer, calls), timeout=BUDGET_S + 30)
    assert failures == []
    assert len(calls) > 50, "schemathesis made too few calls to mean anything"
    print("schemathesis statuses:", sorted(Counter(calls).items()))
