"""axe-core (bundled by axe-playwright-python) on every page patients and staff see, at 360 px,
in Italian and in English, and the patient's pages in Arabic too (right to left): any
violation of impact "serious" or "critical" fails.

The app's CSP allows no inline or injected script, and axe is injected with
``page.evaluate``: these contexts are opened with ``bypass_csp=True``, in this module only.
Every other browser test keeps the CSP and fails on any violation of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from records import keyring
from server.config import Config
from server.consultations.languages import direction
from server.staff import Role
from tests.browser.conftest import (
    PHONE,
    LiveServer,
    Watched,
    book,
    enter_code,
    fits_width,
    open_page,
    sign_in,
    wrong_code,
)
from tests.conftest import StaffFactory
from web.i18n import LANGUAGE_COOKIE

SERIOUS = ("serious", "critical")
# Long enough for the connection test to give up (3 s gathering + 10 s connecting) on a
# loaded machine.
MEDIA_MS = 30_000
LOCALES = {"it": "it-IT", "en": "en-GB", "ar": "ar-EG"}
NOTE = {"reason": "tosse", "assessment": "bronchite", "plan": "riposo",
        "summary": "Riposo e liquidi."}


@pytest.fixture
async def live(config: Config) -> AsyncIterator[str]:
    """The app with a keyring (so the records pages are on), served on 127.0.0.1."""
    path = Path(config.data_dir) / "keyring.json"
    keyring.save(keyring.generate(path), path)
    server = LiveServer(config)
    await server.start()
    try:
        yield server.url
    finally:
        await server.close()


class Audit:
    """Opens 360 px pages in one language and runs axe on them; collects every serious or
    critical violation with the page it was found on, so one run reports them all."""

    def __init__(self, browser: Any, base: str, lang: str) -> None:
        from axe_playwright_python.async_playwright import Axe

        self.browser = browser
        self.base = base
        self.lang = lang
        self.axe = Axe()
        self.found: list[str] = []
        self.checked: list[str] = []
        self.pages: list[Watched] = []

    async def page(self) -> Watched:
        context = await self.browser.new_context(
            viewport=PHONE, locale=LOCALES[self.lang],
            permissions=["camera", "microphone"], bypass_csp=True)
        await context.add_cookies([{"name": LANGUAGE_COOKIE, "value": self.lang,
                                    "url": self.base}])
        w = Watched(await context.new_page())
        self.pages.append(w)
        return w

    async def check(self, w: Watched, label: str) -> None:
        lang = await w.page.get_attribute("html", "lang")
        assert lang == self.lang, f"{label}: <html lang={lang!r}>"
        page_dir = await w.page.get_attribute("html", "dir")
        assert page_dir == direction(self.lang), f"{label}: <html dir={page_dir!r}>"
        await fits_width(w)
        results = await self.axe.run(w.page, options={"resultTypes": ["violations"]})
        for v in results.response["violations"]:
            if v["impact"] in SERIOUS:
                targets = [" ".join(map(str, n["target"])) for n in v["nodes"]][:5]
                self.found.append(f"[{self.lang}] {label}: {v['id']} ({v['impact']}) {targets}")
        self.checked.append(label)


async def _cancelled_later(conn: asyncpg.Connection, booking_id: int) -> None:
    await conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = $1", booking_id)


async def _pages_without_a_credential(audit: Audit, w: Watched, live: str, code: str,
                                      room: str, early_link: str) -> None:
    """What anyone sees before they are let in: the code form (and its refusal), the device
    check, a consultation's page without a credential, a link opened too early."""
    await w.page.goto(live + "/join")
    await audit.check(w, "join by code")
    await enter_code(w, wrong_code(code))
    await w.page.wait_for_load_state()
    await audit.check(w, "join by code, wrong code")
    await w.page.goto(live + "/precall")
    await w.page.wait_for_selector("#camera-result[data-state=ok]")
    await audit.check(w, "device check alone")
    await w.page.goto(f"{live}/consultation/{room}")
    await w.page.wait_for_selector("#stage-visitor:not([hidden])")
    await audit.check(w, "consultation, visitor")
    await w.page.goto(f"{live}/join/{early_link}")
    await audit.check(w, "join link, too early")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("lang", ["it", "en"])
