"""The patient's personal link: the form in her language at the link itself, a session cookie
of its own (HttpOnly), readings sent with it, and the link and its sessions refused once
replaced, revoked or past the plan's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.monitoring import links, plans, service
from tests.conftest import csrf_token
from tests.monitoring.conftest import enrol


async def _open(client: Any, link: str) -> Any:
    resp = await client.get(link)
    return resp


async def _send(client: Any, body: dict[str, Any]) -> Any:
    token = await csrf_token(client, "/m")
    return await client.post("/m/reading", json=body, headers={
        "X-CSRF-Token": token, "Accept": "application/json"})


async def test_the_link_opens_the_form_and_readings_are_stored(client, conn, rec, ward):
    await conn.execute("UPDATE patients SET language = 'ro' WHERE id = $1", ward.patient)
    _, token = await enrol(conn, rec, ward.nurse, ward.patient)
    resp = await _open(client, f"/m/{token}")
    page = await resp.text()
    assert resp.status == 200 and '<meta name="casa-address" content="/m">' in page
    assert resp.headers["Referrer-Policy"] == "strict-origin"
    assert 'lang="ro"' in page and token not in page
    cookie = resp.cookies[links.COOKIE]
    assert cookie["httponly"] and cookie.value != token
    assert 'name="systolic"' in page and 'name="heart_rate"' in page and 'name="glucose"' \
        not in page
    # The form again at its clean address, with the session alone.
    again = await client.get("/m")
    assert again.status == 200 and 'name="systolic"' in await again.text()

    stored = await _send(client, {"measurement": "blood_pressure",
                                  "values": {"systolic": 182, "diastolic": 90},
                                  "client_ref": "6f1c1e4e-1111-4a4a-9999-000000000001"})
    assert stored.status == 201, await stored.text()
    twice = await _send(client, {"measurement": "blood_pressure",
                                 "values": {"systolic": 182, "diastolic": 90},
                                 "client_ref": "6f1c1e4e-1111-4a4a-9999-000000000001"})
    assert twice.status == 201
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 1
    assert await conn.fetchval("SELECT source FROM monitoring_readings") == "home"
    rows = await service.worklist(conn, ward.nurse)
    assert [(r.alert.kind, r.alert.measurement) for r in rows] == [
        ("out_of_range", "blood_pressure")]
    refused = await _send(client, {"measurement": "blood_pressure",
                                   "values": {"systolic": 900, "diastolic": 90}})
    assert refused.status == 422
    assert (await refused.json())["error"]["details"]["fields"] == {
        "systolic": "between 50 and 260 mm[Hg]"}


async def test_the_plain_form_without_script(client, conn, rec, ward):
    _, token = await enrol(conn, rec, ward.nurse, ward.patient)
    await _open(client, f"/m/{token}")
    csrf = await csrf_token(client, "/m")
    resp = await client.post("/m/readings", data={"csrf_token": csrf, "systolic": "130",
                                                   "diastolic": "80", "heart_rate": ""},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/m"
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 1
    bad = await client.post("/m/readings", data={"csrf_token": csrf, "heart_rate": "7"},
                            allow_redirects=False)
    assert bad.status == 303
    page = await (await client.get("/m")).text()
    assert 'aria-invalid="true"' in page and "25" in page and "250" in page


async def test_a_replaced_or_revoked_link_and_its_sessions_stop_working(client, conn, rec,
                                                                       ward):
    plan, token = await enrol(conn, rec, ward.nurse, ward.patient)
    await _open(client, f"/m/{token}")
    async with conn.transaction():
        fresh = await service.new_link(conn, rec, ward.nurse, plan.id, datetime.now(UTC))
    assert (await client.get(f"/m/{token}")).status == 410
    assert (await client.get("/m")).status == 410  # the old link's session went with it
    assert (await _open(client, f"/m/{fresh}")).status == 200
    async with conn.transaction():
        await service.revoke_link(conn, rec, ward.nurse, plan.id, datetime.now(UTC))
    assert (await client.get(f"/m/{fresh}")).status == 410
    assert (await client.get("/m")).status == 410
    resp = await _send(client, {"measurement": "heart_rate", "values": {"heart_rate": 70}})
    assert resp.status == 401
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 0


async def test_the_link_expires_with_the_plan(client, conn, rec, ward):
    start = datetime.now(UTC) - timedelta(days=10)
    plan, token = await enrol(conn, rec, ward.nurse, ward.patient, now=start,
                              ends_on=(start + timedelta(days=3)).date())
    assert plan.ends_at < datetime.now(UTC)
    assert (await client.get(f"/m/{token}")).status == 410
    # A plan ended early (a new one) takes its link with it, even before its end date.
    plan2, token2 = await enrol(conn, rec, ward.nurse, ward.patient)
    assert (await client.get(f"/m/{token2}")).status == 200
    async with conn.transaction():
        await plans.end(conn, plan2.id, datetime.now(UTC))
    assert (await client.get("/m")).status == 410
    assert (await client.get(f"/m/{token2}")).status == 410
