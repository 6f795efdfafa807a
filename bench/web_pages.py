"""Web pages benchmark: bytes a browser fetches to open the join page and the call page
(scripts, styles, fonts, images and sounds included), decoded and on the wire, and the time to
a usable page on Chromium's emulated slow 3G, on a first visit (empty cache) and a repeat
visit (same browser context, so its HTTP cache), for Casa as it is ("casa") and for a
baseline serving /static with aiohttp's plain static route (no compression, no Cache-Control,
unversioned module URLs: what Casa did before server/static.py; without the served copy there
are no bundles either, so its pages load each module, preloaded, and carry their words inline:
server.pages.page_scripts).

    python -m bench.web_pages [--runs 5] [--only casa|baseline]

Every request is counted as Chromium's network stack sees it: one per
``Network.requestWillBeSent``, so each redirect hop is one (its event carries
``redirectResponse``), less those answered by the browser's cache.

Starts both servers on 127.0.0.1 against a scratch database (DATABASE_URL, or an embedded
PostgreSQL in a temporary directory), books consultations, and drives Debian's headless
Chromium with a fake camera. Prints one line per number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from playwright.async_api import async_playwright
from yarl import URL

from server import centres, patients
from server import staff as staff_store
from server import static as static_module
from server.app import create_app
from server.bookings import bookings
from server.config import Config
from server.consultations import credentials
from server.staff import Role
from tests.browser.conftest import PHONE
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.pg import TestDatabases, serving_url

# Chrome DevTools' "Slow 3G" preset: 400 ms x 5 latency, 500 kbit/s x 0.8 (50,000 bytes/s)
# both ways.
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 500_000 / 8 * 0.8,
           "uploadThroughput": 500_000 / 8 * 0.8}
BUDGET_BYTES = 100 * 1024


async def book(url: str, lang: str = "it") -> str:
    """A new consultation (its own GP, so bookings never clash) for a patient speaking
    ``lang``; returns its link token."""
    conn = await asyncpg.connect(url)
    try:
        await centres.sync(conn, centres.load_data())
        gp = await staff_store.create(conn, email=f"bench-gp-{time.time_ns()}@x.example",
                                      full_name="Bench GP",
                                      role=Role.GP, password="", password_hash="x",
                                      centres=("san-siro",))
        p = await patients.create(conn, patients.NewPatient("Bench", "Patient",
                                                            date(1950, 1, 1), language=lang))
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


class Load:
    """One page load: decoded body bytes by resource type, bytes on the wire (headers
    included, from Chromium's encodedDataLength), requests that reached the server, seconds."""

    def __init__(self) -> None:
        self.decoded: dict[str, int] = {}
        self.wire = 0
        self.requests = 0
        self.redirects = 0
        self.seconds = 0.0
        self.in_page = 0.0


async def measure_load(context: Any, url: str, ready: str,
                conditions: dict[str, Any] | None = SLOW_3G) -> Load:
    """Open ``url`` in a new tab of ``context`` on slow 3G (or ``conditions``, None for the
    machine's own network); returns what it cost."""
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    if conditions is not None:
        await cdp.send("Network.emulateNetworkConditions", conditions)
    load = Load()
    kinds: dict[str, str] = {}
    cached: set[str] = set()

    def response(event: dict[str, Any]) -> None:
        kinds[event["requestId"]] = event["type"].lower()
        if event["response"].get("fromDiskCache") or event["response"].get("fromMemoryCache"):
            cached.add(event["requestId"])

    def received(event: dict[str, Any]) -> None:
        kind = kinds.get(event["requestId"], "other")
        load.decoded[kind] = load.decoded.get(kind, 0) + int(event["dataLength"])

    hops: dict[str, int] = {}

    def sent(event: dict[str, Any]) -> None:
        # A redirect hop reuses its request's id: count each hop.
        hops[event["requestId"]] = hops.get(event["requestId"], 0) + 1
        if "redirectResponse" in event:
            load.redirects += 1

    def finished(event: dict[str, Any]) -> None:
        if event["requestId"] not in cached:
            load.wire += int(event["encodedDataLength"])

    def from_cache(event: dict[str, Any]) -> None:
        cached.add(event["requestId"])

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.responseReceived", response)
    cdp.on("Network.dataReceived", received)
    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.requestServedFromCache", from_cache)
    # The same moment seen from inside the page, from the navigation's start: Playwright's own
    # polling adds 0.2-0.4 s to the wall-clock figure on a loaded machine.
    await page.add_init_script(_USABLE_AT % {"ready": json.dumps(ready)})
    started = time.perf_counter()
    await page.goto(url, wait_until="commit", timeout=120_000)
    await page.wait_for_selector(ready, timeout=120_000)
    await page.wait_for_load_state("load", timeout=120_000)
    load.seconds = time.perf_counter() - started
    load.in_page = await page.evaluate(
        "() => Math.max(window.casaUsableAt || 0,"
        " performance.getEntriesByType('navigation')[0].loadEventStart) / 1000")
    load.requests = sum(n for rid, n in hops.items() if rid not in cached)
    await page.close()
    return load


# Injected by DevTools before the page's own scripts (so outside its CSP): when ``ready`` first
# matches, in ms since the navigation started.
_USABLE_AT = """
new MutationObserver((_, observer) => {
  if (!window.casaUsableAt && document.querySelector(%(ready)s)) {
    window.casaUsableAt = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def print_line(name: str, value: str) -> None:
    print(f"{name:<58} {value}", flush=True)


class _PlainStatic(web.StaticResource):
    """The baseline: aiohttp's static route as Casa had it before server/static.py (no
    compression, no Cache-Control, so browsers cache by heuristic). Scripts are unversioned,
    as the module imports were then: the call page's preload list prints static() URLs now,
    and must match the imports to be used."""

    def url_for(  # type: ignore[override]
        self, *, filename: str, append_version: bool | None = None
    ) -> URL:
        return super().url_for(filename=filename,
                               append_version=False if filename.endswith(".js") else None)


def _plain_static(app: web.Application, directory: Path) -> None:
    app.router.register_resource(
        _PlainStatic("/static", directory, name="static", append_version=True))


@contextlib.asynccontextmanager
async def scratch_config(dbs: TestDatabases, prefix: str) -> AsyncIterator[tuple[Config, str]]:
    """A scratch database and data directory for one benchmark run: the app's configuration
    and the database's URL (for booking as its owner); both gone afterwards."""
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    try:
        name = await dbs.create()
        try:
            yield (Config(secret_key="bench-secret-key-" + "x" * 40, data_dir=Path(tmp.name),
                          database_url=serving_url(dbs.uri(name))), dbs.uri(name))
        finally:
            await dbs.drop(name)
    finally:
        tmp.cleanup()


