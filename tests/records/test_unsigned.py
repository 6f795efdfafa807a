"""Notes left as drafts: listed for their author (home page, dashboard, inbox, the call's end
page) until signed, never for anyone else, and found without decrypting anything."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from records import content, drafts
from records.access import Category
from records.service import Records
from server import staff as staff_store
from server.consultations import store
from server.staff import Role
from tests.records.conftest import login_as
from tests.records.test_editor_browser import sign_in_page

NOTE = content.parse({"reason": "cough", "text": "left as a draft"})


async def _draft(conn: asyncpg.Connection, rec: Records, author_id: int, patient: int,
                 booking: int, category: Category = Category.GP) -> int:
    author = await staff_store.get(conn, author_id)
    assert author is not None
    async with conn.transaction():
        note = await rec.create(conn, author, booking_id=booking, patient_id=patient,
                                category=category, content=NOTE)
    return note.id


async def test_a_draft_is_listed_for_its_author_until_signed(conn, rec, make_staff,
                                                             make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    other = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id, started=True)
    note_id = await _draft(conn, rec, gp.id, patient, booking)

    listed = await drafts.unsigned(conn, gp)
    assert [(d.note_id, d.booking_id, d.patient_id) for d in listed] == [
        (note_id, booking, patient)]
    assert listed[0].patient_name == "Test1 Paziente" and not listed[0].amendment
    assert listed[0].editor == f"/consultations/{booking}/notes"
    assert [d.note_id for d in await drafts.unsigned(conn, gp, booking)] == [note_id]
    assert await drafts.unsigned(conn, gp, booking + 1000) == []
    # A colleague of the same centre, even one caring for the patient, never sees it.
    assert await drafts.unsigned(conn, other) == []

    async with conn.transaction():
        await rec.sign(conn, gp, note_id)
    assert await drafts.unsigned(conn, gp) == []
    # An amendment opens a new draft: listed again, as a correction.
    async with conn.transaction():
        await rec.amend(conn, gp, note_id, "dose added")
    assert [(d.note_id, d.amendment) for d in await drafts.unsigned(conn, gp)] == [
        (note_id, True)]


async def test_the_list_decrypts_nothing(conn, rec, make_staff, make_patient, make_booking):
    """Metadata only: a draft whose data key is unreadable is still listed (nothing opened)."""
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, psy.id, started=True)
    note_id = await _draft(conn, rec, psy.id, patient, booking, Category.PSYCHOLOGICAL)
    await conn.execute("UPDATE note_versions SET ciphertext = '\\x00'::bytea WHERE note_id = $1",
                       note_id)
    assert [d.note_id for d in await drafts.unsigned(conn, psy)] == [note_id]


async def test_home_dashboard_and_inbox_show_the_authors_drafts_only(
        client: TestClient[Any, Any], conn, rec, make_staff, make_patient, make_booking,
        db_url):
    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    other = await make_staff(Role.GP, ("san-siro",), language="en")
    patient = await make_patient("san-siro")
    first = await make_booking(patient, gp.id, started=True)
    second = await make_booking(patient, gp.id, started=True)
    await _draft(conn, rec, gp.id, patient, first)
    note_two = await _draft(conn, rec, gp.id, patient, second)

    await login_as(client, gp, db_url)
    for path in ("/home", "/dashboard", "/records/inbox"):
        html = await (await client.get(path)).text()
        assert "Notes to sign: 2" in html, path
        assert f'href="/consultations/{first}/notes"' in html, path
        assert f'href="/consultations/{second}/notes"' in html, path
    inbox = await (await client.get("/records/inbox")).text()
    assert "Nothing new." not in inbox

    async with conn.transaction():
        await rec.sign(conn, gp, note_two)
    html = await (await client.get("/home")).text()
    assert "Notes to sign: 1" in html and f"/consultations/{second}/notes" not in html

    client.session.cookie_jar.clear()
    await login_as(client, other, db_url)
    for path in ("/home", "/dashboard", "/records/inbox"):
        html = await (await client.get(path)).text()
        assert "to sign" not in html and "/notes\"" not in html, path


async def test_end_of_call_count_is_the_clinicians_own(client, conn, rec, make_staff,
                                                       make_patient, make_booking, db_url):
    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    other = await make_staff(Role.GP, ("san-siro",), language="en")
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id, started=True)
    c = await store.get_by_booking(conn, booking)
    assert c is not None
    note_id = await _draft(conn, rec, gp.id, patient, booking)
    await login_as(client, gp, db_url)
    url = f"/records/consultations/{c.id}/unsigned"
    assert await (await client.get(url)).json() == {"unsigned": 1}
    # An unknown consultation answers like one without drafts.
    assert await (await client.get("/records/consultations/999999/unsigned")).json() == {
        "unsigned": 0}
    async with conn.transaction():
        await rec.sign(conn, gp, note_id)
    assert await (await client.get(url)).json() == {"unsigned": 0}
    async with conn.transaction():
        await rec.amend(conn, gp, note_id, "typo")
    client.session.cookie_jar.clear()
    await login_as(client, other, db_url)
    assert await (await client.get(url)).json() == {"unsigned": 0}



async def test_the_call_end_page_reminds_the_clinician_in_the_browser(
        client, browser, conn, rec, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id, started=True)
    c = await store.get_by_booking(conn, booking)
    assert c is not None
    note_id = await _draft(conn, rec, gp.id, patient, booking)
    await store.record_event(conn, c.id, "ended", staff_id=gp.id)
    page = await browser.new_page()
    page.set_default_timeout(10_000)
    base = str(client.make_url("")).rstrip("/")
    try:
        await sign_in_page(page, base, gp.email)
        await page.goto(f"{base}/consultation/{c.room_id}")
        await page.wait_for_selector("#stage-ended:not([hidden]) #note-reminder:not([hidden])")
        assert "Your note is not signed yet." in await page.inner_text("#note-reminder")
        await page.click("#note-reminder-sign")
        await page.wait_for_url(f"{base}/consultations/{booking}/notes")

        async with conn.transaction():
            await rec.sign(conn, gp, note_id)
        await page.goto(f"{base}/consultation/{c.room_id}")
        # Once records has answered, the reminder stays hidden.
        await page.wait_for_selector("#note-reminder[data-checked]", state="attached")
        assert await page.is_visible("#stage-ended") and await page.is_hidden("#note-reminder")
    finally:
        await page.close()
