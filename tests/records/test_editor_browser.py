"""The note editor in a real browser: autosave via fetch with the CSRF header, then sign."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from server.staff import Role
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        await b.close()


async def test_autosave_then_sign_in_the_browser(client, browser, conn, make_staff,
                                                 make_patient, make_booking):
    nurse = await make_staff(Role.NURSE, ("san-siro",), language="en")
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, nurse.id, "nurse_visit")
    page = await browser.new_page()
    page.set_default_timeout(10_000)
    base = str(client.make_url("")).rstrip("/")
    await page.goto(f"{base}/login")
    await page.fill("input[name=email]", nurse.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{base}/home")
    await page.goto(f"{base}/consultations/{booking}/notes")
    await page.fill("#note-reason", "Kiosk check")
    await page.fill("#m-heart_rate", "71")
    await page.wait_for_selector("[data-save-state]:has-text('Draft saved')")
    note = await conn.fetchrow("SELECT id, category::text AS c FROM notes WHERE booking_id = $1",
                               booking)
    assert note is not None and note["c"] == "nurse"
    # An implausible value is refused and explained; nothing is lost from the draft.
    await page.fill("#m-heart_rate", "710")
    await page.click("[data-save]")
    await page.wait_for_selector("[data-save-error]:not([hidden])")
    await page.fill("#m-heart_rate", "72")
    page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await page.click("[data-sign]")
    for _ in range(100):
        if await conn.fetchval("SELECT status FROM note_versions WHERE note_id = $1",
                               note["id"]) == "signed":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("note was not signed")
    await page.wait_for_selector("[data-amend-form]")
    await page.close()
