"""axe-core on the tele-monitoring pages at 360 px (the module's contexts bypass the CSP to
inject axe, as in tests/browser/test_accessibility.py): the patient's readings form in
Italian, English and Arabic, with a refused value shown; the worklist and the patient's page
for the nurse. No serious or critical violation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from server.monitoring import service
from tests.browser.conftest import sign_in
from tests.browser.test_accessibility import Audit
from tests.monitoring.conftest import Ward, enrol


@pytest.mark.parametrize("lang", ["it", "en", "ar"])
async def test_the_readings_form_passes_axe(lang: str, live: str, conn: Any, rec: Any,
                                            ward: Ward, browser: Any) -> None:
    await conn.execute("UPDATE patients SET language = $2 WHERE id = $1", ward.patient, lang)
    _, token = await enrol(conn, rec, ward.nurse, ward.patient, conditions=(
        "heart_failure", "diabetes"))
    audit = Audit(browser, live, lang)
    w = await audit.page()
    await w.page.goto(f"{live}/m/{token}")
    await audit.check(w, "readings form")
    await w.page.fill("#f-glucose", "5000")
    await w.page.click("#m-form button[type=submit]")
    await w.page.wait_for_selector("#e-glucose:not([hidden])")
    await audit.check(w, "readings form, a value refused")
    assert not audit.found, "\n".join(audit.found)
    w.assert_clean()


async def test_the_staff_pages_pass_axe(live: str, conn: Any, rec: Any, ward: Ward,
                                        browser: Any) -> None:
    plan, _ = await enrol(conn, rec, ward.nurse, ward.patient)
    async with conn.transaction():
        await service.submit_by_staff(
            conn, rec, ward.nurse, plan.id, measurement="blood_pressure",
            values={"systolic": 171, "diastolic": 99}, text=None, measured_at=None,
            source="nurse", now=datetime.now(UTC))
    audit = Audit(browser, live, "it")
    w = await audit.page()
    await sign_in(w, live, ward.nurse.email)
    await w.page.goto(live + "/monitoring")
    await audit.check(w, "worklist")
    await w.page.goto(f"{live}/monitoring/patients/{ward.patient}")
    await audit.check(w, "the patient's monitoring")
    assert not audit.found, "\n".join(audit.found)
    w.assert_clean()
