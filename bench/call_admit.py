"""Admit to first frame through the dashboard: from the clinician's click on "Admit" on
``/dashboard`` to the first video frame the patient's page decodes from the clinician, in
Chromium on 127.0.0.1 with fake cameras. Two ways:

- "check first": the clinician has not passed the device check today on this device, so Admit
  opens the check and the patient is let in by "Join the consultation", clicked as soon as it
  shows (the only way before the day was remembered);
- "checked today": ``localStorage`` says the check was passed today: Admit lets the patient in
  at once.

    python -m bench.call_admit [--runs 7]

Starts Casa against a scratch database (DATABASE_URL, or an embedded PostgreSQL in a
temporary directory). Prints one line per way: median, min, max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from playwright.async_api import async_playwright

from bench.web_pages import print_line, scratch_config, serve
from server import centres, patients
from server import staff as staff_store
from server.auth import sessions
from server.bookings import bookings
from server.consultations import credentials
from server.staff import Role
from tests.browser.conftest import PHONE
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.pg import TestDatabases

LAPTOP = {"width": 1280, "height": 800}
STEP_MS = 30_000
FIRST_FRAME = """() => {
  const v = document.querySelector('#remotes .tile video');
  return !!v && v.readyState >= 2 && v.videoWidth > 0;
}"""


async def book(url: str) -> tuple[str, str, str]:
    """A consultation with its own GP: (link token, room, the GP's session cookie)."""
    conn = await asyncpg.connect(url)
    try:
        await centres.sync(conn, centres.load_data())
        gp = await staff_store.create(conn, email=f"bench-gp-{time.time_ns()}@x.example",
                                      full_name="Bench GP", role=Role.GP, password="",
                                      password_hash="x", centres=("san-siro",))
        p = await patients.create(conn, patients.NewPatient("Bench", "Patient",
                                                            date(1950, 1, 1), language="it"))
        async with conn.transaction():
            b = await bookings.create(conn, bookings.NewBooking(
                centre_id="san-siro", service_code="gp_visit", mode="home_video",
                patient_id=p.id, clinician_id=gp,
                starts_at=datetime.now(UTC) + timedelta(minutes=5)),
                created_by=None, window=bookings.JoinWindow(timedelta(minutes=15),
                                                            timedelta(minutes=30)))
        cid, room = await conn.fetchrow(
            "SELECT id, room_id FROM consultations WHERE booking_id = $1", b.id)
        token = await credentials.issue_link(conn, cid)
        session = await sessions.create(conn, gp, timedelta(hours=1), False)
        return token, room, session
    finally:
        await conn.close()


async def one_admit(browser: Any, base: str, db_url: str, checked_today: bool) -> float:
    """Milliseconds from the click on Admit to the patient's first frame."""
    token, room, session = await book(db_url)
    patient = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"])
    doctor = await browser.new_context(viewport=LAPTOP, permissions=["camera", "microphone"])
    try:
        await doctor.add_cookies([{"name": sessions.COOKIE, "value": session, "url": base}])
        p = await patient.new_page()
        await p.goto(f"{base}/join/{token}")
        await p.click("#precall-continue", timeout=STEP_MS)
        await p.wait_for_selector("#stage-waiting:not([hidden])", timeout=STEP_MS)
        d = await doctor.new_page()
        await d.goto(f"{base}/dashboard")
        if checked_today:
            await d.evaluate("() => { const n = new Date(); localStorage.setItem("
                             "'casa.devicecheck', `${n.getFullYear()}-${n.getMonth() + 1}-"
                             "${n.getDate()}`); }")
        row = f".consultation[data-room='{room}'][data-state=waiting] .admit"
        await d.wait_for_selector(row, timeout=STEP_MS)
        started = time.perf_counter()
        await d.click(row)
        if not checked_today:
            await d.click("#precall-continue", timeout=STEP_MS)
        await p.wait_for_function(FIRST_FRAME, polling="raf", timeout=STEP_MS)
        return (time.perf_counter() - started) * 1000
    finally:
        await patient.close()
        await doctor.close()


async def main(dbs: TestDatabases, runs: int) -> None:
    async with scratch_config(dbs, "casa-bench-admit-") as (config, db), \
            async_playwright() as pw:
        runner, base = await serve(config, baseline=False)
        browser: Any = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        times: dict[bool, list[float]] = {False: [], True: []}
        # Interleaved, so both ways see the same machine load.
        for _ in range(runs):
            for way in (False, True):
                times[way].append(await one_admit(browser, base, db, way))
        for way, label in ((False, "check first"), (True, "checked today")):
            ms = times[way]
            print_line(f"admit to first frame via the dashboard, {label} (ms, {runs} runs)",
                       f"median {statistics.median(ms):.0f}, min {min(ms):.0f}, "
                       f"max {max(ms):.0f}")
        await browser.close()
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    databases = TestDatabases()
    try:
        asyncio.run(main(databases, args.runs))
    finally:
        databases.close()
