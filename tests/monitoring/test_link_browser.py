"""Readings by link in Chromium on a 360 px phone: an implausible value refused on the phone
with the typed value kept; a reading typed with no connection kept on the phone (and only
there) until the connection is back, then sent and removed from the phone; a reading out of
range on the nurse's worklist within a second of being stored."""

from __future__ import annotations

import time
from typing import Any

from tests.browser.conftest import PHONE, fits_width, open_page, sign_in
from tests.browser.test_kiosk import LAPTOP
from tests.monitoring.conftest import Ward, enrol

OUTBOX = "() => localStorage.getItem('casa-monitor-outbox')"


async def test_readings_by_link_on_a_phone_reach_the_worklist(live: str, conn: Any, rec: Any,
                                                              ward: Ward, browser: Any) -> None:
    _, token = await enrol(conn, rec, ward.nurse, ward.patient)
    nurse = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(nurse, live, ward.nurse.email)
    await nurse.page.goto(live + "/monitoring")
    await nurse.page.wait_for_selector("#m-worklist")
    assert await nurse.page.locator("[data-alert]").count() == 0

    w = await open_page(browser, viewport=PHONE)
    await w.page.goto(f"{live}/m/{token}")
    await w.page.wait_for_function("() => location.pathname === '/m'")
    assert token not in w.page.url
    await fits_width(w)

    # An implausible value: refused on the phone, in the patient's words, the value kept.
    await w.page.fill("#f-systolic", "400")
    await w.page.fill("#f-diastolic", "90")
    await w.page.click("#m-form button[type=submit]")
    await w.page.wait_for_selector("#e-systolic:not([hidden])")
    assert await w.page.input_value("#f-systolic") == "400"
    assert await w.page.get_attribute("#f-systolic", "aria-invalid") == "true"
    assert await w.page.evaluate(OUTBOX) is None
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 0

    # No connection: kept on the phone, nothing reaches the server.
    await w.page.context.set_offline(True)
    await w.page.fill("#f-systolic", "186")
    await w.page.fill("#f-diastolic", "97")
    await w.page.fill("#f-heart_rate", "74")
    await w.page.click("#m-form button[type=submit]")
    await w.page.wait_for_selector("#m-pending:not([hidden])")
    kept = await w.page.evaluate(OUTBOX)
    assert kept is not None and '"systolic":186' in kept and '"heart_rate":74' in kept
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 0

    # Back online: sent, then gone from the phone.
    await w.page.context.set_offline(False)
    await w.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    await w.page.wait_for_function(f"() => {OUTBOX[6:]} === null")
    sent_at = time.monotonic()
    assert await w.page.is_hidden("#m-pending")
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 2
    assert "Grazie" in await w.page.inner_text("#m-status") or \
        "Thank" in await w.page.inner_text("#m-status")

    # The nurse's worklist has it within a second, without a reload.
    await nurse.page.wait_for_selector("[data-kind=out_of_range]", timeout=1000)
    assert time.monotonic() - sent_at < 1.0
    assert "Pressione arteriosa" in await nurse.page.inner_text("[data-kind=out_of_range]")
    # A reload of the phone's page leaves nothing behind and sends nothing twice.
    await w.page.reload()
    await w.page.wait_for_load_state("load")
    assert await w.page.evaluate(OUTBOX) is None
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 2
    w.assert_clean(allow=("net::ERR_INTERNET_DISCONNECTED", "Failed to fetch"))
    nurse.assert_clean()
