"""Bookings pages in headless Chromium at phone width: nothing overflows 360 px, the booking
form refreshes its choices by itself, and a slot is booked with the keyboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.staff import Role
from tests.bookings.conftest import Api
from tests.conftest import PASSWORD

STEP_MS = 10_000
PHONE = {"width": 360, "height": 740}



@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=PHONE, locale="it-IT")
    pg = await context.new_page()
    pg.set_default_timeout(STEP_MS)
    yield pg


async def overflow(page: Any) -> int:
    """How many pixels the page is wider than the screen (0 when it fits)."""
    width: int = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return width


async def test_pages_fit_a_phone_and_the_form_books_by_keyboard(api: Api, page: Any,
                                                                make_staff: Any):
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    await api.world.conn.execute(
        "INSERT INTO availability (staff_id, centre_id, weekday, starts, ends)"
        " SELECT $1, 'san-siro', d, '09:00', '12:00' FROM generate_series(0, 6) d",
        api.world.gp)
    # The form finds only the coordinator's patients: make Maria one of San Siro's.
    await api.world.conn.execute("UPDATE patients SET home_centre_id = 'san-siro' WHERE id = $1",
                                 api.world.patient)
    base = str(api.client.make_url("")).rstrip("/")
    await page.goto(f"{base}/join")
    assert await overflow(page) == 0
    await page.goto(f"{base}/login")
    await page.fill("input[name=email]", coordinator.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{base}/home")
    day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert (await api.post("/api/v1/bookings", api.booking_body(
        datetime.fromisoformat(f"{day}T09:00:00+01:00"), patient_id=api.world.patient2))
            ).status == 201
    for path in (f"/bookings/calendar?centre=san-siro&day={day}",
                 f"/bookings/calendar?centre=san-siro&day={day}&view=week",
                 "/bookings/new", "/bookings/availability", "/bookings/patients?q=Rossi"):
        await page.goto(base + path)
        assert await overflow(page) == 0, path
    # Patient search, then choices that refresh themselves (bookings.js), then a slot.
    await page.goto(f"{base}/bookings/new")
    await page.fill("#q", "Maria")
    await page.press("#q", "Enter")
    await page.click(f"a[href^='/bookings/new?patient={api.world.patient}&']")
    await page.fill("#day", day)
    await page.dispatch_event("#day", "change")
    await page.wait_for_url(f"**day={day}**")
    await page.select_option("#service", "gp_visit")
    await page.wait_for_selector("input[name=slot]")
    assert await overflow(page) == 0
    await page.focus("button.primary.big")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert "/bookings/" in page.url and "/new" not in page.url
    booked = await api.world.conn.fetchval(
        "SELECT count(*) FROM bookings WHERE patient_id = $1", api.world.patient)
    assert booked == 1
