"""A psychological session seen by the patient: someone may glance at the screen, so no page
of it (pre-call check, waiting room, call, chat, end page, the tab's title) names the
psychologist or the service, though signalling sends the psychologist's name in peer objects."""

from __future__ import annotations

from typing import Any

import asyncpg

from server.config import Config
from server.staff import Role
from tests.browser.axtree import empty_live_region, page_strings, says
from tests.browser.conftest import Watched, book, open_page, sign_in, soon
from tests.conftest import StaffFactory

LAPTOP = {"width": 1280, "height": 800}
NAME = "Dott.ssa Elena Romano"
# The clinician's name and the service's (English and Italian), and their specialty.
UNSAYABLE = (NAME.lower(), "romano", "psychological session", "colloquio psicologico",
             "psycholog", "psicolog")


async def discreet(w: Watched) -> None:
    """Neither the page's markup (hidden stages and the JSON data block included), nor what
    is on screen, nor the title says who or what the appointment is with."""
    text = " ".join([await w.page.title(), await w.page.content(),
                     await w.page.inner_text("body")]).lower()
    said = [word for word in UNSAYABLE if word in text]
    assert not said, said


async def test_psychological_session_never_names_the_psychologist_to_the_patient(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    await conn.execute("UPDATE staff SET full_name = $2 WHERE id = $1", psy.id, NAME)
    _, _, room, link, _ = await book(config, psy.id, soon(), service="psych_session")

    patient = await open_page(browser)
    await patient.page.goto(f"{live}/join/{link}")
    await patient.page.wait_for_url(f"**/consultation/{room}")
    await patient.page.wait_for_selector("#stage-precall:not([hidden])")
    # Neutral wording instead: the centre and the time.
    assert "Casa San Siro" in await patient.page.inner_text("#stage-precall")
    await discreet(patient)
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    assert "Il suo medico" in await patient.page.inner_text("#stage-waiting")
    await discreet(patient)

    # The psychologist comes in and admits the patient (?admit=1, as from the dashboard).
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, psy.email)
    await doc.page.goto(f"{live}/consultation/{room}?admit=1")
    await doc.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    # The psychologist's video tile is labelled with the role, not the name.
    await patient.page.wait_for_selector("#remotes .tile .name", timeout=20_000)
    assert await patient.page.inner_text("#remotes .tile .name") == "Medico"
    await discreet(patient)

    # A chat line from the psychologist: labelled with the role too.
    await empty_live_region(patient.page, "#live-chat")
    await doc.page.click("#btn-chat")
    await doc.page.fill("#chat-text", "Buongiorno")
    await doc.page.press("#chat-text", "Enter")
    # The patient's chat panel is closed: the line is there, the button marked unread, and
    # the screen reader is told who wrote by role, never by name.
    await patient.page.wait_for_selector("#chat-log li", state="attached")
    assert (await patient.page.text_content("#chat-log li") or "").startswith("Medico")
    await says(patient.page, "#live-chat",
               (await page_strings(patient.page))["chat_new_clinician"])
    await discreet(patient)

    await doc.page.click("#btn-hangup")
    await doc.page.click("#confirm-yes")
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    await discreet(patient)
    patient.assert_clean()
    doc.assert_clean()
