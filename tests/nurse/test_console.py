"""The nurse console over HTTP, against the real app and PostgreSQL: what it lists, check-in,
"I am with the patient", measurements into the record (encrypted, audited, read by the GP),
joining the call's room, handing over and leaving; and a nurse of another centre refused
everything."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import csrf_token, login
from tests.nurse.conftest import KioskDay

BP = {"m-bp_systolic": "130", "m-bp_diastolic": "85", "m-heart_rate": "72",
      "m-glucose": "5.5", "u-glucose": "mmol/L"}


@pytest.fixture
async def other(client: TestClient[Any, Any]) -> AsyncIterator[aiohttp.ClientSession]:
    """A second person's browser on the same app (its own cookies)."""
    async with aiohttp.ClientSession(base_url=str(client.make_url("")),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def signed_in(client: Any, email: str) -> str:
    resp = await login(client, email)
    assert resp.status == 303
    return await csrf_token(client, "/home")


async def post(client: Any, token: str, path: str,
               data: dict[str, str] | None = None) -> Any:
    return await client.post(path, data={"csrf_token": token, **(data or {})},
                             allow_redirects=False)


async def state_of(client: TestClient[Any, Any], booking_id: int) -> dict[str, Any]:
    resp = await client.get("/nurse/state", headers={"Accept": "application/json"})
    assert resp.status == 200
    found = [b for b in (await resp.json())["bookings"] if b["id"] == booking_id]
    assert len(found) == 1
    return dict(found[0])


async def audit_actions(conn: asyncpg.Connection, booking_id: int) -> list[tuple[str, int]]:
    return [(r["action"], r["actor_staff_id"]) for r in await conn.fetch(
        "SELECT action, actor_staff_id FROM audit_log WHERE booking_id = $1 ORDER BY id",
        booking_id)]


async def test_the_console_lists_todays_kiosk_visits_of_her_centres(
        client: TestClient[Any, Any], day: KioskDay) -> None:
    await signed_in(client, day.nurse.email)
    home = await (await client.get("/home")).text()
    assert re.search(r'<a [^>]*id="open-console"[^>]*href="/nurse"', home), \
        "the console is one click from the nurse's home page"
    page = await client.get("/nurse")
    assert page.status == 200
    html = await page.text()
    assert "Kioskova" in html and "Gino Doctor" in html
    assert "Homebody" not in html, "a home video visit is not the kiosk's"
    assert "Faraway" not in html, "another centre's kiosk visit"
    assert f'href="/consultation/{day.consultation.room_id}"' in html  # her own: join
    assert f'data-kiosk="{day.kiosk_id}"' in html
    assert (await state_of(client, day.booking_id))["state"] == "not_arrived"


async def test_check_in_from_the_console(client: TestClient[Any, Any], conn: asyncpg.Connection,
                                         day: KioskDay) -> None:
    token = await signed_in(client, day.colleague.email)
    resp = await post(client, token, f"/nurse/bookings/{day.booking_id}/check-in")
    assert resp.status == 303
    assert resp.headers["Location"] == f"/nurse/bookings/{day.booking_id}"
    shown = await (await client.get(resp.headers["Location"])).text()
    assert "The patient is checked in." in shown
    row = await conn.fetchrow("SELECT to_status, by_staff_id FROM booking_status_changes"
                              " WHERE booking_id = $1 ORDER BY id DESC LIMIT 1", day.booking_id)
    assert dict(row) == {"to_status": "checked-in", "by_staff_id": day.colleague.id}
    assert (await state_of(client, day.booking_id))["state"] == "checked_in"
    # Twice is refused (the lifecycle), back on the booking's page.
    again = await post(client, token, f"/nurse/bookings/{day.booking_id}/check-in")
    assert again.status == 303


async def test_nurse_present_is_kept_on_the_consultation_and_audited(
        client: TestClient[Any, Any], conn: asyncpg.Connection, day: KioskDay) -> None:
    token = await signed_in(client, day.nurse.email)
    resp = await post(client, token, f"/nurse/bookings/{day.booking_id}/present")
    assert resp.status == 303
    by = await conn.fetchval("SELECT nurse_present_by FROM consultations WHERE id = $1",
                             day.consultation.id)
    assert by == day.nurse.id
    assert ("nurse_present", day.nurse.id) in await audit_actions(conn, day.booking_id)
    assert (await state_of(client, day.booking_id))["nurse_present"] is True


async def test_only_the_bookings_nurse_declares_herself_present_or_measures(
        client: TestClient[Any, Any], conn: asyncpg.Connection, day: KioskDay) -> None:
    token = await signed_in(client, day.colleague.email)
    for action, data in (("present", None), ("measurements", BP), ("leave", None)):
        resp = await post(client, token, f"/nurse/bookings/{day.booking_id}/{action}", data)
        assert resp.status == 303   # back to the page, refused
        shown = await client.get(resp.headers["Location"])
        assert shown.status == 403, action
    assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    assert await conn.fetchval("SELECT nurse_present_at FROM consultations WHERE id = $1",
                               day.consultation.id) is None


async def test_measurements_go_into_the_record_and_the_gp_reads_them(
        client: TestClient[Any, Any], other: aiohttp.ClientSession, conn: asyncpg.Connection,
        day: KioskDay) -> None:
    token = await signed_in(client, day.nurse.email)
    path = f"/nurse/bookings/{day.booking_id}/measurements"
    # The nurse checks the patient in herself: no witness yet that the patient came (a
    # booking of one's own is not care), so nothing can be written.
    await post(client, token, f"/nurse/bookings/{day.booking_id}/check-in")
    refused = await post(client, token, path, BP)
    shown = await client.get(refused.headers["Location"])
    assert shown.status == 403 and "a colleague checked her in" in await shown.text()
    # The patient enters the waiting room from the kiosk with her code: she came.
    await conn.execute("UPDATE consultations SET first_arrived_at = now() WHERE id = $1",
                       day.consultation.id)
    # Nonsense is refused with the field named, nothing typed is carried back.
    bad = await post(client, token, path, {"m-heart_rate": "710"})
    bad_page = await client.get(bad.headers["Location"])
    assert bad_page.status == 422
    assert "Heart rate: not a number, or outside the possible range." in await bad_page.text()
    empty = await post(client, token, path, {"m-spo2": ""})
    assert (await client.get(empty.headers["Location"])).status == 422
    assert await conn.fetchval("SELECT count(*) FROM notes") == 0

    ok = await post(client, token, path, BP)
    assert ok.status == 303
    assert "The measurements are in" in await (await client.get(ok.headers["Location"])).text()
    note = await conn.fetchrow("SELECT id, category::text AS category, author_id FROM notes"
                               " WHERE booking_id = $1", day.booking_id)
    assert note["category"] == "nurse" and note["author_id"] == day.nurse.id
    # Encrypted: the value is nowhere in the row's plain columns.
    raw = await conn.fetchval("SELECT string_agg(v::text, '') FROM note_versions v"
                              " WHERE note_id = $1", note["id"])
    assert "bp_systolic" not in raw and "mm[Hg]" not in raw
    actions = await audit_actions(conn, day.booking_id)
    assert ("write", day.nurse.id) in actions and ("sign", day.nurse.id) in actions

    # The GP, in the call's notes panel and through the API.
    gp = other
    gp_token = await signed_in(gp, day.gp.email)
    panel = await gp.get(f"/records/consultations/{day.consultation.id}/panel")
    assert panel.status == 200
    html = await panel.text()
    assert "Nursing" in html and "Blood pressure, systolic: 130 mmHg" in html
    assert "Blood glucose: 5.5 mmol/L" in html
    api = await gp.get(f"/api/v1/records/consultations/{day.booking_id}/notes",
                       headers={"Accept": "application/json", "X-CSRF-Token": gp_token})
    notes = (await api.json())["notes"]
    measured = notes[0]["versions"][-1]["content"]["measurements"]
    assert json.dumps(measured).count("bp_") == 2
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'read'"
                               " AND actor_staff_id = $1 AND patient_id = $2",
                               day.gp.id, day.patient_id) == 2


