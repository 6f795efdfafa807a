"""The nurse console in Chromium with a fake camera: a kiosk patient waits; the nurse, on a
360 px phone and by keyboard, opens the console from her home page, sees the patient at the
kiosk, declares herself present (the GP's dashboard and call page show it at once), enters
blood pressure and heart rate (the GP reads them in the call's notes panel), and joins the
call from her own phone."""

from __future__ import annotations

from typing import Any

from server.config import Config
from tests.browser.conftest import DOB, PHONE, fits_width, open_page, sign_in
from tests.browser.test_kiosk import LAPTOP, tab_to, type_into
from tests.nurse.conftest import KioskDay


async def test_a_nurse_runs_a_kiosk_visit_from_her_phone(
        live: str, config: Config, day: KioskDay, browser: Any) -> None:
    room = day.consultation.room_id
    # The patient at the kiosk, with her code; she does not tick "a nurse is with me".
    k = await open_page(browser)
    await k.page.goto(live + "/join")
    await k.page.fill("#code", day.code)
    await k.page.fill("#day", str(DOB.day))
    await k.page.fill("#month", str(DOB.month))
    await k.page.fill("#year", str(DOB.year))
    await k.page.keyboard.press("Enter")
    await k.page.wait_for_url(f"**/consultation/{room}")
    await k.page.wait_for_selector("#camera-result[data-state=ok]")
    await k.page.click("#precall-continue")
    await k.page.wait_for_selector("#stage-waiting:not([hidden])")

    # The GP's dashboard: waiting, no nurse yet.
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, day.gp.email)
    await doc.page.goto(live + "/dashboard")
    row = f".consultation[data-room='{room}']"
    await doc.page.wait_for_selector(f"{row}[data-state=waiting]")
    assert "nurse present" not in await doc.page.inner_text(row)

    # The nurse's phone: home, one click to the console.
    n = await open_page(browser, viewport=PHONE, locale="en-GB")
    await sign_in(n, live, day.nurse.email)
    await n.page.goto(live + "/home")
    await tab_to(n, "#open-console")
    await n.page.keyboard.press("Enter")
    await n.page.wait_for_url(f"{live}/nurse")
    card = f"li[data-booking='{day.booking_id}']"
    await n.page.wait_for_selector(f"{card} [data-state=waiting]")
    assert "Kioskova" in await n.page.inner_text(f"li[data-kiosk='{day.kiosk_id}']")
    await fits_width(n)
    await tab_to(n, f"{card} .nc-present-button")
    await n.page.keyboard.press("Enter")
    await n.page.wait_for_selector("#nc-done")

    # The GP sees it without reloading, on the dashboard, then in the call page's panel.
    await doc.page.wait_for_function(
        "(sel) => document.querySelector(sel).textContent.includes('nurse present')", arg=row)

    # Blood pressure and heart rate, by keyboard, into the record.
    await fits_width(n)
    await type_into(n, "#m-bp_systolic", "132")
    await type_into(n, "#m-bp_diastolic", "84")
    await type_into(n, "#m-heart_rate", "76")
    await tab_to(n, "#nc-save-measures")
    await n.page.keyboard.press("Enter")
    await n.page.wait_for_selector("#nc-done")
    assert "record" in await n.page.inner_text("#nc-done")

    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    item = "#waiting-list li.waiting"
    await doc.page.wait_for_selector(item)
    assert "nurse present" in await doc.page.inner_text(item)
    measures = "#notes-panel .note-list .measurements"
    await doc.page.wait_for_selector(measures)
    text = await doc.page.inner_text(measures)
    assert "Blood pressure, systolic: 132 mmHg" in text and "Heart rate: 76" in text
    await doc.page.click(f"{item} .admit")
    await k.page.wait_for_selector("#stage-call:not([hidden])")

    # The nurse joins from her phone, as staff: straight into the call.
    await n.page.goto(f"{live}/nurse")
    await tab_to(n, f"{card} .nc-join")
    await n.page.keyboard.press("Enter")
    await n.page.wait_for_url(f"**/consultation/{room}")
    await n.page.click("#precall-continue")
    await n.page.wait_for_selector("#stage-call:not([hidden])")
    await fits_width(n)
    # The console shows the patient in the call.
    await n.page.goto(f"{live}/nurse")
    assert await n.page.get_attribute(f"{card} [data-state-of]", "data-state") == "in_call"
    for w in (k, doc, n):
        w.assert_clean()


async def test_the_console_refreshes_states_by_itself(
        live: str, day: KioskDay, browser: Any) -> None:
    n = await open_page(browser, locale="en-GB")
    await sign_in(n, live, day.nurse.email)
    await n.page.goto(f"{live}/nurse")
    state = f"[data-state-of='{day.booking_id}']"
    assert await n.page.get_attribute(state, "data-state") == "not_arrived"
    # A colleague checks the patient in elsewhere: the open console follows.
    c = await open_page(browser, locale="en-GB")
    await sign_in(c, live, day.colleague.email)
    await c.page.goto(f"{live}/nurse/bookings/{day.booking_id}")
    await c.page.click(".nc-check-in")
    await c.page.wait_for_selector("#nc-done")
    await n.page.wait_for_selector(f"{state}[data-state=checked_in]", timeout=15_000)
    assert await n.page.inner_text(state) == "Checked in"
    n.assert_clean()
    c.assert_clean()

