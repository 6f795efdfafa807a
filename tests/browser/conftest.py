"""Browser tests: the real Casa app on 127.0.0.1 and Debian's headless Chromium, driven by
Playwright's async API (never ``playwright install``), with a fake camera and microphone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from server.app import create_app
from server.bookings import bookings
from server.config import Config
from server.staff import Role
from server.timeutil import ROME
from tests.conftest import PASSWORD, StaffFactory
from tests.factories import Factories
from tests.processes import listener, port_of

# Every wait in these tests is bounded; a stuck page fails in seconds, not at the suite timeout.
STEP_MS = 10_000
PHONE = {"width": 360, "height": 740}
WINDOW = bookings.JoinWindow(timedelta(minutes=15), timedelta(minutes=30))
DOB = date(1948, 5, 17)

class LiveServer:
    """The whole app served on 127.0.0.1, in the test's own event loop; ``restart`` stops it
    and serves a new app on the same port, as a server restart or a move to another instance
    looks to a browser."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.runner: web.AppRunner | None = None
        # The port is held from here to ``close``, across restarts: a port found free and
        # bound again at each start could be taken in between by another test process.
        # While the server is stopped, connections wait in the socket's queue (refused
        # connections are not what the restart tests look at: the open sockets are closed).
        self._sock = listener()
        self.port = port_of(self._sock)
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        # Open WebSockets would otherwise hold the shutdown for its default minute.
        self.runner = web.AppRunner(create_app(self.config), shutdown_timeout=2.0)
        await self.runner.setup()
        # A duplicate: stopping the site closes the socket it was given, not the port.
        await web.SockSite(self.runner, self._sock.dup()).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def close(self) -> None:
        await self.stop()
        self._sock.close()


@pytest.fixture
async def live_server(config: Config) -> AsyncIterator[LiveServer]:
    server = LiveServer(config)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def live(live_server: LiveServer) -> str:
    return live_server.url


@dataclass
class Visit:
    """One booked home video consultation and the ways in."""

    room: str
    consultation_id: int
    booking_id: int
    link: str
    code: str
    gp_email: str
    gp_name: str
    patient_name: str
    extra: dict[str, Any] = field(default_factory=dict)


def soon() -> timedelta:
    """When a test's consultation starts: in five minutes, with its join window open, on
    today's Rome date (so it is on today's dashboard even when the tests run at midnight)."""
    now = datetime.now(ROME)
    return timedelta(minutes=5) if (now + timedelta(minutes=5)).date() == now.date() \
        else timedelta(minutes=-5)


async def book(config: Config, gp_id: int, starts_in: timedelta,
               *, given: str = "Maria", service: str = "gp_visit", mode: str = "home_video",
               kiosk_id: int | None = None) -> tuple[int, int, str, str, str]:
    """A patient and a booking through the workflow (``tests.factories``), with a link and a
    code: (booking id, consultation id, room, link token, code)."""
    assert config.database_url is not None
    f = Factories(config.database_url, secret_key=config.secret_key)
    try:
        p = await f.patient(None, given=given, family="Bianchi", born=DOB)
        b = await f.booking(p.id, gp_id, datetime.now(UTC) + starts_in, service=service,
                            mode=mode, kiosk_id=kiosk_id, window=WINDOW)
        c = await f.consultation(b.id)
        link, code = await f.link(b.id), await f.code(b.id)
    finally:
        await f.close()
    return b.id, c.id, c.room_id, link, code


@pytest.fixture
async def visit(conn: asyncpg.Connection, config: Config, make_staff: StaffFactory) -> Visit:
    """A GP at San Siro and a consultation starting about now (its join window is open)."""
    gp = await make_staff(Role.GP, ("san-siro",))
    booking_id, cid, room, link, code = await book(config, gp.id, soon())
    return Visit(room, cid, booking_id, link, code, gp.email, gp.full_name, "Maria Bianchi")


class Watched:
    """A page whose console errors, uncaught exceptions and CSP violations are collected."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        page.set_default_timeout(STEP_MS)

    def _console(self, msg: Any) -> None:
        text = msg.text
        if msg.type == "error" or "Content Security Policy" in text:
            # The browser logs a failed HTTP status as an error; the tests ask for those.
            if "Failed to load resource" in text:
                return
            self.problems.append(f"{msg.type}: {text}")

    def assert_clean(self, allow: tuple[str, ...] = ()) -> None:
        """No problem logged, except those containing one of ``allow`` (the browser's own
        report of a connection refused while a test has the server down, for one)."""
        left = [p for p in self.problems if not any(a in p for a in allow)]
        assert not left, left


async def open_page(browser: Any, *, viewport: dict[str, int] | None = None,
                    locale: str = "it-IT") -> Watched:
    context = await browser.new_context(viewport=viewport or PHONE, locale=locale,
                                        permissions=["camera", "microphone"])
    return Watched(await context.new_page())


async def enter_code(w: Watched, code: str, born: date = DOB) -> None:
    """Type a code and a date of birth into the join form on screen, and send it."""
    await w.page.fill("#code", code)
    await w.page.fill("#day", str(born.day))
    await w.page.fill("#month", str(born.month))
    await w.page.fill("#year", str(born.year))
    await w.page.click("form.join-form button[type=submit]")


def wrong_code(right: str) -> str:
    """A six-digit code that is not ``right``."""
    return "000000" if right != "000000" else "111111"


async def sign_in(w: Watched, base: str, email: str) -> None:
    await w.page.goto(base + "/login")
    await w.page.fill("#email", email)
    await w.page.fill("#password", PASSWORD)
    await w.page.click("button[type=submit].primary")
    await w.page.wait_for_url(lambda url: "/login" not in url)


async def fits_width(w: Watched) -> None:
    """Nothing on the page is wider than the 360 px phone screen."""
    overflow = await w.page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the screen"