async def test_every_page_passes_axe_at_360px(lang: str, live: str, conn: asyncpg.Connection,
                                              config: Config, make_staff: StaffFactory,
                                              browser: Any) -> None:
    gp = await make_staff(Role.GP, ("san-siro",), language=lang)
    other_gp = await make_staff(Role.GP, ("san-siro",), language=lang)
    coordinator = await make_staff(Role.COORDINATOR, ("san-siro",), language=lang)
    now = datetime.now(UTC)
    # A consultation under way (so the GP may write its note), one later today, one long
    # over, and one at a kiosk that the centre will move, then cancel.
    visit_id, _, room, link, code = await book(config, gp.id, timedelta(minutes=-5))
    _, _, _, early_link, _ = await book(config, gp.id, timedelta(hours=3), given="Anna")
    _, _, _, old_link, _ = await book(config, gp.id, timedelta(hours=-3), given="Rosa")
    kiosk = await conn.fetchval("INSERT INTO resources (centre_id, kind, name)"
                                " VALUES ('san-siro', 'kiosk', 'Kiosk 1') RETURNING id")
    cancel_id, _, cancel_room, cancel_link, _ = await book(
        config, other_gp.id, timedelta(minutes=2), given="Lia", mode="kiosk_video",
        kiosk_id=kiosk)
    patient_id = await conn.fetchval("SELECT patient_id FROM bookings WHERE id = $1", visit_id)
    audit = Audit(browser, live, lang)

    # --- anyone ------------------------------------------------------------------------------
    w = await audit.page()
    await w.page.goto(live + "/login")
    await audit.check(w, "login")
    await _pages_without_a_credential(audit, w, live, code, room, early_link)
    await w.page.goto(f"{live}/join/{old_link}")
    await audit.check(w, "join link, expired")
    await w.page.goto(f"{live}/join/not-a-link-at-all")
    await audit.check(w, "join link, unknown")

    # --- a patient at a kiosk whose consultation is moved later, then cancelled ---------------
    w = await audit.page()
    await w.page.goto(f"{live}/join/{cancel_link}")
    await w.page.wait_for_url(f"**/consultation/{cancel_room}")
    await w.page.wait_for_selector("#stage-precall:not([hidden])")
    await w.page.check("#nurse-present")
    # Audited while its connection test is still running (the patient's below, once done).
    await w.page.wait_for_selector("#camera-result[data-state=ok]")
    await audit.check(w, "pre-call check, kiosk")
    await conn.execute("UPDATE consultations SET join_opens_at = $2, join_closes_at = $3"
                       " WHERE room_id = $1", cancel_room, now + timedelta(hours=1),
                       now + timedelta(hours=2))
    await w.page.goto(f"{live}/consultation/{cancel_room}")
    await w.page.wait_for_selector("[data-outcome=too_early]")
    await audit.check(w, "consultation, too early")
    await _cancelled_later(conn, cancel_id)
    await w.page.goto(f"{live}/consultation/{cancel_room}")
    await w.page.wait_for_selector("[data-outcome=cancelled]")
    await audit.check(w, "consultation, cancelled")

    # --- the patient's way: pre-call, waiting room, call, end ---------------------------------
    patient = await audit.page()
    await patient.page.goto(f"{live}/join/{link}")
    await patient.page.wait_for_url(f"**/consultation/{room}")
    await patient.page.wait_for_selector("#net-result[data-state]:not([data-state=pending])",
                                         timeout=MEDIA_MS)
    # No TURN server configured here: no relay test, no line about it.
    assert not await patient.page.is_visible("#relay-result")
    await audit.check(patient, "pre-call check, patient")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    await audit.check(patient, "waiting room")

    # --- the clinician -------------------------------------------------------------------------
    doc = await audit.page()
    await sign_in(doc, live, gp.email)
    await doc.page.goto(live + "/home")
    await audit.check(doc, "home, GP")
    await doc.page.goto(live + "/dashboard")
    await doc.page.wait_for_selector(f".consultation[data-room='{room}'][data-state=waiting]")
    await audit.check(doc, "dashboard")
    await doc.page.click(f".consultation[data-room='{room}'] .admit")
    await doc.page.wait_for_selector("#stage-precall:not([hidden])")
    await doc.page.wait_for_selector("#camera-result[data-state=ok]")
    await audit.check(doc, "pre-call check, clinician")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    await patient.page.wait_for_selector("#stage-call:not([hidden])")
    await patient.page.wait_for_selector("#remotes .tile video", timeout=MEDIA_MS)
    await doc.page.wait_for_selector("#remotes .tile video", timeout=MEDIA_MS)
    await doc.page.wait_for_selector("#notes-panel :is(form, textarea, input)",
                                     timeout=MEDIA_MS)
    await audit.check(patient, "call, patient")
    await audit.check(doc, "call, clinician (notes panel)")
    await patient.page.click("#btn-chat")
    await patient.page.fill("#chat-text", "Buongiorno")
    await patient.page.press("#chat-text", "Enter")
    await doc.page.wait_for_selector("#chat-log li", state="attached")
    await doc.page.click("#btn-chat")
    await audit.check(patient, "call with chat, patient")
    await audit.check(doc, "call with chat, clinician")
    await patient.page.click("#btn-hangup")
    await patient.page.wait_for_selector("#confirm[open]")
    await audit.check(patient, "hang-up confirmation")
    await patient.page.keyboard.press("Escape")
    await doc.page.click("#btn-hangup")
    await doc.page.wait_for_selector("#confirm[open]")
    await doc.page.click("#confirm-yes")
    await doc.page.wait_for_selector("#stage-ended:not([hidden])")
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    await audit.check(patient, "end page, patient")
    await audit.check(doc, "end page, clinician")

    # --- records (the GP's own patient, consultation under way) -------------------------------
    await doc.page.goto(f"{live}/consultations/{visit_id}/notes")
    await doc.page.wait_for_selector("[data-notes-editor]")
    await audit.check(doc, "note editor")
    token = await doc.page.get_attribute("meta[name=csrf-token]", "content")
    headers = {"X-CSRF-Token": token or "", "Origin": live}
    resp = await doc.page.request.post(f"{live}/api/v1/records/consultations/{visit_id}/notes",
                                       headers=headers, data={"patient_id": patient_id,
                                                              "category": "gp",
                                                              "content": NOTE})
    assert resp.status == 201, await resp.text()
    note_id = (await resp.json())["id"]
    resp = await doc.page.request.post(f"{live}/api/v1/records/notes/{note_id}/sign",
                                       headers=headers)
    assert resp.ok, await resp.text()
    resp = await doc.page.request.post(f"{live}/api/v1/records/notes/{note_id}/summary-link",
                                       headers=headers)
    assert resp.ok, await resp.text()
    summary_url = (await resp.json())["url"]
    await doc.page.goto(f"{live}/patients/{patient_id}/record")
    await audit.check(doc, "patient record")
    await doc.page.goto(f"{live}/records/inbox")
    await audit.check(doc, "records inbox")
    summary = await audit.page()
    await summary.page.goto(summary_url if summary_url.startswith("http") else live + summary_url)
    await summary.page.wait_for_url("**/summary")
    await audit.check(summary, "patient's summary")

    # --- the coordinator: calendar and booking form --------------------------------------------
    co = await audit.page()
    await sign_in(co, live, coordinator.email)
    await co.page.goto(live + "/home")
    await audit.check(co, "home, coordinator")
    await co.page.goto(live + "/bookings/calendar")
    await audit.check(co, "booking calendar")
    await co.page.goto(live + "/bookings/today")
    await audit.check(co, "today at the centre")
    await co.page.goto(live + "/bookings/new")
    await audit.check(co, "booking form")
    await co.page.goto(f"{live}/bookings/{visit_id}")
    await audit.check(co, "one booking")
    await co.page.goto(f"{live}/bookings/patients/{patient_id}")
    await audit.check(co, "one patient's bookings")
    # The kiosks and a new enrolment code; then the kiosk's own pages, on a kiosk.
    await co.page.goto(live + "/kiosks")
    await co.page.click(f"tr[data-kiosk='{kiosk}'] button.make-code")
    await co.page.wait_for_selector("#new-code")
    await audit.check(co, "kiosks, a new code")
    enrol_code = await co.page.inner_text("#new-code strong")
    k = await audit.page()
    await k.page.goto(live + "/kiosk/enrol")
    await audit.check(k, "kiosk enrolment")
    await k.page.fill("#enrol-code", enrol_code)
    await k.page.click("button[type=submit].primary")
    # Enrolling forgot the browser's language: the kiosk starts with the languages.
    await k.page.wait_for_selector("#k-lang")
    await audit.check(k, "kiosk, languages")
    await k.page.click(f"#k-lang [data-lang={lang}]")
    await k.page.wait_for_selector("#k-start:not([hidden])")
    await audit.check(k, "kiosk, start")
    await k.page.click("#k-have")
    await audit.check(k, "kiosk, code keypad")
    for d in "000000":
        await k.page.click(f".keypad[data-keypad=code] [data-digit='{d}']")
    await k.page.click(".keypad[data-keypad=code] [data-next]")
    await audit.check(k, "kiosk, date of birth keypad")

    assert not audit.found, "\n".join(audit.found)
    assert len(audit.checked) >= 25
    for page in audit.pages:
        page.assert_clean()