async def test_the_nurse_enters_the_calls_room_from_her_own_device(
        client: TestClient[Any, Any], day: KioskDay) -> None:
    await signed_in(client, day.nurse.email)
    page = await client.get(f"/consultation/{day.consultation.room_id}")
    assert page.status == 200 and 'id="notes-panel"' in await page.text()  # as staff
    async with client.ws_connect("/ws") as ws:
        await ws.send_str(json.dumps({"type": "hello", "version": 1,
                                      "room": day.consultation.room_id}))
        frame = json.loads((await ws.receive(timeout=10)).data)
    assert frame["type"] == "welcome", frame


async def test_hand_over_to_a_colleague_then_leave(
        client: TestClient[Any, Any], other: aiohttp.ClientSession, conn: asyncpg.Connection,
        day: KioskDay) -> None:
    token = await signed_in(client, day.nurse.email)
    await post(client, token, f"/nurse/bookings/{day.booking_id}/present")
    # Not to a nurse of another centre.
    wrong = await post(client, token, f"/nurse/bookings/{day.booking_id}/handover",
                       {"nurse_id": str(day.stranger.id)})
    assert (await client.get(wrong.headers["Location"])).status == 422
    resp = await post(client, token, f"/nurse/bookings/{day.booking_id}/handover",
                      {"nurse_id": str(day.colleague.id)})
    assert resp.status == 303
    assert await conn.fetchval("SELECT nurse_id FROM bookings WHERE id = $1",
                               day.booking_id) == day.colleague.id
    # Her declaration went with her; the colleague makes her own.
    assert await conn.fetchval("SELECT nurse_present_at FROM consultations WHERE id = $1",
                               day.consultation.id) is None
    detail = await conn.fetchval("SELECT detail::text FROM audit_log WHERE booking_id = $1"
                                 " AND action = 'nurse_handover'", day.booking_id)
    assert json.loads(detail) == {"from_nurse": day.nurse.id, "to_nurse": day.colleague.id}
    # She is no longer this visit's nurse.
    again = await post(client, token, f"/nurse/bookings/{day.booking_id}/present")
    assert (await client.get(again.headers["Location"])).status == 403

    colleague = other
    c_token = await signed_in(colleague, day.colleague.email)
    left = await post(colleague, c_token, f"/nurse/bookings/{day.booking_id}/leave")
    assert left.status == 303 and left.headers["Location"] == "/nurse"
    assert await conn.fetchval("SELECT nurse_id FROM bookings WHERE id = $1",
                               day.booking_id) is None
    assert ("nurse_left", day.colleague.id) in await audit_actions(conn, day.booking_id)


