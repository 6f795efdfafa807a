"""Admit from the dashboard: a clinician who passed the device check today on this device lets
the patient in with one click, straight into the call; otherwise (first time today, or a day
remembered from before) the check comes first, as it always did."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import Visit, open_page, sign_in

MEDIA_MS = 20_000
LAPTOP = {"width": 1280, "height": 800}


async def test_admit_goes_straight_in_once_the_check_was_passed_today(
        live: str, visit: Visit, browser: Any) -> None:
    doc = await open_page(browser, viewport=LAPTOP)
    await sign_in(doc, live, visit.gp_email)
    patient = await open_page(browser)
    await patient.page.goto(f"{live}/join/{visit.link}")
    await patient.page.wait_for_url(f"**/consultation/{visit.room}")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    row = f".consultation[data-room='{visit.room}']"

    # A day remembered from before is not today: the check comes first.
    await doc.page.goto(live + "/dashboard")
    await doc.page.evaluate("localStorage.setItem('casa.devicecheck', '2000-1-1')")
    await doc.page.click(f"{row}[data-state=waiting] .admit")
    await doc.page.wait_for_selector("#stage-precall:not([hidden])")
    await doc.page.wait_for_selector("#camera-result[data-state=ok]")
    assert await patient.page.is_visible("#stage-waiting")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    # What is kept: the day, nothing else.
    kept = await doc.page.evaluate("JSON.stringify(Object.entries(localStorage))")
    assert re.fullmatch(r'\[\["casa\.devicecheck","\d{4}-\d{1,2}-\d{1,2}"\]\]', kept), kept

    # Sent back to the waiting room. The clinician opens the dashboard in a new tab (nothing
    # kept for the tab, only the day on the device) and admits again: one click, and both
    # are in the call without the check.
    await doc.page.click("#waiting-list button.send-back")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    tab = await doc.page.context.new_page()
    await doc.page.close()
    await tab.goto(live + "/dashboard")
    await tab.click(f"{row}[data-state=waiting] .admit")
    await tab.wait_for_selector("#stage-call:not([hidden])")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    assert await tab.is_hidden("#stage-precall")
    await patient.page.wait_for_selector("#remotes .tile video", timeout=MEDIA_MS)
    patient.assert_clean()