@pytest.mark.timeout(180)
async def test_patient_pages_pass_axe_in_arabic(live: str, config: Config,
                                                make_staff: StaffFactory, browser: Any) -> None:
    """Everything a patient sees, right to left (staff pages are in Italian and English only:
    the clinician who lets her in works in Italian)."""
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, link, code = await book(config, gp.id, timedelta(minutes=-5))
    _, _, _, early_link, _ = await book(config, gp.id, timedelta(hours=3), given="Anna")
    audit = Audit(browser, live, "ar")

    w = await audit.page()
    await w.page.goto(live + "/join")
    await w.page.click("details.lang-switch > summary")
    await w.page.wait_for_selector("details.lang-switch[open] form.lang-list")
    await audit.check(w, "language list open")
    await _pages_without_a_credential(audit, w, live, code, room, early_link)

    patient = await audit.page()
    await patient.page.goto(f"{live}/join/{link}")
    await patient.page.wait_for_url(f"**/consultation/{room}")
    await patient.page.wait_for_selector("#net-result[data-state]:not([data-state=pending])",
                                         timeout=MEDIA_MS)
    await audit.check(patient, "pre-call check")
    await patient.page.click("#precall-continue")
    await patient.page.wait_for_selector("#stage-waiting:not([hidden])")
    await audit.check(patient, "waiting room")

    doc = await open_page(browser)
    await sign_in(doc, live, gp.email)
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.click("#waiting-list li.waiting button.admit")
    await patient.page.wait_for_selector("#remotes .tile video", timeout=MEDIA_MS)
    await audit.check(patient, "call")
    await patient.page.click("#btn-chat")
    await patient.page.fill("#chat-text", "مرحبا")
    await patient.page.press("#chat-text", "Enter")
    await doc.page.wait_for_selector("#chat-log li", state="attached")
    await audit.check(patient, "call with chat")
    await patient.page.click("#btn-hangup")
    await patient.page.wait_for_selector("#confirm[open]")
    await audit.check(patient, "hang-up confirmation")
    await patient.page.click("#confirm-yes")
    await patient.page.wait_for_selector("#stage-ended:not([hidden])")
    await audit.check(patient, "end page")

    assert not audit.found, "\n".join(audit.found)
    assert len(audit.checked) == 12
    for page in (*audit.pages, doc):
        page.assert_clean()
