"""Nothing clinical or identifying stays in the browser's profile (the abusive partner with the
victim's phone, the next patient at the kiosk, a colleague at a shared clinic computer).

One Chromium with a persistent profile, as a clinician's or a kiosk's browser has: a kiosk
join with a date of birth (a wrong code first, then the right one), a restricted note in the
call page's notes panel, signed and amended, a note with measurements in the editor, a
break-glass reason (one refused), a patient search by codice fiscale and a refused
registration; some of it sent, some typed and left on the page. No form is answered with a
page (the browser would keep its request body with the tab): each goes on to a GET. The tabs
stay open when the browser closes, as a clinician's do at the end of the day, so session
restore writes them. Then every file of the profile is searched, byte for byte, for each value
typed, in UTF-8 and in UTF-16 (how Chromium keeps page state): none may be there."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from records import content
from records.access import Category
from records.service import Records
from server.config import Config
from server.staff import Role
from tests.browser.conftest import (  # noqa: F401 (live_server is a fixture used here)
    DOB,
    STEP_MS,
    Watched,
    book,
    live_server,
    sign_in,
)
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import StaffFactory
from tests.factories import Factories
from tests.records.conftest import set_status_as

# Long enough that a value cannot turn up in a profile by chance.
WEIGHT = "217.43"   # kg: a plausible weight no file holds by accident
GLUCOSE = "613.97"  # mg/dL, typed into an amendment and left unsent


def marker(label: str) -> str:
    return f"{label}{secrets.token_hex(5)}"


def profile_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def find_in_profile(root: Path,
                    values: dict[str, list[bytes | re.Pattern[bytes]]]) -> list[str]:
    """Every (value, file) where one of the value's encodings occurs, with the bytes around
    it (to tell where in the file it was kept)."""
    found = []
    for path in profile_files(root):
        data = path.read_bytes()
        for label, forms in values.items():
            for form in forms:
                hit = (form if isinstance(form, re.Pattern) else re.compile(re.escape(form))
                       ).search(data)
                if hit:
                    around = data[max(0, hit.start() - 60):hit.end() + 60]
                    found.append(f"{label} in {path.relative_to(root)}: {around!r}")
    return found


def alone_in_utf16(text: str) -> re.Pattern[bytes]:
    """``text`` in UTF-16-LE with no letter or digit just before or after it."""
    word = rb"[0-9A-Za-z]\x00"
    return re.compile(rb"(?<!" + word + rb")" + re.escape(text.encode("utf-16-le"))
                      + rb"(?!" + word + rb")")


def encodings(text: str) -> list[bytes | re.Pattern[bytes]]:
    return [text.encode(), text.encode("utf-16-le")]


async def saved(w: Watched, scope: str) -> None:
    """The editor says its draft is saved (in whatever language the page speaks)."""
    await w.page.wait_for_function(
        "(sel) => { const root = document.querySelector(sel);"
        " const words = JSON.parse(root.querySelector('script[data-strings]').textContent);"
        " return root.querySelector('[data-save-state]').textContent === words.note_saved; }",
        arg=scope + "[data-notes-editor]")


async def amending(w: Watched, scope: str) -> None:
    """The editor shows the amendment's draft: no amend form, no choice of kind any more."""
    await w.page.wait_for_selector(scope + "[data-note-form]")
    await w.page.wait_for_selector(scope + "[data-amend-form]", state="detached")
    await w.page.wait_for_selector(scope + "#note-category", state="detached")


