"""gatt.js and ble-reader.js in Chromium. The parsers get byte sequences built by hand from the
Bluetooth SIG's field definitions (GATT Specification Supplement: Blood Pressure Measurement,
PLX Spot-Check and Continuous Measurement, Weight Measurement, Glucose Measurement, Date Time)
and IEEE 11073-20601's SFLOAT and FLOAT; every expected value below is worked out from those
definitions (the arithmetic is in the comments), not taken from running the code.

ble-reader.js cannot meet a real device here: the page gets a stand-in for the browser's
``navigator.bluetooth`` (the Web Bluetooth API, not a part of Casa) whose characteristics send
the values a device would, so the reading flow runs for real: chooser filter, connection,
notifications, the glucose meter's Record Access Control Point, timeout and disconnection."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.browser.conftest import Watched, open_page
from tests.browser.fake_bluetooth import INSTALL

JS_DIR = Path(__file__).resolve().parents[2] / "web" / "static" / "js"


@pytest.fixture
async def modules() -> AsyncIterator[str]:
    """A blank page and the modules, served on 127.0.0.1 (a secure context, as Web
    Bluetooth requires): no database, no Casa app needed for pure modules."""
    app = web.Application()

    async def blank(_request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>gatt</title>", content_type="text/html")

    app.router.add_get("/", blank)
    app.router.add_static("/js/", JS_DIR)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def page(browser: Any, modules: str) -> AsyncIterator[Watched]:
    w = await open_page(browser)
    await w.page.goto(modules + "/")
    yield w
    w.assert_clean()


PARSE = """
async ([uuid, bytes]) => {
  const gatt = await import('/js/gatt.js');
  try {
    return gatt.parse(uuid, new DataView(new Uint8Array(bytes).buffer));
  } catch (err) {
    return { error: err.message };
  }
}
"""


async def parse(w: Watched, uuid: int | str, data: list[int]) -> dict[str, Any]:
    result: dict[str, Any] = await w.page.evaluate(PARSE, [uuid, data])
    return result


def le16(v: int) -> list[int]:
    return [v & 0xFF, (v >> 8) & 0xFF]


def when(year: int, month: int, day: int, h: int, m: int, s: int) -> list[int]:
    """The Date Time structure: uint16 year, then month, day, hours, minutes, seconds."""
    return [*le16(year), month, day, h, m, s]


async def test_sfloat_and_float_numbers_and_special_values(page: Watched) -> None:
    cases = await page.page.evaluate("""async () => {
      const { sfloat, float32 } = await import('/js/gatt.js');
      const show = (v) => Number.isNaN(v) ? 'NaN' : (v === Infinity ? '+Inf'
        : (v === -Infinity ? '-Inf' : v));
      return {
        sfloat: [0x0078, 0xF4D2, 0xE16D, 0x0FFF, 0xFF9C, 0x2001, 0x07FD, 0x0803, 0xB05A,
                 0x07FF, 0x0800, 0x07FE, 0x0802, 0x0801].map((r) => show(sfloat(r))),
        float: [0x00000078, 0xFF00016C, 0xFFFFFF85, 0x02000003, 0xFD0F4240,
                0x007FFFFF, 0x00800000, 0x007FFFFE, 0x00800002, 0x00800001]
          .map((r) => show(float32(r))),
      };
    }""")
    # SFLOAT: exponent = high nibble (signed), mantissa = low 12 bits (signed).
    assert cases["sfloat"] == [
        120,      # 0x0078: 120 x 10^0
        123.4,    # 0xF4D2: 0x4D2 = 1234, exponent 0xF = -1
        3.65,     # 0xE16D: 0x16D = 365, exponent 0xE = -2
        -1,       # 0x0FFF: mantissa 0xFFF = -1
        -10,      # 0xFF9C: 0xF9C = -100, exponent -1
        100,      # 0x2001: 1 x 10^2
        2045,     # 0x07FD: the largest mantissa that is not special
        -2045,    # 0x0803: the smallest
        0.0009,   # 0xB05A: 90 x 10^-5 (90 mg/dL in kg/L)
        "NaN",    # 0x07FF NaN
        "NaN",    # 0x0800 NRes
        "+Inf",   # 0x07FE +INFINITY
        "-Inf",   # 0x0802 -INFINITY
        "NaN",    # 0x0801 reserved
    ]
    # FLOAT: exponent = high byte (signed), mantissa = low 24 bits (signed).
    assert cases["float"] == [
        120,      # 0x00000078
        36.4,     # 0xFF00016C: 0x16C = 364, exponent -1
        -12.3,    # 0xFFFFFF85: 0xFFFF85 = -123, exponent -1
        300,      # 0x02000003: 3 x 10^2
        1000,     # 0xFD0F4240: 0x0F4240 = 1000000, exponent 0xFD = -3
        "NaN", "NaN", "+Inf", "-Inf", "NaN",
    ]


async def test_date_time(page: Watched) -> None:
    results = await page.page.evaluate("""async (cases) => {
      const { dateTime } = await import('/js/gatt.js');
      return cases.map((bytes) => {
        try { return dateTime(new DataView(new Uint8Array(bytes).buffer)); }
        catch (err) { return 'Error: ' + err.message; }
      });
    }""", [when(2026, 12, 7, 14, 5, 30), when(0, 12, 7, 14, 5, 30), when(2026, 0, 7, 1, 2, 3),
           when(2026, 2, 29, 10, 0, 0), when(2028, 2, 29, 23, 59, 59),
           when(2026, 13, 1, 0, 0, 0), when(2026, 12, 7, 24, 0, 0),
           when(2026, 12, 7, 14, 5, 30)[:6]])
    assert results[0] == "2026-12-07T14:05:30"
    assert results[1] is None, "year 0: unknown"
    assert results[2] is None, "month 0: unknown"
    assert results[3].startswith("Error: Date Time: not a date"), "2026 is no leap year"
    assert results[4] == "2028-02-29T23:59:59"
    assert results[5].startswith("Error") and results[6].startswith("Error")
    assert results[7].startswith("Error: Date Time: data too short")


async def test_blood_pressure(page: Watched) -> None:
    # Flags 0: mmHg, nothing optional. 120 / 80, mean arterial 93.
    r = await parse(page, 0x2A35, [0x00, *le16(120), *le16(80), *le16(93)])
    assert r == {"kind": "blood_pressure", "unit": "mmHg", "at": None, "valid": True,
                 "values": {"systolic": 120, "diastolic": 80, "meanArterial": 93,
                            "pulse": None, "user": None, "status": None}}
    # Flags 0x1F: kPa, time stamp, pulse rate, user id, measurement status. 16.0 kPa is
    # 160 x 10^-1 = 0xF0A0; 10.7 = 0xF06B; 12.4 = 0xF07C. Status 0x000D: body movement
    # (bit 0), irregular pulse (bit 2), pulse rate above the upper limit (bits 3-4 = 01).
    r = await parse(page, "00002a35-0000-1000-8000-00805f9b34fb",
                    [0x1F, *le16(0xF0A0), *le16(0xF06B), *le16(0xF07C),
                     *when(2026, 12, 7, 8, 30, 0), *le16(72), 3, *le16(0x000D)])
    assert r["unit"] == "kPa" and r["valid"] is True
    assert r["at"] == "2026-12-07T08:30:00"
    assert r["values"] == {
        "systolic": 16, "diastolic": 10.7, "meanArterial": 12.4, "pulse": 72, "user": 3,
        "status": {"bodyMovement": True, "cuffTooLoose": False, "irregularPulse": True,
                   "improperPosition": False, "pulseRateRange": "above"}}
    # Flags 0x06: mmHg, time stamp and pulse; the monitor does not compute the mean (NaN):
    # still a valid reading. Status range bits 10: below the lower limit.
    r = await parse(page, "2A35", [0x16, *le16(130), *le16(85), *le16(0x07FF),
                                   *when(2026, 1, 2, 3, 4, 5), *le16(64), *le16(0x0010 | 0x0022)])
    assert r["valid"] is True and r["values"]["meanArterial"] is None
    assert r["values"]["pulse"] == 64 and r["at"] == "2026-01-02T03:04:05"
    assert r["values"]["status"]["pulseRateRange"] == "below"
    assert r["values"]["status"]["cuffTooLoose"] and r["values"]["status"]["improperPosition"]
    # Pulse NRes: no pulse, still valid; systolic NaN: not a reading.
    r = await parse(page, 0x2A35, [0x04, *le16(118), *le16(76), *le16(90), *le16(0x0800)])
    assert r["valid"] is True and r["values"]["pulse"] is None
    r = await parse(page, 0x2A35, [0x00, *le16(0x07FF), *le16(76), *le16(90)])
    assert r["valid"] is False and r["values"]["systolic"] is None
    r = await parse(page, 0x2A35, [0x00, *le16(0x07FE), *le16(76), *le16(90)])
    assert r["valid"] is False, "+INFINITY is no pressure"
    # User 0xFF: unknown user.
    r = await parse(page, 0x2A35, [0x08, *le16(118), *le16(76), *le16(90), 0xFF])
    assert r["values"]["user"] is None and r["valid"] is True
    # Short: a time stamp announced and cut; only the flags.
    r = await parse(page, 0x2A35, [0x02, *le16(118), *le16(76), *le16(90), 0xEA, 0x07])
    assert r["error"].startswith("Blood Pressure Measurement: data too short for time stamp")
    r = await parse(page, 0x2A35, [0x00])
    assert r["error"].startswith("Blood Pressure Measurement: data too short for systolic")
    r = await parse(page, 0x2A35, [0x10, *le16(118), *le16(76), *le16(90), 0x01])
    assert "measurement status" in r["error"]


async def test_pulse_oximeter_spot_check(page: Watched) -> None:
    r = await parse(page, 0x2A5E, [0x00, *le16(98), *le16(72)])
    assert r["kind"] == "spo2" and r["unit"] == "%" and r["at"] is None and r["valid"] is True
    assert r["values"]["spo2"] == 98 and r["values"]["pulse"] == 72
    assert r["values"]["status"] == {"measurement": None, "device": None}
    # Flags 0x0F: timestamp, measurement status 0x0080 (validated data), device and sensor
    # status 0x000020 (low perfusion, 24 bits), pulse amplitude index 5.2 = 0xF034.
    r = await parse(page, 0x2A5E, [0x0F, *le16(97), *le16(60), *when(2026, 12, 7, 9, 0, 0),
                                   *le16(0x0080), 0x20, 0x00, 0x00, *le16(0xF034)])
    assert r["valid"] is True and r["at"] == "2026-12-07T09:00:00"
    assert r["values"]["pulseAmplitudeIndex"] == 5.2
    assert r["values"]["status"]["measurement"]["validated"] is True
    assert r["values"]["status"]["device"]["lowPerfusion"] is True
    assert r["values"]["status"]["device"]["sensorDisconnected"] is False
    # Flags bit 4: the device's clock is not set, its timestamp is not a time.
    r = await parse(page, 0x2A5E, [0x11, *le16(97), *le16(60), *when(2000, 1, 1, 0, 0, 0)])
    assert r["at"] is None and r["valid"] is True
    # Invalid measurement detected (bit 15); sensor disconnected (device bit 15).
    r = await parse(page, 0x2A5E, [0x02, *le16(97), *le16(60), *le16(0x8000)])
    assert r["valid"] is False and r["values"]["status"]["measurement"]["invalid"] is True
    r = await parse(page, 0x2A5E, [0x04, *le16(97), *le16(60), 0x00, 0x80, 0x00])
    assert r["valid"] is False
    # SpO2 NaN: no reading. Short device status (3 bytes announced, 2 sent).
    r = await parse(page, 0x2A5E, [0x00, *le16(0x07FF), *le16(60)])
    assert r["valid"] is False and r["values"]["spo2"] is None
    r = await parse(page, 0x2A5E, [0x04, *le16(97), *le16(60), 0x00, 0x80])
    assert "device and sensor status" in r["error"]


async def test_pulse_oximeter_continuous(page: Watched) -> None:
    r = await parse(page, 0x2A5F, [0x00, *le16(97), *le16(75)])
    assert r["valid"] is True and r["at"] is None
    assert r["values"]["spo2"] == 97 and r["values"]["pulse"] == 75
    assert r["values"]["fast"] is None and r["values"]["slow"] is None
    # Flags 0x1F: fast, slow, both statuses, pulse amplitude index. SpO2 95.5 = 955 x 10^-1
    # = 0xF3BB.
    r = await parse(page, 0x2A5F, [0x1F, *le16(0xF3BB), *le16(70), *le16(95), *le16(71),
                                   *le16(97), *le16(69), *le16(0x0000), 0x00, 0x00, 0x00,
                                   *le16(0xF034)])
    assert r["valid"] is True and r["values"]["spo2"] == 95.5
    assert r["values"]["fast"] == {"spo2": 95, "pulse": 71}
    assert r["values"]["slow"] == {"spo2": 97, "pulse": 69}
    assert r["values"]["pulseAmplitudeIndex"] == 5.2
    # Slow without fast: the slow pair follows the normal one directly.
    r = await parse(page, 0x2A5F, [0x02, *le16(96), *le16(70), *le16(97), *le16(69)])
    assert r["values"]["fast"] is None and r["values"]["slow"] == {"spo2": 97, "pulse": 69}
    # Data for demonstration (bit 10): not a patient's reading.
    r = await parse(page, 0x2A5F, [0x04, *le16(96), *le16(70), *le16(0x0400)])
    assert r["valid"] is False
    r = await parse(page, 0x2A5F, [0x01, *le16(96), *le16(70)])
    assert "fast SpO2" in r["error"]


async def test_weight(page: Watched) -> None:
    # SI: 0.005 kg per step. 14000 steps = 70 kg; 14001 = 70.005 kg.
    r = await parse(page, 0x2A9D, [0x00, *le16(14000)])
    assert r == {"kind": "weight", "unit": "kg", "at": None, "valid": True,
                 "values": {"weight": 70, "weightKg": 70, "bmi": None, "height": None,
                            "heightUnit": "m", "user": None}}
    r = await parse(page, 0x2A9D, [0x00, *le16(14001)])
    assert r["values"]["weight"] == 70.005
    # Flags 0x0E: time stamp, user 1, BMI 24.5 (245 x 0.1) and height 1.750 m (1750 x 0.001).
    r = await parse(page, 0x2A9D, [0x0E, *le16(15000), *when(2026, 12, 6, 7, 15, 0), 1,
                                   *le16(245), *le16(1750)])
    assert r["at"] == "2026-12-06T07:15:00"
    assert r["values"] == {"weight": 75, "weightKg": 75, "bmi": 24.5, "height": 1.75,
                           "heightUnit": "m", "user": 1}
    # Imperial: 0.01 lb per step. 15432 = 154.32 lb = 154.32 x 0.45359237 = 69.99837 kg.
    r = await parse(page, 0x2A9D, [0x01, *le16(15432)])
    assert r["unit"] == "lb" and r["values"]["weight"] == 154.32
    assert r["values"]["weightKg"] == 69.998
    # Imperial height: 0.1 inch per step, 690 = 69 in; BMI 22.8.
    r = await parse(page, 0x2A9D, [0x09, *le16(15432), *le16(228), *le16(690)])
    assert r["values"]["height"] == 69 and r["values"]["heightUnit"] == "in"
    assert r["values"]["bmi"] == 22.8
    # 0xFFFF: measurement unsuccessful.
    r = await parse(page, 0x2A9D, [0x00, 0xFF, 0xFF])
    assert r["valid"] is False and r["values"]["weight"] is None
    r = await parse(page, 0x2A9D, [0x08, *le16(15000), *le16(245)])
    assert r["error"].startswith("Weight Measurement: data too short for height")
    r = await parse(page, 0x2A9D, [0x00, 0x10])
    assert "weight" in r["error"]


async def test_glucose(page: Watched) -> None:
    # Flags 0x02, kg/L: sequence 1, base time, 90 mg/dL = 0.0009 kg/L = 90 x 10^-5 (0xB05A);
    # capillary whole blood (type 1) from a finger (location 1): 0x11.
    # 90 / 18.016 = 4.9956 mmol/L, shown 5.
    r = await parse(page, 0x2A18, [0x02, *le16(1), *when(2026, 12, 7, 7, 45, 0),
                                   *le16(0xB05A), 0x11])
    assert r["kind"] == "glucose" and r["unit"] == "mg/dL" and r["valid"] is True
    assert r["at"] == "2026-12-07T07:45:00"
    assert r["values"] == {"mgDl": 90, "mmolL": 5, "deviceUnit": "kg/L", "sequence": 1,
                           "type": "capillary_whole_blood", "location": "finger",
                           "status": None, "contextFollows": False}
    # 126 mg/dL = 0.00126 kg/L = 126 x 10^-5 (0xB07E): 126 / 18.016 = 6.994 -> 6.99 mmol/L.
    r = await parse(page, 0x2A18, [0x02, *le16(2), *when(2026, 12, 7, 7, 45, 0),
                                   *le16(0xB07E), 0x11])
    assert r["values"]["mgDl"] == 126 and r["values"]["mmolL"] == 6.99
    # Flags 0x07: time offset +15 min across midnight, mol/L: 5.5 mmol/L = 0.0055 mol/L =
    # 55 x 10^-4 (0xC037); 5.5 x 18.016 = 99.088 -> 99.1 mg/dL. Venous plasma (4), alternate
    # site (2): 0x24. Sequence 258.
    r = await parse(page, 0x2A18, [0x07, *le16(258), *when(2026, 12, 31, 23, 50, 0), *le16(15),
                                   *le16(0xC037), 0x24])
    assert r["at"] == "2027-01-01T00:05:00"
    assert r["values"]["mmolL"] == 5.5 and r["values"]["mgDl"] == 99.1
    assert r["values"]["deviceUnit"] == "mol/L" and r["values"]["sequence"] == 258
    assert r["values"]["type"] == "venous_plasma" and r["values"]["location"] == "alternate_site"
    # A negative offset (-30 min, 0xFFE2).
    r = await parse(page, 0x2A18, [0x03, *le16(3), *when(2026, 12, 7, 0, 10, 0), *le16(0xFFE2),
                                   *le16(0xB05A), 0xF1])
    assert r["at"] == "2026-12-06T23:40:00" and r["values"]["location"] is None
    # Sensor status: battery low only (bit 0) is a valid reading; result too high (bit 5) is
    # not; time fault (bit 11) makes the time unknown.
    base = [*le16(4), *when(2026, 12, 7, 7, 45, 0), *le16(0xB05A), 0x11]
    r = await parse(page, 0x2A18, [0x0A, *base, *le16(0x0001)])
    assert r["valid"] is True and r["values"]["status"]["batteryLow"] is True
    r = await parse(page, 0x2A18, [0x0A, *base, *le16(0x0020)])
    assert r["valid"] is False and r["values"]["status"]["resultTooHigh"] is True
    r = await parse(page, 0x2A18, [0x0A, *base, *le16(0x0800)])
    assert r["valid"] is True and r["at"] is None
    # Control solution (type 10, location 4): not the patient's blood.
    r = await parse(page, 0x2A18, [0x02, *le16(5), *when(2026, 12, 7, 7, 45, 0),
                                   *le16(0xB05A), 0x4A])
    assert r["valid"] is False and r["values"]["type"] == "control_solution"
    # No concentration (flags 0), an unknown base time (year 0), a context to follow.
    r = await parse(page, 0x2A18, [0x10, *le16(6), *when(0, 0, 0, 0, 0, 0)])
    assert r["valid"] is False and r["values"]["mgDl"] is None and r["at"] is None
    assert r["values"]["contextFollows"] is True
    # Concentration NaN.
    r = await parse(page, 0x2A18, [0x02, *le16(7), *when(2026, 12, 7, 7, 45, 0),
                                   *le16(0x07FF), 0x11])
    assert r["valid"] is False and r["values"]["mgDl"] is None
    # Short: the time offset announced, the data ends with the base time.
    r = await parse(page, 0x2A18, [0x01, *le16(8), *when(2026, 12, 7, 7, 45, 0)])
    assert r["error"].startswith("Glucose Measurement: data too short for time offset")
    r = await parse(page, 0x2A18, [0x00, *le16(8), 0xEA, 0x07])
    assert "Date Time: data too short" in r["error"] or "base time" in r["error"]


async def test_dispatch(page: Watched) -> None:
    for uuid in (0x2A9D, "2a9d", "0x2A9D", "00002a9d-0000-1000-8000-00805f9b34fb"):
        r = await parse(page, uuid, [0x00, *le16(14000)])
        assert r["kind"] == "weight", uuid
    assert "no parser" in (await parse(page, 0x2A37, [0x00, 72]))["error"]
    assert "not a Bluetooth SIG" in (await parse(page, "heart", [0x00]))["error"]


# The reading flow against the stand-in for navigator.bluetooth (tests/browser/fake_bluetooth.py).
FAKE = """
async ([scenario, timeoutMs]) => {
  const log = [];
  (""" + INSTALL + """)(scenario, log);
  const { readFromDevice, bluetoothAvailable } = await import('/js/ble-reader.js');
  const available = bluetoothAvailable();
  const started = performance.now();
  try {
    const reading = await readFromDevice(scenario.kind, timeoutMs ? { timeoutMs } : undefined);
    return { available, reading, log };
  } catch (err) {
    return { available, error: { name: err.name, code: err.code, message: err.message },
             elapsed: performance.now() - started, log };
  }
}
"""


def le(*words: int) -> list[int]:
    return [b for w in words for b in le16(w)]


async def read(w: Watched, scenario: dict[str, Any], timeout_ms: int | None = None) -> Any:
    return await w.page.evaluate(FAKE, [scenario, timeout_ms])


async def test_blood_pressure_monitor_gives_its_first_valid_reading(page: Watched) -> None:
    # Two stored measurements: the first has a NaN systolic and is passed over.
    r = await read(page, {"kind": "blood_pressure", "characteristics": [0x2A35],
                          "onNotify": {0x2A35: [[0x00, *le(0x07FF, 80, 93)],
                                                [0x04, *le(135, 85, 101, 70)],
                                                [0x00, *le(150, 95, 113)]]}})
    assert r["available"] is True
    assert r["reading"]["values"]["systolic"] == 135 and r["reading"]["values"]["pulse"] == 70
    assert r["log"][0] == 'request {"filters":[{"services":[6160]}]}'  # 0x1810
    assert r["log"][1:4] == ["connect", "service 1810", "notify 2a35"]
    assert r["log"][-1] == "disconnect"


async def test_each_kind_asks_for_its_service(page: Watched) -> None:
    weight = await read(page, {"kind": "weight", "characteristics": [0x2A9D],
                               "onNotify": {0x2A9D: [[0x00, *le16(14000)]]}})
    assert weight["reading"]["values"]["weight"] == 70
    assert json.loads(weight["log"][0].removeprefix("request ")) == {
        "filters": [{"services": [0x181D]}]}
    # An oximeter with the continuous measurement only: the spot-check is not found, the
    # continuous one is read.
    spo2 = await read(page, {"kind": "spo2", "characteristics": [0x2A5F],
                             "onNotify": {0x2A5F: [[0x00, *le(96, 66)]]}})
    assert spo2["reading"]["kind"] == "spo2" and spo2["reading"]["values"]["spo2"] == 96
    assert "service 1822" in spo2["log"] and spo2["log"][-1] == "disconnect"
    none = await read(page, {"kind": "spo2", "characteristics": []})
    assert none["error"]["code"] == "no_measurement" and none["log"][-1] == "disconnect"


async def test_glucose_meter_is_asked_for_its_last_record(page: Watched) -> None:
    measurement = [0x02, *le16(41), *when(2026, 12, 7, 7, 45, 0), *le16(0xB05A), 0x11]
    r = await read(page, {"kind": "glucose", "characteristics": [0x2A18, 0x2A52],
                          "onWrite": [[0x2A18, measurement], [0x2A52, [0x06, 0x00, 0x01, 0x01]]]})
    assert r["reading"]["values"]["mgDl"] == 90 and r["reading"]["values"]["sequence"] == 41
    assert r["log"][1:] == ["connect", "service 1808", "notify 2a18", "notify 2a52",
                            "write 2a52 1,6", "disconnect"]
    # Nothing stored: the control point answers "no records found" (0x06).
    r = await read(page, {"kind": "glucose", "characteristics": [0x2A18, 0x2A52],
                          "onWrite": [[0x2A52, [0x06, 0x00, 0x01, 0x06]]]})
    assert r["error"]["code"] == "no_record" and r["log"][-1] == "disconnect"
    # A control solution test was the last record: success, but nothing valid to give.
    control = [0x02, *le16(42), *when(2026, 12, 7, 7, 45, 0), *le16(0xB05A), 0x4A]
    r = await read(page, {"kind": "glucose", "characteristics": [0x2A18, 0x2A52],
                          "onWrite": [[0x2A18, control], [0x2A52, [0x06, 0x00, 0x01, 0x01]]]})
    assert r["error"]["code"] == "no_valid_reading" and r["log"][-1] == "disconnect"


async def test_silence_times_out_and_disconnects(page: Watched) -> None:
    # A scale that never sends; the 60 s limit is injected as 300 ms.
    r = await read(page, {"kind": "weight", "characteristics": [0x2A9D]}, timeout_ms=300)
    assert r["error"]["name"] == "BluetoothReadError" and r["error"]["code"] == "timeout"
    assert r["error"]["message"] == "no valid reading within 0.3 s"
    assert 290 <= r["elapsed"] < 5000
    assert r["log"][-1] == "disconnect"
    # Only unusable readings: the timeout says so.
    r = await read(page, {"kind": "weight", "characteristics": [0x2A9D],
                          "onNotify": {0x2A9D: [[0x00, 0xFF, 0xFF], [0x00, 0x01]]}},
                   timeout_ms=300)
    assert r["error"]["code"] == "timeout"
    assert "data too short" in r["error"]["message"] or "unusable" in r["error"]["message"]
    assert r["log"][-1] == "disconnect"
    # The default is a minute.
    default = await page.page.evaluate(
        "async () => (await import('/js/ble-reader.js')).READ_TIMEOUT_MS")
    assert default == 60000


async def test_a_failed_connection_still_disconnects(page: Watched) -> None:
    r = await read(page, {"kind": "blood_pressure", "characteristics": [0x2A35],
                          "connectFails": True})
    assert r["error"]["name"] == "NetworkError"
    assert r["log"][-2:] == ["connect", "disconnect"]


async def test_bluetooth_availability(page: Watched) -> None:
    result = await page.page.evaluate("""async () => {
      const { bluetoothAvailable, readFromDevice } = await import('/js/ble-reader.js');
      Object.defineProperty(navigator, 'bluetooth', { configurable: true, value: undefined });
      const without = bluetoothAvailable();
      let error = null;
      try { await readFromDevice('weight'); } catch (err) { error = err.code; }
      Object.defineProperty(navigator, 'bluetooth', { configurable: true,
        value: { requestDevice: async () => { throw new Error('not reached'); } } });
      let unknown = null;
      try { await readFromDevice('temperature'); } catch (err) { unknown = err.code; }
      return { without, error, with: bluetoothAvailable(), unknown, secure: isSecureContext };
    }""")
    assert result == {"without": False, "error": "unavailable", "with": True,
                      "unknown": "unknown_kind", "secure": True}
