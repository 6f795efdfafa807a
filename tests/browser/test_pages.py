"""The call pages without a call: join by code, the refusals, the pre-call check, the
dashboard, and each page at 360 px with no console error or CSP violation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from server.config import Config
from server.consultations.store import new_room_id
from server.staff import Role
from tests.browser.conftest import (
    Visit,
    book,
    enter_code,
    fits_width,
    open_page,
    sign_in,
    wrong_code,
)
from tests.conftest import StaffFactory


async def test_code_and_date_of_birth_open_the_precall_check(live: str, visit: Visit,
                                                              browser: Any) -> None:
    w = await open_page(browser)
    await w.page.goto(live + "/join")
    await enter_code(w, visit.code)
    await w.page.wait_for_url(f"**/consultation/{visit.room}")
    await w.page.wait_for_selector("#stage-precall:not([hidden])")
    # The fake camera shows, the fake microphone's beep moves the meter.
    await w.page.wait_for_selector("#camera-result[data-state=ok]")
    await w.page.wait_for_selector("#mic-result[data-state=ok]")
    assert visit.gp_name in await w.page.inner_text("#stage-precall")
    await fits_width(w)
    w.assert_clean()


async def test_wrong_code_is_refused_on_the_form(live: str, visit: Visit, browser: Any) -> None:
    w = await open_page(browser)
    await w.page.goto(live + "/join")
    await enter_code(w, wrong_code(visit.code))
    await w.page.wait_for_load_state()
    assert w.page.url.endswith("/join")
    assert await w.page.locator("#stage-precall").count() == 0
    # The code is not echoed back into the form.
    assert await w.page.input_value("#code") == ""
    await fits_width(w)


async def test_expired_link_says_so(live: str, conn: asyncpg.Connection, config: Config,
                                    make_staff: StaffFactory, browser: Any) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, link, _ = await book(config, gp.id, timedelta(hours=-3))
    w = await open_page(browser)
    resp = await w.page.goto(f"{live}/join/{link}")
    assert resp is not None and resp.status == 410
    assert room not in w.page.url
    await fits_width(w)


async def test_too_early_shows_when_to_come_back(live: str, conn: asyncpg.Connection,
                                                 config: Config, make_staff: StaffFactory,
                                                 browser: Any) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, cid, _, link, _ = await book(config, gp.id, timedelta(hours=3))
    opens = await conn.fetchval(
        "SELECT to_char(join_opens_at AT TIME ZONE 'Europe/Rome', 'HH24:MI') FROM consultations"
        " WHERE id = $1", cid)
    w = await open_page(browser)
    await w.page.goto(f"{live}/join/{link}")
    assert opens in await w.page.inner_text("main")
    await fits_width(w)
    w.assert_clean()


async def test_visitor_without_credential_is_told_how_to_join(live: str, visit: Visit,
                                                              browser: Any) -> None:
    w = await open_page(browser)
    await w.page.goto(f"{live}/consultation/{visit.room}")
    await w.page.wait_for_selector("#stage-visitor:not([hidden])")
    text = await w.page.inner_text("main")
    assert visit.gp_name not in text and visit.patient_name not in text
    await fits_width(w)
    w.assert_clean()


async def test_unknown_room_is_not_found(live: str, browser: Any) -> None:
    w = await open_page(browser)
    # A room id of the shape the app makes, that no consultation has: looked up, not found.
    resp = await w.page.goto(f"{live}/consultation/{new_room_id()}")
    assert resp is not None and resp.status == 404
    # One of another shape is no room of ours, refused before any lookup, alike.
    resp = await w.page.goto(f"{live}/consultation/no-such-room")
    assert resp is not None and resp.status == 404


async def test_standalone_precall_check(live: str, browser: Any) -> None:
    w = await open_page(browser, locale="en-GB")
    await w.page.goto(live + "/precall")
    await w.page.wait_for_selector("#camera-result[data-state=ok]")
    await w.page.wait_for_selector("#mic-result[data-state=ok]")
    await w.page.click("#speaker-play")
    await w.page.click("#speaker-yes")
    assert await w.page.get_attribute("#speaker-result", "data-state") == "ok"
    await fits_width(w)
    w.assert_clean()


async def test_dashboard_lists_todays_consultations(live: str, visit: Visit,
                                                    browser: Any) -> None:
    w = await open_page(browser)
    await sign_in(w, live, visit.gp_email)
    await w.page.goto(live + "/home")
    await w.page.click("a[href='/dashboard']")
    await w.page.wait_for_selector(f".consultation[data-room='{visit.room}']")
    text = await w.page.inner_text("#consultations")
    assert visit.patient_name in text
    # The patient's language by name in the page's language, not as a code.
    lang = await w.page.get_attribute("html", "lang")
    assert ("Italian" if lang == "en" else "italiano") in text and "· it\n" not in text
    await fits_width(w)
    w.assert_clean()


async def test_dashboard_is_for_clinicians_only(live: str, make_staff: StaffFactory,
                                                browser: Any) -> None:
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    w = await open_page(browser)
    await sign_in(w, live, coordinator.email)
    resp = await w.page.goto(live + "/dashboard")
    assert resp is not None and resp.status == 403


async def test_refused_camera_explains_and_lets_the_patient_go_on_with_sound(
        live: str, visit: Visit) -> None:
    from playwright.async_api import async_playwright

    from tests.browser.conftest import PHONE, Watched
    from tests.chromium import CHROMIUM, CHROMIUM_ARGS

    # A browser that really asks: only the microphone is allowed, the camera is refused.
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as p:
        b: Any = await p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = await b.new_context(viewport=PHONE, locale="en-GB",
                                          permissions=["microphone"])
            w = Watched(await context.new_page())
            await w.page.goto(f"{live}/join/{visit.link}")
            await w.page.wait_for_selector("#camera-result[data-state=warn]")
            # In the patient's booked language (Italian), whatever the browser's own.
            assert "Consenta la videocamera" in await w.page.inner_text("#camera-result")
            await w.page.click("#camera-help summary")
            assert "Autorizzazioni" in await w.page.inner_text("#camera-help")
            await w.page.click("#precall-audio-only")
            await w.page.wait_for_selector("#stage-waiting:not([hidden])")
            await fits_width(w)
            w.assert_clean()
        finally:
            await b.close()