async def test_a_coordinator_of_the_centre_assigns_a_nurse(
        client: TestClient[Any, Any], conn: asyncpg.Connection, day: KioskDay) -> None:
    token = await signed_in(client, day.coordinator.email)
    assert 'href="/nurse"' in await (await client.get("/home")).text()
    assert "Kioskova" in await (await client.get("/nurse")).text()
    resp = await post(client, token, f"/nurse/bookings/{day.booking_id}/handover",
                      {"nurse_id": str(day.colleague.id)})
    assert resp.status == 303
    assert await conn.fetchval("SELECT nurse_id FROM bookings WHERE id = $1",
                               day.booking_id) == day.colleague.id
    # Coordinators see no clinical content: no measurements.
    refused = await post(client, token, f"/nurse/bookings/{day.booking_id}/measurements", BP)
    assert refused.status == 303
    assert (await client.get(refused.headers["Location"])).status == 403
    assert await conn.fetchval("SELECT count(*) FROM notes") == 0


async def test_a_nurse_of_another_centre_gets_nothing(
        client: TestClient[Any, Any], conn: asyncpg.Connection, day: KioskDay) -> None:
    token = await signed_in(client, day.stranger.email)
    html = await (await client.get("/nurse")).text()
    assert "Kioskova" not in html and "Faraway" in html   # her own centre's only
    assert (await client.get(f"/nurse/bookings/{day.booking_id}")).status == 404
    state = await (await client.get("/nurse/state")).json()
    assert day.booking_id not in [b["id"] for b in state["bookings"]]
    for action, data in (("check-in", None), ("present", None), ("measurements", BP),
                         ("handover", {"nurse_id": str(day.stranger.id)}), ("leave", None)):
        resp = await post(client, token, f"/nurse/bookings/{day.booking_id}/{action}", data)
        assert resp.status == 404, action
    # Unknown ids look the same.
    assert (await post(client, token, "/nurse/bookings/999999999/check-in")).status == 404
    # The call: the page shows her nothing of it, and its room refuses her.
    page = await (await client.get(f"/consultation/{day.consultation.room_id}")).text()
    assert "Kioskova" not in page and 'id="notes-panel"' not in page
    async with client.ws_connect("/ws") as ws:
        await ws.send_str(json.dumps({"type": "hello", "version": 1,
                                      "room": day.consultation.room_id}))
        frame = json.loads((await ws.receive(timeout=10)).data)
    assert frame["type"] == "error" and frame["code"] == "room_not_found", frame
    # Nothing changed.
    b = await conn.fetchrow("SELECT status, nurse_id FROM bookings WHERE id = $1",
                            day.booking_id)
    assert dict(b) == {"status": "booked", "nurse_id": day.nurse.id}
    assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    assert await audit_actions(conn, day.booking_id) == []


async def test_other_roles_have_no_console(client: TestClient[Any, Any], day: KioskDay) -> None:
    await signed_in(client, day.gp.email)
    assert (await client.get("/nurse")).status == 403
    assert (await client.get(f"/nurse/bookings/{day.booking_id}")).status == 403
