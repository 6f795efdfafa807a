"""A centre kiosk from enrolment to the second patient, on a 1080x1920 kiosk screen and a
360 px phone: the kiosk is enrolled with its code; a patient picks a language, types the code
and date of birth on the on-screen keypad (or shows the invitation's QR code to the camera),
checks the devices, waits, is admitted by the clinician, and the visit ends; then nothing of
them is left: cookies (only the kiosk's credential and a fresh CSRF pair), storage, the page,
history, and Chromium's profile on disk. Twice, with two patients.

The kiosk runs in a Chromium of its own, with a profile directory the test reads, and whose
fake camera shows a real QR code (a Y4M file made from segno's matrix).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import segno

from server.config import Config
from server.kiosks import store
from server.staff import Role
from tests.browser.conftest import DOB, STEP_MS, Watched, book, fits_width, open_page, sign_in, soon
from tests.chromium import CHROMIUM, CHROMIUM_ARGS, need_chromium
from tests.conftest import StaffFactory

KIOSK_SCREEN = {"width": 1080, "height": 1920}
PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1280, "height": 800}
DOB_DIGITS = DOB.strftime("%d%m%Y")
# The idle wipe is a minute; the page is given a shorter one through Playwright's clock.
IDLE_S = 61


def y4m_of(text: str, path: Path, width: int = 640, height: int = 480) -> None:
    """One grey-scale Y4M frame (Chromium's fake camera loops it) showing ``text`` as a QR
    code, black modules on white, centred."""
    matrix = segno.make(text, error="m").matrix
    n = len(matrix) + 8  # the quiet zone
    scale = min(width, height) // n
    left, top = (width - n * scale) // 2, (height - n * scale) // 2
    y = bytearray(b"\xff" * (width * height))
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                for dy in range(scale):
                    start = (top + (r + 4) * scale + dy) * width + left + (c + 4) * scale
                    y[start:start + scale] = b"\x00" * scale
    chroma = b"\x80" * (width * height // 4)
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
                     + b"FRAME\n" + bytes(y) + chroma + chroma)


async def press_digits(w: Watched, pad: str, digits: str) -> None:
    for d in digits:
        await w.page.click(f".keypad[data-keypad={pad}] [data-digit='{d}']")


async def admitted_and_ended(browser: Any, live: str, email: str, room: str,
                             k: Watched) -> None:
    """The clinician lets the kiosk patient in, then ends the consultation."""
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, email)
    await doc.page.goto(f"{live}/consultation/{room}")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    await doc.page.click("#waiting-list li.waiting button.admit")
    await k.page.wait_for_selector("#stage-call:not([hidden])")
    await doc.page.click("#btn-hangup")
    await doc.page.click("#confirm-yes")
    await k.page.wait_for_selector("#stage-ended:not([hidden])")
    await doc.page.context.close()


async def nothing_of(k: Watched, code: str, csrf_before: str, history: int) -> None:
    """After the wipe: the languages again, and nothing of the patient anywhere the next
    person could look."""
    await k.page.wait_for_url(re.compile(r"/kiosk$"))
    await k.page.wait_for_selector("#k-lang")
    cookies = {c["name"]: c["value"] for c in await k.page.context.cookies()}
    assert set(cookies) <= {"casa_kiosk", "casa_csrf"}, cookies
    assert "casa_kiosk" in cookies and cookies.get("casa_csrf") != csrf_before
    assert await k.page.evaluate("() => localStorage.length + sessionStorage.length") == 0
    html = await k.page.content()
    assert code not in html and DOB_DIGITS not in html and str(DOB.year) not in html
    assert await k.page.evaluate("() => history.length") == history
    # Back shows the page before the first patient (the enrolment), never a patient's.
    await k.page.go_back()
    assert "/consultation/" not in k.page.url and "/kiosk/" in k.page.url
    html = await k.page.content()
    assert code not in html and DOB_DIGITS not in html
    await k.page.go_forward()
    await k.page.wait_for_selector("#k-lang")


def profile_holds(profile: Path, needle: re.Pattern[bytes]) -> list[str]:
    found = []
    for f in profile.rglob("*"):
        if f.is_file() and not f.is_symlink():
            try:
                data = f.read_bytes()
            except OSError:
                continue
            if needle.search(data):
                found.append(str(f.relative_to(profile)))
    return found


@pytest.mark.parametrize("screen", [KIOSK_SCREEN, PHONE], ids=["kiosk-1080x1920", "phone-360"])
async def test_two_patients_in_a_row_leave_nothing_for_the_next(
        live: str, conn: asyncpg.Connection, config: Config, make_staff: StaffFactory,
        browser: Any, tmp_path: Path, screen: dict[str, int]) -> None:
    need_chromium()
    from playwright.async_api import async_playwright

    gp = await make_staff(Role.GP, ("san-siro",), language="en")
    gp2 = await make_staff(Role.GP, ("san-siro",), language="en")
    coord = await make_staff(Role.COORDINATOR, ("san-siro",))
    kiosk_id = await conn.fetchval("INSERT INTO resources (centre_id, kind, name)"
                                   " VALUES ('san-siro', 'kiosk', 'Kiosk 1') RETURNING id")
    enrol_code = await store.issue_code(conn, config.secret_key, kiosk_id, coord.id,
                                        datetime.now(UTC))
    first = await book(config, gp.id, soon(), mode="kiosk_video", kiosk_id=kiosk_id)
    # Booked at the kiosk beside this one, of the same centre: let in here too.
    beside = await conn.fetchval("INSERT INTO resources (centre_id, kind, name)"
                                 " VALUES ('san-siro', 'kiosk', 'Kiosk 2') RETURNING id")
    second = await book(config, gp2.id, soon(), given="Lucia", mode="kiosk_video",
                        kiosk_id=beside)
    # The second patient shows the invitation's QR code: its link.
    y4m = tmp_path / "qr.y4m"
    y4m_of(f"{live}/join/{second[3]}", y4m)
    profile = tmp_path / "profile"

    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True,
            viewport=screen,  # type: ignore[arg-type]
            locale="it-IT", permissions=["camera", "microphone"],
            args=[a for a in CHROMIUM_ARGS if a != "--headless"]
            + [f"--use-file-for-fake-video-capture={y4m}"])
        k = Watched(context.pages[0] if context.pages else await context.new_page())
        await k.page.clock.install()
        # Enrolment, typed by the coordinator on the kiosk.
        await k.page.goto(live + "/kiosk/enrol")
        assert await k.page.get_attribute("#enrol-code", "autocomplete") == "off"
        await k.page.fill("#enrol-code", enrol_code)
        await k.page.click("button[type=submit].primary")
        await k.page.wait_for_selector("#k-lang")
        history = await k.page.evaluate("() => history.length")

        # Someone types half a code and walks away: a minute later it is gone.
        await k.page.click("#k-lang [data-lang=it]")
        await k.page.wait_for_selector("#k-start:not([hidden])")
        await k.page.click("#k-have")
        await press_digits(k, "code", "123")
        csrf = {c["name"]: c["value"] for c in await context.cookies()}["casa_csrf"]
        await k.page.clock.fast_forward(IDLE_S * 1000)
        await nothing_of(k, "123", csrf, history)

        for n, ((_, _, room, _, code), email) in enumerate(((first, gp.email),
                                                              (second, gp2.email))):
            await k.page.click("#k-lang [data-lang=it]")
            await k.page.wait_for_selector("#k-start:not([hidden])")
            await fits_width(k)
            await k.page.click("#k-have")
            if n == 0:
                await press_digits(k, "code", code)
                await k.page.click(".keypad[data-keypad=code] [data-next]")
            else:
                await k.page.click("#k-scan")
            await k.page.wait_for_selector("#k-dob:not([hidden])", timeout=STEP_MS)
            await press_digits(k, "dob", DOB_DIGITS)
            # Every key is a 48 px target at the least.
            for box in [await b.bounding_box()
                        for b in await k.page.query_selector_all("#k-dob .key")]:
                assert box is not None and box["height"] >= 48 and box["width"] >= 48
            await fits_width(k)
            await k.page.click(".keypad[data-keypad=dob] [data-next]")
            await k.page.wait_for_url(f"**/consultation/{room}")
            # Nothing a browser could fill in or restore.
            assert await k.page.evaluate("() => history.length") == history
            await k.page.wait_for_selector("#stage-precall:not([hidden])")
            csrf = {c["name"]: c["value"] for c in await context.cookies()}["casa_csrf"]
            await k.page.click("#precall-continue")
            await k.page.wait_for_selector("#stage-waiting:not([hidden])")
            await admitted_and_ended(browser, live, email, room, k)
            await fits_width(k)
            if n == 0:
                await k.page.click("#kiosk-done")
            else:
                # Nobody presses "Finished": a minute later the kiosk wipes itself.
                await k.page.clock.fast_forward(IDLE_S * 1000)
            await nothing_of(k, code, csrf, history)
        k.assert_clean()
        await context.close()

    # Chromium's profile on disk, after it closed: neither code nor the date of birth, in any
    # form the pages had them. (The profile does hold what it is expected to: the visited
    # kiosk pages, so the search reads real data.)
    assert profile_holds(profile, re.compile(rb"/kiosk/enrol"))
    for code in (first[4], second[4]):
        assert not profile_holds(profile, re.compile(rb"(?<![0-9])" + code.encode()
                                                     + rb"(?![0-9])"))
    for form in (DOB_DIGITS, DOB.isoformat(), DOB.strftime("%d/%m/%Y"), '"year":"1948"'):
        assert not profile_holds(profile, re.compile(re.escape(form.encode()))), form
