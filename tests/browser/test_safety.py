"""Safety for a patient at risk, in Chromium with a fake camera: the quick exit (button and
Escape twice) ends media and the connection and leaves no Casa page or join token in the
history; leaving a sensitive consultation asks nothing and offers no way back in; "is it safe
to talk now?" is answered silently and seen by the clinician only; the code word typed in the
chat alerts the clinician's screen only."""

from __future__ import annotations

from typing import Any

import asyncpg

from server.config import Config
from server.consultations import code_word
from server.staff import Role
from tests.browser.conftest import Watched, book, open_page, sign_in, soon
from tests.conftest import StaffFactory

LAPTOP = {"width": 1280, "height": 800}
SERVICE = "violence_support"


async def stops_recorded(w: Watched) -> list[str]:
    """Every MediaStreamTrack.stop() of the page, reported to the test as it happens (the
    page is gone right after a quick exit, so it cannot be asked afterwards)."""
    stopped: list[str] = []
    await w.page.context.expose_binding("casaTrackStopped",
                                        lambda _source, kind: stopped.append(kind))
    await w.page.context.add_init_script("""
        const stop = MediaStreamTrack.prototype.stop;
        MediaStreamTrack.prototype.stop = function () {
          if (this.readyState === 'live') window.casaTrackStopped(this.kind);
          return stop.call(this);
        };""")
    return stopped


async def history_urls(w: Watched) -> list[str]:
    """The tab's whole history as Chromium keeps it (DevTools protocol)."""
    cdp = await w.page.context.new_cdp_session(w.page)
    entries = (await cdp.send("Page.getNavigationHistory"))["entries"]
    return [e["url"] for e in entries]


async def test_escape_twice_leaves_for_a_neutral_page_and_ends_everything(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    _, _, room, link, _ = await book(config, psy.id, soon(), service=SERVICE)
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, psy.email)
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#waiting-list li.waiting", state="detached")

    patient = await open_page(browser)
    stopped = await stops_recorded(patient)
    await patient.page.goto(f"{live}/join/{link}")
    await patient.page.wait_for_url(f"**/consultation/{room}")
    # The tab says "Appointment" with a plain icon: no service, no Casa.
    assert await patient.page.title() == "Appuntamento"
    assert "neutral" in (await patient.page.get_attribute("link[rel=icon]", "href") or "")
    assert await patient.page.is_visible("#quick-exit")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    await doc.page.wait_for_selector("#waiting-list li.waiting")

    await patient.page.keyboard.press("Escape")
    await patient.page.keyboard.press("Escape")
    await patient.page.wait_for_url(f"{live}/away")
    assert sorted(set(stopped)) == ["audio", "video"]
    # The socket said leave: the clinician sees the patient gone at once, not after 30 s.
    await doc.page.wait_for_selector("#waiting-list li.waiting", state="detached",
                                     timeout=3_000)
    assert await patient.page.title() == "Meteo"
    assert "casa" not in (await patient.page.inner_text("body")).lower()
    urls = await history_urls(patient)
    assert not [u for u in urls if link in u or "/consultation/" in u or "/join" in u], urls
    # Back stays on neutral ground.
    await patient.page.go_back()
    assert patient.page.url == f"{live}/away"
    assert await patient.page.title() == "Meteo"
    patient.assert_clean()
    doc.assert_clean()


async def test_quick_exit_button_on_the_join_form(live: str, browser: Any) -> None:
    patient = await open_page(browser)
    await patient.page.goto(f"{live}/join")
    await patient.page.click("#quick-exit")
    await patient.page.wait_for_url(f"{live}/away")
    assert not [u for u in await history_urls(patient) if "/join" in u]
    patient.assert_clean()


async def test_safe_to_talk_code_word_and_leaving_without_questions(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any) -> None:
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    booking_id, _, room, link, _ = await book(config, psy.id, soon(), service=SERVICE)
    await code_word.set_for_booking(conn, booking_id, config.secret_key, "Girasole")
    patient = await open_page(browser)
    await patient.page.goto(f"{live}/join/{link}")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")

    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, psy.email)
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.click("#waiting-list li.waiting button.safe-ask")
    await patient.page.wait_for_selector("#safe-ask:not([hidden])")
    await doc.page.wait_for_function(
        "() => document.querySelector('#waiting-list li.waiting').textContent"
        ".includes('nessuna risposta')")
    await patient.page.click("#safe-ask button[data-answer=text_only]")
    await patient.page.wait_for_selector("#safe-thanks:not([hidden])")
    await doc.page.wait_for_function(
        "() => document.querySelector('#waiting-list li.waiting').textContent"
        ".includes('può parlare: solo per iscritto')")
    # Nothing of it on the patient's page but the thanks.
    assert "può parlare:" not in await patient.page.inner_text("body")

    await doc.page.click("#waiting-list li.waiting button.admit")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    await patient.page.click("#btn-chat")
    await patient.page.fill("#chat-text", "ho visto un girasole")
    await patient.page.press("#chat-text", "Enter")
    await doc.page.wait_for_selector("#safety-alert:not([hidden])")
    # (Staff pages speak Italian to this clinician.)
    assert "Parola in codice" in await doc.page.inner_text("#safety-alert")
    body = (await patient.page.content()).lower()
    assert "parola in codice" not in body and "safety-alert" not in body

    # Hanging up asks nothing, and the end page has no way back in.
    await patient.page.click("#btn-hangup")
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    assert not await patient.page.evaluate("() => document.getElementById('confirm').open")
    assert await patient.page.query_selector("#rejoin") is None
    patient.assert_clean()
    doc.assert_clean()


async def test_sensitive_guest_waits_then_its_revoked_link_is_refused(
        live: str, config: Config, make_staff: StaffFactory, browser: Any) -> None:
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    _, _, room, _, _ = await book(config, psy.id, soon(), service=SERVICE)
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, psy.email)
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.click("#tab-invite")  # the invitations are the side column's second tab
    await doc.page.click("#invite-guest")
    link = await doc.page.input_value("#invite-result input")

    guest = await open_page(browser)
    await guest.page.goto(link)
    await guest.page.click("#precall-continue")
    # A guest of a sensitive consultation waits like the patient, listed for the clinician.
    await guest.page.wait_for_selector("#stage-waiting:not([hidden])")
    await doc.page.click("#waiting-list li.waiting[data-role=guest] button.admit")
    await guest.page.wait_for_selector("#stage-call:not([hidden])")
    await doc.page.wait_for_selector("#remotes .tile", timeout=20_000)

    await doc.page.click("#invite-result button.revoke-guest")
    # Removed at once, and the link opens nothing any more.
    await guest.page.wait_for_selector("#stage-visitor:not([hidden])")
    await doc.page.wait_for_selector("#remotes .tile", state="detached")
    again = await open_page(browser)
    await again.page.goto(link)
    await again.page.click("#precall-continue")
    await again.page.wait_for_selector("#stage-visitor:not([hidden])")
    guest.assert_clean()
    doc.assert_clean()
