"""The booking page's invitation actions in headless Chromium at 360 px, by keyboard: the code
to read aloud fits the phone and is gone after Back and Forward; the printed invitation too."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.staff import Role
from tests.bookings.conftest import Api
from tests.bookings.test_join import book, soon
from tests.conftest import PASSWORD

STEP_MS = 10_000
PHONE = {"width": 360, "height": 740}


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport=PHONE, locale="it-IT")
    pg = await context.new_page()
    pg.set_default_timeout(STEP_MS)
    yield pg
    await context.close()


async def overflow(page: Any) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    return width


async def tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab until ``selector`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"{selector} never took the focus")


async def test_read_aloud_and_print_by_keyboard_at_phone_width(api: Api, page: Any,
                                                              make_staff: Any):
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    b, _token, old = await book(api, soon(5))
    base = str(api.client.make_url("")).rstrip("/")
    await page.goto(f"{base}/login")
    await page.fill("input[name=email]", coordinator.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{base}/home")

    await page.goto(f"{base}/bookings/{b['id']}")
    assert await overflow(page) == 0
    assert await page.locator("[data-channel=sms]").get_attribute("data-state") == "waiting"
    await tab_to(page, "button[value=phone]")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/bookings/{b['id']}/code")
    digits = await page.locator(".code-digits").inner_text()
    assert re.fullmatch(r"\d{3} \d{3}", digits) and digits.replace(" ", "") != old
    assert await overflow(page) == 0
    box = await page.locator(".code-digits").bounding_box()
    assert box is not None and box["height"] >= 40  # large enough to read from a distance
    # Back and Forward (from the back-forward cache or not: commit is all both report).
    await page.go_back(wait_until="commit")
    await page.wait_for_url(f"{base}/bookings/{b['id']}", wait_until="commit")
    await page.go_forward(wait_until="commit")
    await page.wait_for_url(f"{base}/bookings/{b['id']}/code", wait_until="commit")
    await page.wait_for_selector("text=già stato mostrato")
    assert await page.locator(".code-digits").count() == 0

    await page.goto(f"{base}/bookings/{b['id']}")
    await tab_to(page, "button[value=print]")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/bookings/{b['id']}/print")
    assert await page.locator("html").get_attribute("lang") == "it"
    assert re.fullmatch(r"\d{3} \d{3}", await page.locator(".code-digits").inner_text())
    assert await overflow(page) == 0
    await page.emulate_media(media="print")
    assert not await page.locator(".print-bar").is_visible()
    await page.emulate_media(media="screen")
    await page.reload()
    assert await page.locator(".code-digits").count() == 0
