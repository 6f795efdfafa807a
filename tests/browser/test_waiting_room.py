"""The clinician's side of the waiting room on the call page: a short message shown to the
patient in their language, admit, chat, send back, screen sharing; a guest link for an
interpreter; and a server restart shown as "reconnecting", not as an error, then resumed."""

from __future__ import annotations

from typing import Any

from server.staff import Role
from tests.browser.conftest import (
    PHONE,
    LiveServer,
    Visit,
    Watched,
    fits_width,
    open_page,
    sign_in,
)
from tests.browser.test_call import LAPTOP, patient_in_waiting_room, video_flows
from tests.conftest import StaffFactory


async def clinician_in_call(browser: Any, live: str, visit: Visit) -> Watched:
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, visit.gp_email)
    await doc.page.goto(f"{live}/consultation/{visit.room}")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    return doc


async def test_notice_admit_chat_send_back_and_screen_share(live: str, visit: Visit,
                                                             browser: Any) -> None:
    patient = await patient_in_waiting_room(browser, live, visit)
    doc = await clinician_in_call(browser, live, visit)
    waiting = "#waiting-list li.waiting"
    await doc.page.wait_for_selector(waiting)
    assert visit.patient_name in await doc.page.inner_text(waiting)
    # A short message, chosen in English, arrives in the patient's Italian.
    await doc.page.select_option(f"{waiting} select", "running_late")
    await doc.page.click(f"{waiting} button.notice")
    await patient.page.wait_for_selector("#notice:not([hidden])")
    assert "in ritardo" in await patient.page.inner_text("#notice")
    await doc.page.select_option(f"{waiting} select", "few_minutes:10")
    await doc.page.click(f"{waiting} button.notice")
    await patient.page.wait_for_selector("#notice:has-text('tra 10 minuti')")
    await doc.page.click(f"{waiting} button.admit")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    await video_flows(patient)
    # Chat both ways (never stored on the server).
    await patient.page.click("#btn-chat")
    await patient.page.fill("#chat-text", "Buongiorno dottore")
    await patient.page.press("#chat-text", "Enter")
    await doc.page.wait_for_selector("#chat-log li:has-text('Buongiorno dottore')",
                                    state="attached")
    # A line too large for the relay (long in bytes, not in characters) is refused with a
    # plain explanation and kept in the box, not silently dropped.
    long_line = "\U0001F600" * 500
    await patient.page.fill("#chat-text", long_line)
    await patient.page.press("#chat-text", "Enter")
    await patient.page.wait_for_function(
        "document.getElementById('status').textContent.includes('troppo lungo')", timeout=5000)
    assert await patient.page.input_value("#chat-text") == long_line
    await fits_width(patient)
    # Send back: the patient is in the waiting room again, told why, and can be let in again.
    await doc.page.click("#waiting-list li.in-call button.send-back")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    assert await patient.page.inner_text("#notice")
    await doc.page.click(f"{waiting} button.admit")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    # The clinician shares their screen: the patient sees it large, then no more.
    await doc.page.click("#btn-share")
    await patient.page.wait_for_selector("#videos.sharing .tile.screen video")
    assert await doc.page.get_attribute("#btn-share", "aria-pressed") == "true"
    await doc.page.click("#btn-share")
    await patient.page.wait_for_selector("#videos:not(.sharing)")
    # A mistaken hang-up: the patient can go back in (and waits to be admitted again).
    await patient.page.click("#btn-hangup")
    await patient.page.click("#confirm-yes")
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    await patient.page.click("#rejoin a")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    await doc.page.wait_for_selector(waiting)
    patient.assert_clean()
    doc.assert_clean()


async def test_colleague_invited_and_guest_link_brings_an_interpreter_into_the_call(
        live: str, visit: Visit, browser: Any, make_staff: StaffFactory) -> None:
    colleague = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    doc = await clinician_in_call(browser, live, visit)
    # A colleague with an account: added to the consultation (it shows on their dashboard).
    # The invitations are the side column's second tab, after the notes.
    await doc.page.click("#tab-invite")
    await doc.page.select_option("#invite-colleague", str(colleague.id))
    await doc.page.click("#invite-staff button[type=submit]")
    await doc.page.wait_for_selector("#invite-result:not(:empty)")
    colleague_page = await open_page(browser)
    await sign_in(colleague_page, live, colleague.email)
    await colleague_page.page.goto(live + "/dashboard")
    await colleague_page.page.wait_for_selector(f".consultation[data-room='{visit.room}']")
    await doc.page.click("#invite-guest")
    link_input = doc.page.locator("#invite-result input")
    await link_input.wait_for()
    link = await link_input.input_value()
    assert f"/consultation/{visit.room}#guest=" in link
    guest = await open_page(browser, locale="en-GB")
    await guest.page.goto(link)
    await guest.page.wait_for_selector("#stage-precall:not([hidden])")
    # The token is read, then leaves the address bar.
    assert "guest=" not in guest.page.url
    await guest.page.wait_for_selector("#camera-result[data-state=ok]")
    await guest.page.click("#precall-continue")
    await guest.page.wait_for_selector("#stage-call:not([hidden])")
    await video_flows(guest)
    await video_flows(doc)
    await fits_width(guest)
    # The clinician's page, panel and all, also fits a phone.
    await doc.page.set_viewport_size(PHONE)
    await fits_width(doc)
    guest.assert_clean()
    doc.assert_clean()


async def test_server_restart_shows_reconnecting_then_resumes(
        live_server: LiveServer, visit: Visit, browser: Any) -> None:
    live = live_server.url
    patient = await patient_in_waiting_room(browser, live, visit)
    doc = await clinician_in_call(browser, live, visit)
    await doc.page.click("#waiting-list li.waiting button.admit")
    await video_flows(patient)
    await live_server.stop()
    # Media is peer to peer: the call goes on while the signalling server is away.
    await patient.page.wait_for_selector("#call-banner:not([hidden])")
    assert "Riconnessione" in await patient.page.inner_text("#call-banner")
    assert await patient.page.is_visible("#stage-call")
    await video_flows(patient)
    await live_server.start()
    await patient.page.wait_for_selector("#call-banner", state="hidden", timeout=15_000)
    await doc.page.wait_for_selector("#call-banner", state="hidden", timeout=15_000)
    assert await patient.page.is_visible("#stage-call")
    await video_flows(patient)
    await video_flows(doc)
    patient.assert_clean(allow=("net::ERR_CONNECTION_REFUSED",))
    doc.assert_clean(allow=("net::ERR_CONNECTION_REFUSED",))
