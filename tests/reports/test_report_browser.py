"""The report in Chromium on a 360 px phone: the coordinator reaches it from her home page by
keyboard, chooses a period and a centre with the keyboard alone, and the page never scrolls
sideways (wide tables scroll inside their own frame, which takes the focus)."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import PHONE, fits_width, open_page, sign_in
from tests.browser.test_kiosk import tab_to
from tests.reports.conftest import Seed


async def test_a_coordinator_reads_the_report_on_her_phone_by_keyboard(
        live: str, seed: Seed, browser: Any) -> None:
    assert seed.coordinator is not None
    w = await open_page(browser, viewport=PHONE, locale="en-GB")
    await sign_in(w, live, seed.coordinator.email)
    await w.page.goto(live + "/home")
    await tab_to(w, "a[href='/reports/activity']")
    await w.page.keyboard.press("Enter")
    await w.page.wait_for_url(f"{live}/reports/activity")
    await w.page.wait_for_selector("figure.chart")
    await fits_width(w)

    # The period and the centre by keyboard: type the dates, pick the centre, send.
    # (Headless Chromium's date field takes month, day and year in turn, whatever the page's
    # locale: its own interface is in US English.)
    await tab_to(w, "#report-from")
    await w.page.keyboard.type("11012026")
    await tab_to(w, "#report-to")
    await w.page.keyboard.type("11302026")
    assert await w.page.input_value("#report-from") == "2026-11-01"
    assert await w.page.input_value("#report-to") == "2026-11-30"
    await tab_to(w, "#report-centre")
    await w.page.keyboard.press("ArrowDown")
    await tab_to(w, ".report-filter button[type=submit]")
    await w.page.keyboard.press("Enter")
    await w.page.wait_for_url("**/reports/activity?from=2026-11-01&to=2026-11-30&centre=san-siro")
    await w.page.wait_for_selector("table[data-table='mode.activity']")
    assert await w.page.inner_text(
        "table[data-table='mode.activity'] tr[data-row='home_video'] td[data-col='bookings']"
    ) == "17"
    bars = await w.page.locator("figure[data-chart='mode.activity'] rect.bar-fill").count()
    assert bars >= 1
    await fits_width(w)
    # A wide table scrolls inside its frame, which the keyboard reaches.
    await tab_to(w, ".table-wrap")
    wide = await w.page.evaluate(
        "() => { const t = document.activeElement; return t.scrollWidth > t.clientWidth; }")
    assert wide
    await w.page.keyboard.press("ArrowRight")
    await w.page.wait_for_function("() => document.activeElement.scrollLeft > 0",
                                   timeout=5_000)
    await fits_width(w)
    w.assert_clean()
