"""axe-core on the activity report at 360 px, in Italian and English (contexts bypass the CSP
to inject axe, as in tests/browser/test_accessibility.py): no serious or critical violation."""

from __future__ import annotations

from typing import Any

import pytest

from server.staff import Role
from tests.browser.conftest import sign_in
from tests.browser.test_accessibility import Audit
from tests.factories import Factories
from tests.reports.conftest import QUERY, Seed


@pytest.mark.parametrize("lang", ["it", "en"])
async def test_the_report_passes_axe(lang: str, live: str, seed: Seed, factories: Factories,
                                     browser: Any) -> None:
    coordinator = await factories.staff(Role.COORDINATOR, ("san-siro",), language=lang)
    audit = Audit(browser, live, lang)
    w = await audit.page()
    await sign_in(w, live, coordinator.email)
    await w.page.goto(live + "/home")
    await audit.check(w, "home, coordinator")
    await w.page.goto(f"{live}/reports/activity?{QUERY}")
    await w.page.wait_for_selector("table[data-table='language.patients']")
    await audit.check(w, "activity report")
    assert not audit.found, "\n".join(audit.found)
    w.assert_clean()
