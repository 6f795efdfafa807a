"""A refused join is told where it happened: the title starts with "Error:", the message takes
the focus and describes the fields it is about (``aria-invalid``, ``aria-describedby``); each
refusal and error page has a heading and a title of its own."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg

from server.config import Config
from server.staff import Role
from tests.browser.conftest import Visit, book, enter_code, open_page, wrong_code
from tests.conftest import StaffFactory

FIELDS = ("code", "day", "month", "year")


async def _field_state(w: Any) -> dict[str, tuple[str | None, str | None]]:
    return {f: (await w.page.get_attribute(f"#{f}", "aria-invalid"),
                await w.page.get_attribute(f"#{f}", "aria-describedby")) for f in FIELDS}


async def test_a_wrong_code_is_announced_and_tied_to_its_field(live: str, visit: Visit,
                                                              browser: Any) -> None:
    w = await open_page(browser, locale="en-GB")
    await w.page.goto(live + "/join?lang=en")
    plain_title = await w.page.title()
    assert not plain_title.startswith("Error")
    assert await _field_state(w) == dict.fromkeys(FIELDS, (None, None))

    await enter_code(w, wrong_code(visit.code))
    await w.page.wait_for_selector("#join-error")
    assert await w.page.title() == "Error: " + plain_title
    # The message has the focus (a screen reader reads it), and it describes the code field.
    assert await w.page.evaluate("document.activeElement.id") == "join-error"
    state = await _field_state(w)
    assert state["code"] == ("true", "join-error")
    assert state["day"] == (None, None)
    described = await w.page.inner_text("#join-error")
    assert "code" in described.lower()

    # A date that does not exist: the three date fields, not the code.
    await enter_code(w, visit.code, born=date(1948, 5, 17))
    await w.page.wait_for_url(f"**/consultation/{visit.room}")
    await w.page.goto(live + "/join")
    await w.page.fill("#code", visit.code)
    for f, v in (("day", "31"), ("month", "2"), ("year", "1948")):
        await w.page.fill(f"#{f}", v)
    await w.page.click("form.join-form button[type=submit]")
    await w.page.wait_for_selector("#join-error")
    state = await _field_state(w)
    assert state["code"] == (None, None)
    assert all(state[f] == ("true", "join-error") for f in ("day", "month", "year"))
    assert await w.page.evaluate("document.activeElement.id") == "join-error"
    w.assert_clean()


async def test_each_refusal_and_error_page_has_its_own_heading_and_title(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, _, early, _ = await book(config, gp.id, timedelta(hours=3))
    _, _, _, old, _ = await book(config, gp.id, timedelta(hours=-3), given="Rosa")
    cancelled_id, _, cancelled_room, cancelled, _ = await book(
        config, gp.id, timedelta(minutes=-5), given="Lia")
    other_gp = await make_staff(Role.GP, ("san-siro",))
    later_id, _, later_room, later, _ = await book(config, other_gp.id, timedelta(minutes=5),
                                                   given="Eva")
    w = await open_page(browser, locale="en-GB")
    await w.page.goto(live + "/join?lang=en")
    seen: dict[str, tuple[str, str]] = {}

    async def look(label: str, url: str) -> None:
        await w.page.goto(url)
        seen[label] = (await w.page.inner_text("h1"), await w.page.title())

    await look("link too early", f"{live}/join/{early}")
    await look("link expired", f"{live}/join/{old}")
    await look("link unknown", f"{live}/join/not-a-link-at-all")
    await look("not found", f"{live}/no-such-page")
    # The consultation's own closed pages, with a patient cookie: opened, then cancelled.
    await w.page.goto(f"{live}/join/{cancelled}")
    await w.page.wait_for_url(f"**/consultation/{cancelled_room}")
    await conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = $1", cancelled_id)
    await look("consultation cancelled", f"{live}/consultation/{cancelled_room}")
    await w.page.goto(f"{live}/join/{later}")
    await w.page.wait_for_url(f"**/consultation/{later_room}")
    await conn.execute("UPDATE consultations SET join_opens_at = now() + interval '1 hour',"
                       " join_closes_at = now() + interval '2 hours' WHERE booking_id = $1",
                       later_id)
    await look("consultation too early", f"{live}/consultation/{later_room}")

    headings = [h for h, _ in seen.values()]
    assert len(set(headings)) == len(headings), seen
    for label, (heading, title) in seen.items():
        assert title == f"{heading} · Casa", (label, heading, title)
    w.assert_clean()