async def test_nothing_typed_stays_in_the_browser_profile(
        live_server: Any, conn: asyncpg.Connection, config: Config, rec: Records,  # noqa: F811
        make_staff: StaffFactory, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    live = live_server.url
    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",), language="en")
    # A video consultation that started five minutes ago, taken at a kiosk.
    kiosk = await conn.fetchval("INSERT INTO resources (centre_id, kind, name)"
                                " VALUES ('san-siro', 'kiosk', 'Kiosk 1') RETURNING id")
    name = marker("Nome")
    _, consultation, room, _, code = await book(config, gp.id, timedelta(minutes=-5),
                                                given=name, mode="kiosk_video",
                                                kiosk_id=kiosk)
    patient = await conn.fetchval("SELECT patient_id FROM consultations c JOIN bookings b "
                                  "ON b.id = c.booking_id WHERE c.id = $1", consultation)
    # An earlier consultation of the same patient, for the editor page; and a psychological
    # session, whose two notes the GP may open only by breaking the glass.
    assert config.database_url is not None
    f = Factories(config.database_url, secret_key=config.secret_key)
    try:
        earlier = (await f.booking(patient, gp.id, datetime.now(UTC) - timedelta(hours=3),
                                   minutes=20)).id
        psy_booking = (await f.booking(patient, psy.id, datetime.now(UTC) - timedelta(days=2),
                                       service="psych_session", minutes=50)).id
    finally:
        await f.close()
    # The patient came to both: San Siro's desk checked her in (what makes the GP and the
    # psychologist caring, and so able to write there).
    desk = await make_staff(Role.COORDINATOR, ("san-siro",))
    await set_status_as(conn, psy_booking, "checked-in", desk.id)
    await set_status_as(conn, await conn.fetchval(
        "SELECT booking_id FROM consultations WHERE id = $1", consultation), "checked-in",
        desk.id)
    for _ in range(2):
        n = await rec.create(conn, psy, booking_id=psy_booking, patient_id=patient,
                             category=Category.PSYCHOLOGICAL,
                             content=content.parse({"text": "seen"}))
        await rec.sign(conn, psy, n.id)

    typed = {k: marker(k) for k in (
        "panel_reason_sent", "panel_amend_reason", "panel_plan_unsent", "editor_text_sent",
        "editor_amend_reason", "editor_plan_unsent", "glass_reason_sent",
        "glass_reason_unsent", "glass_reason_refused")}
    wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"
    cf_searched = "SRC" + secrets.token_hex(6).upper() + "Z"
    cf_registered = "REG" + secrets.token_hex(6).upper() + "Z"
    new_name = marker("Nuovo")
    phone = "+39 3" + "".join(secrets.choice("0123456789") for _ in range(9))
    values: dict[str, list[bytes | re.Pattern[bytes]]] = {
        k: encodings(v) for k, v in typed.items()}
    values |= {"codice fiscale searched": encodings(cf_searched),
               "codice fiscale registered": encodings(cf_registered),
               "new patient's name": encodings(new_name), "phone": encodings(phone),
               "patient's name": encodings(name), "weight": encodings(WEIGHT),
               "glucose": encodings(GLUCOSE),
               "join code": encodings(code), "wrong code": encodings(wrong_code),
               # The date of birth as the form sends it and as people write it; its year
               # alone only in UTF-16 and standing alone, as a field's value is kept (four
               # ASCII digits turn up in binary files by chance, and inside UTF-16 ids and
               # hashes too).
               "date of birth": [f"year={DOB.year}".encode(), DOB.isoformat().encode(),
                                 DOB.strftime("%d/%m/%Y").encode(),
                                 alone_in_utf16(str(DOB.year))]}

    profile = tmp_path / "profile"
    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, locale="en-GB",
            permissions=["camera", "microphone"], viewport={"width": 1280, "height": 900})
        dialogs: list[str] = []
        answering: set[asyncio.Future[None]] = set()

        def accept(dialog: Any) -> None:
            # "Sign this note?": yes.
            dialogs.append(dialog.type)
            answer = asyncio.ensure_future(dialog.accept())
            answering.add(answer)
            answer.add_done_callback(answering.discard)

        context.on("dialog", accept)
        context.set_default_timeout(STEP_MS)

        # The kiosk: a wrong code first (the form comes back, empty, saying so), then, in
        # another tab, the right one.
        k1 = Watched(await context.new_page())
        await k1.page.goto(live + "/join")
        await k1.page.fill("#code", wrong_code)
        await k1.page.fill("#day", str(DOB.day))
        await k1.page.fill("#month", str(DOB.month))
        await k1.page.fill("#year", str(DOB.year))
        await k1.page.click("button[type=submit].primary")
        await k1.page.wait_for_selector("p.alert")
        k2 = Watched(await context.new_page())
        await k2.page.goto(live + "/join")
        await k2.page.fill("#code", code)
        await k2.page.fill("#day", str(DOB.day))
        await k2.page.fill("#month", str(DOB.month))
        await k2.page.fill("#year", str(DOB.year))
        await k2.page.click("button[type=submit].primary")
        await k2.page.wait_for_url(f"**/consultation/{room}")

        # The clinician, in the same profile: the call page's notes panel.
        doc = Watched(await context.new_page())
        await sign_in(doc, live, gp.email)
        await doc.page.goto(f"{live}/consultation/{room}")
        await doc.page.click("#precall-continue")
        await doc.page.wait_for_selector("#notes-panel [data-notes-editor]")
        panel = "#notes-panel "
        await doc.page.select_option(panel + "#note-category", "psychiatric")
        await doc.page.fill(panel + "#note-reason", typed["panel_reason_sent"])
        await doc.page.click(panel + "[data-save]")
        await saved(doc, panel)
        await doc.page.click(panel + "[data-sign]")
        await doc.page.wait_for_selector(panel + "[data-amend-form]")
        await doc.page.fill(panel + "[data-amend-form] input[name=reason]",
                            typed["panel_amend_reason"])
        await doc.page.click(panel + "[data-amend-form] button[type=submit]")
        await amending(doc, panel)

        # The editor page of the earlier consultation: text and measurements, signed,
        # amended, and more typed into the amendment.
        ed = Watched(await context.new_page())
        await ed.page.goto(f"{live}/consultations/{earlier}/notes")
        await ed.page.fill("#note-text", typed["editor_text_sent"])
        await ed.page.fill("#m-weight", WEIGHT)
        await ed.page.click("[data-save]")
        await saved(ed, "")
        await ed.page.click("[data-sign]")
        await ed.page.wait_for_selector("[data-amend-form]")
        await ed.page.fill("[data-amend-form] input[name=reason]", typed["editor_amend_reason"])
        await ed.page.click("[data-amend-form] button[type=submit]")
        await amending(ed, "")

        # The patient's page (its title was the patient's name, kept in history).
        pp = Watched(await context.new_page())
        await pp.page.goto(f"{live}/bookings/patients/{patient}")
        assert name in await pp.page.inner_text("h1")

        # Staff forms with a patient's details: a search by codice fiscale, sent; a new
        # patient's registration, sent back for an invalid codice fiscale.
        await pp.page.goto(f"{live}/bookings/patients")
        await pp.page.fill("#q", cf_searched)
        await pp.page.click("form[role=search] button[type=submit]")
        await pp.page.wait_for_load_state()
        await pp.page.wait_for_selector("form[role=search]")
        reg = Watched(await context.new_page())
        await reg.page.goto(f"{live}/bookings/new")
        await reg.page.click("details summary")
        await reg.page.fill("#given_name", new_name)
        await reg.page.fill("#family_name", "Rossi")
        await reg.page.fill("#date_of_birth", "1961-02-03")
        await reg.page.fill("#phone", phone)
        await reg.page.fill("#codice_fiscale", cf_registered)
        await reg.page.click("details button[type=submit]")
        await reg.page.wait_for_selector(".alert")

        # The record: a reason refused (too long: pasted, past the field's own limit), so the
        # page comes back saying why...
        gr = Watched(await context.new_page())
        await gr.page.goto(f"{live}/patients/{patient}/record")
        glass = ".glass-form textarea >> nth=0"
        await gr.page.eval_on_selector(glass, "el => el.removeAttribute('maxlength')")
        await gr.page.fill(glass, typed["glass_reason_refused"] + " " + "x" * 1100)
        await gr.page.click(".glass-form button[type=submit] >> nth=0")
        await gr.page.wait_for_selector("p.alert[role=alert]")
        # ...then the glass broken on one restricted note, a reason typed for the other.
        rp = Watched(await context.new_page())
        await rp.page.goto(f"{live}/patients/{patient}/record")
        await rp.page.fill(".glass-form textarea >> nth=0", typed["glass_reason_sent"])
        await rp.page.click(".glass-form button[type=submit] >> nth=0")
        await rp.page.wait_for_load_state()
        await rp.page.wait_for_selector(".glass-form")

        # Typed and never sent: the connection is gone (autosave keeps it on the page).
        await context.route("**/api/v1/records/**", lambda route: route.abort())
        await doc.page.fill(panel + "#note-plan", typed["panel_plan_unsent"])
        await ed.page.fill("#note-plan", typed["editor_plan_unsent"])
        await ed.page.fill("#m-glucose", GLUCOSE)
        await rp.page.fill(".glass-form textarea >> nth=0", typed["glass_reason_unsent"])

        # What was sent arrived; what was left typed is still on its page.
        assert await conn.fetchval("SELECT count(*) FROM break_glass WHERE staff_id = $1",
                                   gp.id) == 1
        assert await doc.page.input_value(panel + "#note-plan") == typed["panel_plan_unsent"]
        assert dialogs.count("confirm") == 2
        # Let the browser write its session as it does while people work, then close it with
        # every tab open, as at the end of a day.
        await asyncio.sleep(3)
        await context.close()

    # The browser did keep the session (so its tabs were there to be searched)...
    sessions = [f.read_bytes() for f in (profile / "Default" / "Sessions").iterdir()]
    assert any(f"/consultation/{room}".encode() in data for data in sessions)
    assert any(f"/consultations/{earlier}/notes".encode() in data for data in sessions)
    # ...and its autofill database, where typed values would go.
    assert (profile / "Default" / "Web Data").is_file()
    found = find_in_profile(profile, values)
    assert found == [], "kept by the browser: " + "; ".join(found)
