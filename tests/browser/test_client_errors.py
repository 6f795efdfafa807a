"""The shared browser code in real Chromium: a page's uncaught errors reach the server
(client-errors.js -> POST /api/v1/client-errors) and its metric, without what the message said
about anyone; a page's words come from its data-strings blocks."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from server.staff import Role
from tests.browser.conftest import Visit, open_page, sign_in
from tests.conftest import StaffFactory
from web.i18n import Catalogues

ENDPOINT = "/api/v1/client-errors"


async def client_errors(live: str, page: str, name: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(live + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    prefix = f'casa_client_errors_total{{name="{name}",page="{page}"}} '
    found = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(found[0][len(prefix):]) if found else 0.0


def is_report(response: Any) -> bool:
    return bool(response.url.endswith(ENDPOINT) and response.request.method == "POST")


async def test_a_thrown_error_and_a_rejection_are_reported_and_counted(live: str,
                                                                       browser: Any) -> None:
    w = await open_page(browser)
    try:
        await w.page.goto(live + "/precall")
        await w.page.wait_for_selector("#camera-result[data-state=ok]")
        assert await client_errors(live, "precall", "TypeError") == 0.0

        async with w.page.expect_response(is_report) as thrown:
            await w.page.evaluate("""() => { setTimeout(() => {
                throw new TypeError("Cannot read properties of undefined (reading 'Maria "
                                    + "Bianchi') 3331234567 g_Zx8Qv4mT2LpWn7RkYc3HsJ");
            }); }""")
        response = await thrown.value
        assert response.status == 204
        sent = json.loads(response.request.post_data)
        assert sent["page"] == "precall" and sent["name"] == "TypeError"
        assert sent["message"].startswith("Cannot read properties of undefined")
        for piece in ("Maria", "Bianchi", "333", "g_Zx8"):
            assert piece not in json.dumps(sent), piece
        assert await client_errors(live, "precall", "TypeError") == 1.0

        async with w.page.expect_response(is_report) as rejected:
            await w.page.evaluate("() => { Promise.reject(new RangeError('out of range')); }")
        assert (await rejected.value).status == 204
        assert await client_errors(live, "precall", "RangeError") == 1.0
    finally:
        await w.page.context.close()


async def test_the_cancel_question_comes_from_the_pages_words(live: str, visit: Visit,
                                                             make_staff: StaffFactory,
                                                             browser: Any) -> None:
    """bookings.js asks its question from the page's data-strings block, in the page's
    language; declining keeps the booking."""
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",))
    w = await open_page(browser)
    try:
        await sign_in(w, live, coordinator.email)
        await w.page.goto(f"{live}/bookings/{visit.booking_id}")
        asked: list[str] = []

        async def answer(dialog: Any) -> None:
            asked.append(dialog.message)
            await dialog.dismiss()

        w.page.on("dialog", answer)
        await w.page.click("button[data-confirm]")
        italian = Catalogues.load().get("it").gettext(
            "Cancel this booking? The patient will be told.")
        assert asked == [italian] and italian.startswith("Annull")
        assert w.page.url.endswith(f"/bookings/{visit.booking_id}")
        await w.page.reload()
        assert await w.page.locator("button[data-confirm]").count() == 1
        w.assert_clean()
    finally:
        await w.page.context.close()
