"""An admin runs staff accounts in Chromium at 360 px, by keyboard where a person would type:
adds a GP, who chooses her password through the one-time link and signs in; disabling her
refuses her open session at its next request; resetting another admin's second factor sends
him to enrol again. Then axe on every new page (accounts, the password page, the patient page
with its corrections)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest

from server import staff as staff_store
from server.auth import totp
from server.staff import Role
from tests.browser.conftest import Watched, fits_width, open_page, sign_in
from tests.browser.test_accessibility import Audit
from tests.conftest import PASSWORD, SECRET_KEY, StaffFactory
from tests.records.conftest import PatientFactory

SIGN_IN_MS = 30_000
LINK = re.compile(r"https?://\S+/account/password/[A-Za-z0-9_-]+")


async def admin_with_totp(make_staff: StaffFactory, db_url: str) -> tuple[Any, bytes]:
    admin = await make_staff(Role.ADMIN, ())
    secret = totp.new_secret()
    conn = await asyncpg.connect(db_url)
    try:
        await staff_store.set_totp(conn, admin.id, totp.seal(secret, SECRET_KEY, admin.id))
    finally:
        await conn.close()
    return admin, secret


async def password_step(w: Watched, live: str, email: str) -> None:
    await w.page.goto(live + "/login")
    await w.page.fill("#email", email)
    await w.page.fill("#password", PASSWORD)
    await w.page.keyboard.press("Enter")


async def sign_in_admin(w: Watched, live: str, email: str, secret: bytes) -> None:
    await password_step(w, live, email)
    # A password check waits its turn in the checkers' queue: on a loaded machine, seconds.
    await w.page.wait_for_url("**/login/totp", timeout=SIGN_IN_MS)
    await w.page.fill("#code", totp.current_code(secret))
    await w.page.keyboard.press("Enter")
    await w.page.wait_for_url("**/home")


async def add_gp(w: Watched, live: str) -> str:
    """Through the pages, by keyboard: the one-time link shown for the new account."""
    await w.page.goto(live + "/home")
    await w.page.click("a[href='/admin/users']")
    await w.page.click("a[href='/admin/users/new']")
    await w.page.fill("#n-name", "Ada Rossi")
    await w.page.keyboard.press("Tab")
    await w.page.keyboard.type("ada@x.example")
    await w.page.select_option("#n-role", "gp")
    await w.page.check("input[name=centres][value=san-siro]")
    await w.page.click("form[action='/admin/users/new'] button[type=submit]")
    await w.page.wait_for_selector("#password-link")
    await fits_width(w)
    found = LINK.search(await w.page.inner_text("#password-link"))
    assert found
    return found.group(0)


@pytest.mark.timeout(180)
async def test_an_admin_adds_disables_and_resets_in_the_browser(live: str, browser: Any,
                                                                make_staff: StaffFactory,
                                                                db_url: str) -> None:
    admin, secret = await admin_with_totp(make_staff, db_url)
    other_admin, _other_secret = await admin_with_totp(make_staff, db_url)
    w = await open_page(browser)
    await sign_in_admin(w, live, admin.email, secret)
    link = await add_gp(w, live)

    # Ada, on her phone: the link, her own password, then in.
    ada = await open_page(browser)
    await ada.page.goto(link)
    await ada.page.wait_for_url("**/account/password")
    chosen = "three unrelated words"
    await ada.page.fill("#p-new", chosen)
    await ada.page.fill("#p-again", chosen)
    await ada.page.keyboard.press("Enter")
    await ada.page.wait_for_url("**/login")
    await ada.page.fill("#email", "ada@x.example")
    await ada.page.fill("#password", chosen)
    await ada.page.keyboard.press("Enter")
    await ada.page.wait_for_url("**/home", timeout=SIGN_IN_MS)

    # The admin disables her: her next request is refused, at once.
    await w.page.wait_for_selector("#set-active button.danger")
    await w.page.click("#set-active button.danger")
    await w.page.wait_for_selector("[data-done=disabled]")
    await ada.page.goto(live + "/bookings/today")
    assert "/login" in ada.page.url
    await ada.page.fill("#email", "ada@x.example")
    await ada.page.fill("#password", chosen)
    await ada.page.keyboard.press("Enter")
    await ada.page.wait_for_selector(".alert, [role=alert]")
    assert "/login" in ada.page.url

    # The other admin lost his phone: his second factor is reset; he must enrol again.
    him = await open_page(browser)
    await sign_in_admin(him, live, other_admin.email, _other_secret)
    await w.page.goto(f"{live}/admin/users/{other_admin.id}")
    assert await w.page.inner_text("[data-session] td") != ""
    await w.page.click("#reset-totp button")
    await w.page.wait_for_selector("[data-done=totp]")
    await him.page.goto(live + "/home")
    assert "/login" in him.page.url
    await password_step(him, live, other_admin.email)
    await him.page.wait_for_url("**/account/totp", timeout=SIGN_IN_MS)
    for page in (w, ada, him):
        page.assert_clean(allow=("status of 4",))
    assert PASSWORD not in await w.page.content()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("lang", ["it", "en"])
async def test_the_new_pages_pass_axe(lang: str, live: str, browser: Any,
                                      make_staff: StaffFactory, make_patient: PatientFactory,
                                      db_url: str) -> None:
    admin, secret = await admin_with_totp(make_staff, db_url)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("UPDATE staff SET language = $2 WHERE id = $1", admin.id, lang)
    finally:
        await conn.close()
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",), language=lang)
    patient = await make_patient("san-siro")
    audit = Audit(browser, live, lang)
    w = await audit.page()
    await sign_in_admin(w, live, admin.email, secret)
    await audit.check(w, "home, admin")
    link = await add_gp(w, live)
    await audit.check(w, "staff account, link shown")
    await w.page.goto(live + "/admin/users")
    await audit.check(w, "staff accounts")
    await w.page.goto(live + "/admin/users/new")
    await audit.check(w, "add a member of staff")
    await w.page.goto(f"{live}/admin/users/{admin.id}")
    await w.page.click("#set-active button")
    await w.page.wait_for_selector(".alert[role=alert]")
    await audit.check(w, "staff account, refused (last admin)")
    await w.page.goto(live + "/admin/records/erase")
    await audit.check(w, "erase, with its hint")
    them = await audit.page()
    await them.page.goto(link)
    await them.page.wait_for_url("**/account/password")
    await audit.check(them, "choose a password")
    co = await audit.page()
    await sign_in(co, live, coordinator.email)
    await co.page.goto(f"{live}/bookings/patients/{patient}")
    await co.page.click("details.correct summary")
    await audit.check(co, "patient, corrections open")
    assert not audit.found, "\n".join(audit.found)