async def serve(config: Config, baseline: bool) -> tuple[web.AppRunner, str]:
    original = static_module.setup
    if baseline:
        static_module.setup = _plain_static
    try:
        app = create_app(config)
    finally:
        static_module.setup = original
    runner = web.AppRunner(app)
    await runner.setup()
    # Port 0, read back: a port found free first could be taken before the site binds it.
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _report(label: str, first: list[Load], repeat: list[Load]) -> None:
    decoded = sum(first[-1].decoded.values())
    detail = ", ".join(f"{k} {v / 1024:.1f}" for k, v in sorted(first[-1].decoded.items()))
    print_line(f"{label}: KiB decoded", f"{decoded / 1024:.1f} ({detail}); budget "
          f"{'met' if decoded < BUDGET_BYTES else 'MISSED'}")
    for name, loads in (("first visit", first), ("repeat visit", repeat)):
        wire = [x.wire / 1024 for x in loads]
        secs = [x.seconds for x in loads]
        requests = [x.requests for x in loads]
        print_line(f"{label}: {name} KiB on the wire, requests (redirects)",
                   f"{statistics.median(wire):.1f}, {statistics.median(requests):g} "
                   f"({min(requests)}-{max(requests)}; redirect hops "
                   f"{max(x.redirects for x in loads)})")
        print_line(f"{label}: {name} slow-3G s to usable (median of {len(loads)})",
                   f"{statistics.median(secs):.2f} (min {min(secs):.2f}, max {max(secs):.2f})")
        inside = [x.in_page for x in loads]
        print_line(f"{label}: {name} same, timed in the page",
                   f"{statistics.median(inside):.2f} (min {min(inside):.2f}, "
                   f"max {max(inside):.2f})")


async def main(dbs: TestDatabases, runs: int, modes: list[str]) -> None:
    async with scratch_config(dbs, "casa-bench-web-") as (config, db), async_playwright() as p:
        browser: Any = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        precall = "#stage-precall:not([hidden])"
        pages = {"join page (/join)": ("/join", "#code"),
                 "call page (/join/{token})": (None, precall)}
        for mode in modes:
            runner, base = await serve(config, baseline=mode == "baseline")
            for label, (path, ready) in pages.items():
                first: list[Load] = []
                repeat: list[Load] = []
                for _ in range(runs):
                    # A fresh context is a first visit; a second load in it (a new
                    # invitation for the call page) is a repeat visit with a warm cache.
                    context = await browser.new_context(
                        viewport=PHONE, permissions=["camera", "microphone"])
                    for loads in (first, repeat):
                        url = base + path if path else f"{base}/join/{await book(db)}"
                        loads.append(await measure_load(context, url, ready))
                    await context.close()
                _report(f"{mode}: {label}", first, repeat)
            await runner.cleanup()
        await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("casa", "baseline"))
    args = parser.parse_args()
    databases = TestDatabases()
    try:
        asyncio.run(main(databases, args.runs, [args.only] if args.only else
                         ["baseline", "casa"]))
    finally:
        databases.close()
