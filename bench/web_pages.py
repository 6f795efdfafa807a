"""Web pages benchmark: bytes a browser fetches to open the join page and the call page
(scripts, styles, fonts, images and sounds included, uncompressed), and the time to a usable
page on Chromium's emulated slow 3G.

    python -m bench.web_pages [--runs 3]

Starts Casa on 127.0.0.1 against a scratch database (DATABASE_URL, or an embedded
PostgreSQL in a temporary directory), books one consultation, and drives Debian's headless
Chromium with a fake camera. Prints one line per number.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from playwright.async_api import async_playwright

from server import centres, patients
from server import staff as staff_store
from server.app import create_app
from server.bookings import bookings, credentials
from server.config import Config
from server.staff import Role
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.pg import TestDatabases

# Chrome DevTools' "Slow 3G" preset: 400 ms x 5 latency, 500 kbit/s x 0.8 both ways.
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 500_000 / 8 * 0.8,
           "uploadThroughput": 500_000 / 8 * 0.8}
BUDGET_BYTES = 100 * 1024


async def _book(url: str) -> str:
    """A new consultation (its own GP, so bookings never clash); returns its link token."""
    conn = await asyncpg.connect(url)
    try:
        await centres.sync(conn, centres.load_data())
        gp = await staff_store.create(conn, email=f"bench-gp-{time.time_ns()}@x.example",
                                      full_name="Bench GP",
                                      role=Role.GP, password="", password_hash="x",
                                      centres=("san-siro",))
        p = await patients.create(conn, patients.NewPatient("Bench", "Patient",
                                                            date(1950, 1, 1)))
        async with conn.transaction():
            b = await bookings.create(conn, bookings.NewBooking(
                centre_id="san-siro", service_code="gp_visit", mode="home_video",
                patient_id=p.id, clinician_id=gp,
                starts_at=datetime.now(UTC) + timedelta(minutes=5)),
                created_by=None, window=bookings.JoinWindow(timedelta(minutes=15),
                                                            timedelta(minutes=30)))
        cid = await conn.fetchval("SELECT id FROM consultations WHERE booking_id = $1", b.id)
        return await credentials.issue_link(conn, cid)
    finally:
        await conn.close()


async def _open(browser: Any, url: str, ready: str, throttle: bool) -> tuple[dict[str, int], float]:
    """Open ``url`` in a fresh context; bytes by resource type and seconds until ``ready``."""
    context = await browser.new_context(viewport=PHONE, permissions=["camera", "microphone"])
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if throttle:
        await cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    sizes: dict[str, int] = {}
    kinds: dict[str, str] = {}

    def response(event: dict[str, Any]) -> None:
        kinds[event["requestId"]] = event["type"].lower()

    def received(event: dict[str, Any]) -> None:
        kind = kinds.get(event["requestId"], "other")
        sizes[kind] = sizes.get(kind, 0) + int(event["dataLength"])

    cdp.on("Network.responseReceived", response)
    cdp.on("Network.dataReceived", received)
    started = time.perf_counter()
    await page.goto(url, wait_until="commit", timeout=120_000)
    await page.wait_for_selector(ready, timeout=120_000)
    await page.wait_for_load_state("load", timeout=120_000)
    elapsed = time.perf_counter() - started
    await context.close()
    return sizes, elapsed


def _line(name: str, value: str) -> None:
    print(f"{name:<48} {value}")


async def main(dbs: TestDatabases, runs: int) -> None:
    tmp = tempfile.TemporaryDirectory(prefix="casa-bench-web-")
    try:
        name = await dbs.create()
        config = Config(secret_key="bench-secret-key-" + "x" * 40, data_dir=Path(tmp.name),
                        database_url=dbs.uri(name))
        app = create_app(config)
        runner = web.AppRunner(app)
        await runner.setup()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            precall = "#stage-precall:not([hidden])"
            pages = {"join page (/join)": ("/join", "#code"),
                     "call page (/join/{token} -> /consultation)": (None, precall)}
            for label, (path, ready) in pages.items():
                sizes: dict[str, int] = {}
                times = []
                for _ in range(runs):
                    url = base + path if path else f"{base}/join/{await _book(dbs.uri(name))}"
                    sizes, _fast = await _open(browser, url, ready, throttle=False)
                for _ in range(runs):
                    url = base + path if path else f"{base}/join/{await _book(dbs.uri(name))}"
                    _sizes, slow = await _open(browser, url, ready, throttle=True)
                    times.append(slow)
                total = sum(sizes.values())
                detail = ", ".join(f"{k} {v / 1024:.1f}" for k, v in sorted(sizes.items()))
                _line(f"{label}: KiB", f"{total / 1024:.1f} ({detail}); budget "
                      f"{'met' if total < BUDGET_BYTES else 'MISSED'}")
                _line(f"{label}: slow-3G s to usable (median of {runs})",
                      f"{statistics.median(times):.2f} "
                      f"(min {min(times):.2f}, max {max(times):.2f})")
            await browser.close()
        await runner.cleanup()
        await dbs.drop(name)
    finally:
        tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    databases = TestDatabases()
    try:
        asyncio.run(main(databases, parser.parse_args().runs))
    finally:
        databases.close()
