"""axe-core on the nurse console's pages at 360 px, in Italian and English (the module's
contexts bypass the CSP to inject axe, as in tests/browser/test_accessibility.py): no serious
or critical violation."""

from __future__ import annotations

from typing import Any

import pytest

from server.bookings import bookings
from server.staff import Role
from tests.browser.conftest import sign_in
from tests.browser.test_accessibility import Audit
from tests.factories import Factories
from tests.nurse.conftest import KioskDay


@pytest.mark.parametrize("lang", ["it", "en"])
async def test_the_console_pages_pass_axe(lang: str, live: str, day: KioskDay,
                                          factories: Factories, browser: Any) -> None:
    nurse = await factories.staff(Role.NURSE, ("san-siro",), language=lang)
    pool = await factories.pool()
    async with pool.acquire() as conn:   # she is the visit's nurse, in her language
        assert await bookings.set_nurse(conn, day.booking_id, nurse.id)
    audit = Audit(browser, live, lang)
    w = await audit.page()
    await sign_in(w, live, nurse.email)
    await w.page.goto(live + "/home")
    await audit.check(w, "home, nurse")
    await w.page.goto(live + "/nurse")
    await audit.check(w, "nurse console")
    await w.page.goto(f"{live}/nurse/bookings/{day.booking_id}")
    await audit.check(w, "kiosk visit, its nurse")
    # A refused form, shown on the page with its message.
    await w.page.fill("#m-heart_rate", "999")
    await w.page.click("#nc-save-measures")
    await w.page.wait_for_selector(".alert[role=alert]")
    await audit.check(w, "kiosk visit, refused measurements")
    assert not audit.found, "\n".join(audit.found)
    w.assert_clean(allow=("status of 4",))
