"""Reading a Bluetooth device on the patient's form, in Chromium on a 360 px phone. The browser's
Web Bluetooth is the stand-in of tests/browser/fake_bluetooth.py (a device sending the bytes
of the GATT Blood Pressure Measurement); the form, its bundle, ble-reader.js, gatt.js and the
server are Casa's own. The reading fills the fields and is never sent by itself."""

from __future__ import annotations

from typing import Any

from server.monitoring import service
from tests.browser.conftest import PHONE, Watched, fits_width, open_page
from tests.browser.fake_bluetooth import init_script
from tests.monitoring.conftest import Ward, enrol

MEASUREMENTS = ["blood_pressure", "heart_rate", "weight", "temperature", "symptoms"]
OUTBOX = "() => localStorage.getItem('casa-monitor-outbox')"
VISIBLE_DEVICE_BUTTONS = """() => [...document.querySelectorAll('button[data-device]')]
  .filter((b) => b.offsetParent !== null).map((b) => b.closest('fieldset').dataset.measurement)"""
NO_BLUETOOTH = "Object.defineProperty(navigator, 'bluetooth', { value: undefined });"


def le16(v: int) -> list[int]:
    return [v & 0xFF, (v >> 8) & 0xFF]


def pressure(flags: int, systolic: int, diastolic: int, mean: int, *rest: int) -> list[list[int]]:
    """One Blood Pressure Measurement (0x2A35): flags, three SFLOATs, then what flags add."""
    return [[flags, *le16(systolic), *le16(diastolic), *le16(mean), *rest]]


async def phone(browser: Any, live: str, token: str, script: str, *,
                lang: str = "en") -> tuple[Watched, list[str]]:
    w = await open_page(browser, viewport=PHONE)
    await w.page.add_init_script(script)
    posts: list[str] = []
    w.page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await w.page.goto(f"{live}/m/{token}?lang={lang}")
    await w.page.wait_for_function("() => location.pathname === '/m'")
    return w, posts


async def press_device_button(w: Watched, after_field: str) -> None:
    """By keyboard: the button comes right after the measurement's last field."""
    await w.page.focus(after_field)
    await w.page.keyboard.press("Tab")
    assert await w.page.evaluate("() => document.activeElement.dataset.device") is not None
    await w.page.keyboard.press("Enter")


async def test_blood_pressure_read_fills_the_form_and_waits_for_send(
        live: str, conn: Any, rec: Any, ward: Ward, browser: Any) -> None:
    plan, token = await enrol(conn, rec, ward.nurse, ward.patient, measurements=MEASUREMENTS)
    # Flags 0x04: mmHg, pulse rate. 135 / 85 mmHg, mean 101, pulse 70.
    scenario = {"kind": "blood_pressure", "characteristics": [0x2A35],
                "onNotify": {0x2A35: pressure(0x04, 135, 85, 101, *le16(70))}}
    w, posts = await phone(browser, live, token, init_script(scenario))
    await fits_width(w)
    # A button where a device can give the measurement; none for a pulse alone, temperature
    # or symptoms.
    assert await w.page.evaluate(VISIBLE_DEVICE_BUTTONS) == ["blood_pressure", "weight"]

    await press_device_button(w, "#f-diastolic")
    await w.page.wait_for_function("() => document.getElementById('f-systolic').value !== ''")
    assert await w.page.input_value("#f-systolic") == "135"
    assert await w.page.input_value("#f-diastolic") == "85"
    assert await w.page.input_value("#f-heart_rate") == "70"
    assert await w.page.evaluate("() => document.activeElement.id") == "f-systolic"
    assert await w.page.inner_text("#m-status") == "Check the numbers, then press Send."
    assert await w.page.evaluate("() => window.bluetoothLog.at(-1)") == "disconnect"
    # Nothing sent: not a request, not an entry waiting on the phone, not a row.
    assert posts == []
    assert await w.page.evaluate(OUTBOX) is None
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 0

    await w.page.click("#m-form button[type=submit]")
    await w.page.wait_for_function(f"() => {OUTBOX[6:]} === null && "
                                   "document.getElementById('m-status').textContent.includes('Thank')")
    _, stored = await service.readings(conn, rec, ward.nurse, plan.id)
    assert sorted((r.measurement, r.source, r.content and r.content.values) for r in stored) == [
        ("blood_pressure", "device", {"systolic": 135, "diastolic": 85}),
        ("heart_rate", "device", {"heart_rate": 70})]
    w.assert_clean()


