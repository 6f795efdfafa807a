"""A patient at a centre kiosk, by keyboard alone at 360 px: the code, the check, "a nurse is
with me", the waiting room; the clinician's dashboard and call page learn that a nurse is
there, and still know after the kiosk page is reloaded; a closed kiosk tab shows as a kept
place, not a patient to admit."""

from __future__ import annotations

from typing import Any

import asyncpg

from server.config import Config
from server.staff import Role
from tests.browser.conftest import DOB, Watched, book, fits_width, open_page, sign_in, soon
from tests.conftest import StaffFactory

LAPTOP = {"width": 1280, "height": 800}
# More than any page of ours has before the control we look for; a control that Tab never
# reaches fails the test instead of looping.
MAX_TABS = 40


async def tab_to(w: Watched, selector: str) -> None:
    """Press Tab until ``selector`` has the focus (it must be reachable by keyboard) and is
    shown with a visible focus outline."""
    for _ in range(MAX_TABS):
        await w.page.keyboard.press("Tab")
        if await w.page.evaluate("(sel) => document.activeElement.matches(sel)", selector):
            outline = await w.page.evaluate(
                "() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"{selector} has the focus but shows no outline"
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


async def type_into(w: Watched, selector: str, text: str) -> None:
    await tab_to(w, selector)
    await w.page.keyboard.type(text)


async def test_kiosk_patient_by_keyboard_tells_the_clinician_a_nurse_is_there(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    kiosk = await conn.fetchval("INSERT INTO resources (centre_id, kind, name)"
                                " VALUES ('san-siro', 'kiosk', 'Kiosk 1') RETURNING id")
    _, _, room, _, code = await book(config, gp.id, soon(), mode="kiosk_video",
                                     kiosk_id=kiosk)

    # The kiosk: a phone-sized screen and a keyboard, in Italian.
    k = await open_page(browser)
    await k.page.goto(live + "/join")
    await type_into(k, "#code", code)
    await type_into(k, "#day", str(DOB.day))
    await type_into(k, "#month", str(DOB.month))
    await type_into(k, "#year", str(DOB.year))
    await k.page.keyboard.press("Enter")
    await k.page.wait_for_url(f"**/consultation/{room}")
    await k.page.wait_for_selector("#stage-precall:not([hidden])")
    await k.page.wait_for_selector("#camera-result[data-state=ok]")
    assert await k.page.is_visible("#nurse-present")
    await fits_width(k)
    await tab_to(k, "#nurse-present")
    await k.page.keyboard.press("Space")
    assert await k.page.is_checked("#nurse-present")
    # The tick box is big enough to hit on a touch screen too.
    box = await k.page.locator("label:has(#nurse-present)").bounding_box()
    assert box is not None and box["height"] >= 44
    await tab_to(k, "#precall-continue")
    await k.page.keyboard.press("Enter")
    await k.page.wait_for_selector("#stage-waiting:not([hidden])")
    # The stage's heading takes the focus, so a screen reader says where the patient is.
    assert await k.page.evaluate("() => document.activeElement.id") == "waiting-title"
    await fits_width(k)

    # The clinician's dashboard says so, in the clinician's language.
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, gp.email)
    await doc.page.goto(live + "/dashboard")
    row = f".consultation[data-room='{room}']"
    await doc.page.wait_for_selector(f"{row}[data-state=waiting]")
    await doc.page.wait_for_function(
        "(sel) => document.querySelector(sel).textContent.includes('nurse present')", arg=row)
    # And so does the waiting room panel on the call page.
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    item = "#waiting-list li.waiting"
    await doc.page.wait_for_selector(item)
    assert "from a kiosk" in await doc.page.inner_text(item)
    assert "nurse present" in await doc.page.inner_text(item)

    # The kiosk page is reloaded (the check is skipped): the clinician still knows.
    await k.page.reload()
    await k.page.wait_for_selector("#stage-waiting:not([hidden])")
    await doc.page.wait_for_function(
        "() => [...document.querySelectorAll('#waiting-list li.waiting')]"
        ".some((li) => li.textContent.includes('nurse present'))")
    # The kiosk's tab is closed by mistake: the clinician sees the place kept, not a patient
    # to admit; the patient opens the consultation again and is back in the waiting room.
    kiosk_context = k.page.context
    k.assert_clean()
    await k.page.close()
    await doc.page.wait_for_selector(f"{item}[data-state=away] .admit[disabled]")
    assert "Connection lost" in await doc.page.inner_text(item)
    k = Watched(await kiosk_context.new_page())
    await k.page.goto(f"{live}/consultation/{room}")
    await k.page.click("#precall-continue")
    await k.page.wait_for_selector("#stage-waiting:not([hidden])")
    await doc.page.wait_for_selector(f"{item}[data-state=waiting] .admit:not([disabled])")
    await doc.page.click(f"{item} .admit")
    await k.page.wait_for_selector("#stage-call:not([hidden])")
    await fits_width(k)
    k.assert_clean()
    doc.assert_clean()