async def test_kpa_converted_and_an_old_reading_named(
        live: str, conn: Any, rec: Any, ward: Ward, browser: Any) -> None:
    _, token = await enrol(conn, rec, ward.nurse, ward.patient, measurements=MEASUREMENTS)
    # Flags 0x07: kPa, time stamp, pulse. 16.0 kPa (160 x 10^-1, 0xF0A0) x 7.50062 = 120.01
    # -> 120 mmHg; 10.7 kPa (0xF06B) = 80.26 -> 80; mean 12.4 kPa (0xF07C). Taken on
    # Tuesday 4 March 2025 at 08:30 on the monitor's clock, pulse 72.
    when = [*le16(2025), 3, 4, 8, 30, 0]
    scenario = {"kind": "blood_pressure", "characteristics": [0x2A35],
                "onNotify": {0x2A35: pressure(0x07, 0xF0A0, 0xF06B, 0xF07C, *when, *le16(72))}}
    w, posts = await phone(browser, live, token, init_script(scenario))
    await press_device_button(w, "#f-diastolic")
    await w.page.wait_for_function("() => document.getElementById('f-systolic').value !== ''")
    assert [await w.page.input_value(f) for f in ("#f-systolic", "#f-diastolic",
                                                  "#f-heart_rate")] == ["120", "80", "72"]
    # The day in the page's language, isolated (FSI ... PDI) as every value the script puts
    # in a sentence; the year because it is not this year's.
    assert await w.page.inner_text("#m-status") == (
        "This reading is from \u2068Tuesday, 4 March 2025 at 8:30\u2069. "
        "Check the numbers, then press Send.")
    # Then a scale in pounds: 16000 steps of 0.01 lb = 160 lb = 72.575 kg -> 72.6 kg.
    await w.page.evaluate("""() => { window.bluetoothScenario.characteristics = [0x2A9D];
      window.bluetoothScenario.onNotify = { [0x2A9D]: [[0x01, 16000 & 0xFF, 16000 >> 8]] }; }""")
    await press_device_button(w, "#f-weight")
    await w.page.wait_for_function("() => document.getElementById('f-weight').value !== ''")
    assert await w.page.input_value("#f-weight") == "72.6"
    assert await w.page.evaluate("() => document.activeElement.id") == "f-weight"
    assert await w.page.input_value("#f-systolic") == "120"
    assert posts == []
    assert await conn.fetchval("SELECT count(*) FROM monitoring_readings") == 0
    w.assert_clean()


async def test_errors_in_plain_words_and_no_button_without_bluetooth(
        live: str, conn: Any, rec: Any, ward: Ward, browser: Any) -> None:
    _, token = await enrol(conn, rec, ward.nurse, ward.patient, measurements=MEASUREMENTS)
    # The patient closes the chooser: nothing to say. Then a monitor that cannot be
    # connected: the words, in Italian.
    scenario = {"kind": "blood_pressure", "characteristics": [0x2A35], "cancel": True}
    w, posts = await phone(browser, live, token, init_script(scenario), lang="it")
    await press_device_button(w, "#f-diastolic")
    await w.page.wait_for_function("() => window.bluetoothLog.length === 1 && "
                                   "!document.querySelector('button[data-device]').disabled")
    assert await w.page.is_hidden("#m-status")
    await w.page.evaluate("""() => { window.bluetoothScenario.cancel = false;
                                     window.bluetoothScenario.connectFails = true; }""")
    await w.page.keyboard.press("Enter")
    await w.page.wait_for_selector("#m-status:not([hidden])")
    assert await w.page.inner_text("#m-status") == (
        "Non è stato possibile leggere il dispositivo. Scriva i numeri a mano, per favore.")
    assert await w.page.input_value("#f-systolic") == ""
    assert await w.page.evaluate("() => window.bluetoothLog.at(-1)") == "disconnect"
    assert posts == []
    w.assert_clean()

    # A browser without Web Bluetooth (Firefox, Safari): no button at all.
    plain, _ = await phone(browser, live, token, NO_BLUETOOTH)
    assert await plain.page.evaluate("() => navigator.bluetooth") is None
    assert await plain.page.evaluate(VISIBLE_DEVICE_BUTTONS) == []
    assert await plain.page.locator("button[data-device]").count() == 2
    plain.assert_clean()
