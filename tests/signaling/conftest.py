"""Fixtures for signalling: consultations made through bookings' modules, staff sessions,
and clients of the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from server.auth import sessions
from server.bookings.bookings import JoinWindow
from server.staff import Role
from signaling.peer import SignalClient
from tests.factories import Factories


@dataclass
class Visit:
    consultation_id: int
    booking_id: int
    room_id: str
    token: str           # the invitation link token (a patient credential)
    patient_id: int
    clinician_id: int


class Visits:
    """Make a patient and a video booking through the bookings workflow; returns its
    consultation and an invitation link token."""

    def __init__(self, factories: Factories) -> None:
        self.factories = factories

    async def __call__(self, clinician_id: int, *, starts_in: timedelta = timedelta(minutes=5),
                       minutes: int = 20, mode: str = "home_video", nurse_id: int | None = None,
                       language: str = "it", open_before: timedelta = timedelta(minutes=15),
                       close_after: timedelta = timedelta(minutes=30),
                       service: str = "gp_visit") -> Visit:
        f = self.factories
        p = await f.patient(None, given="Ada", born=date(1950, 3, 1), language=language)
        kiosk = await f.kiosk() if mode == "kiosk_video" else None
        b = await f.booking(p.id, clinician_id, datetime.now(UTC) + starts_in, minutes=minutes,
                            service=service, mode=mode, kiosk_id=kiosk, nurse_id=nurse_id,
                            window=JoinWindow(open_before, close_after))
        c = await f.consultation(b.id)
        token = await f.link(b.id)
        return Visit(c.id, b.id, c.room_id, token, p.id, clinician_id)


@pytest.fixture
def visits(factories: Factories) -> Visits:
    return Visits(factories)


async def staff_session(db_url: str, staff_id: int, mfa_pending: bool = False) -> str:
    conn = await asyncpg.connect(db_url)
    try:
        return await sessions.create(conn, staff_id, timedelta(hours=2), mfa_pending)
    finally:
        await conn.close()


@pytest.fixture
async def gp(make_staff: Any) -> Any:
    return await make_staff(Role.GP)


@pytest.fixture
def ws_url(client: Any) -> str:
    return str(client.make_url("/ws")).replace("http://", "ws://")


class Clients:
    """Opens signalling clients and closes them all at the end of the test."""

    def __init__(self, url: str, db_url: str) -> None:
        self.url = url
        self.db_url = db_url
        self.opened: list[SignalClient] = []
        self.app: Any = None   # the server's app, when the test made it (two_instances)

    async def raw(self, *, cookies: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> SignalClient:
        c = await SignalClient.connect(self.url, cookies=cookies, headers=headers)
        self.opened.append(c)
        return c

    async def patient(self, visit: Visit, **hello: Any) -> SignalClient:
        c = await self.raw()
        welcome = await c.hello(credential=visit.token, **hello)
        assert welcome["type"] == "welcome", welcome
        return c

    async def staff(self, staff_id: int, room: str | None = None) -> SignalClient:
        token = await staff_session(self.db_url, staff_id)
        c = await self.raw(cookies={"casa_session": token})
        welcome = await c.hello(**({"room": room} if room else {}))
        assert welcome["type"] == "welcome", welcome
        return c

    async def close(self) -> None:
        for c in self.opened:
            await c.close()


@pytest.fixture
async def clients(ws_url: str, db_url: str) -> AsyncIterator[Clients]:
    c = Clients(ws_url, db_url)
    yield c
    await c.close()


async def waiting_until(client: SignalClient, ok: Any, within: float = 10.0) -> list[Any]:
    """The entries of the first ``waiting_list`` for which ``ok(entries)`` holds: several
    lists may come before it (one per change), so waiting for one exact list is a race."""
    import time

    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no waiting_list as expected within {within} s")
        entries: list[Any] = (await client.expect("waiting_list", left))["entries"]
        if ok(entries):
            return entries


def states(entries: list[Any]) -> list[tuple[Any, Any]]:
    return [(e["peer_id"], e["state"]) for e in entries]


async def two_instances(config: Any, aiohttp_client: Any, db_url: str) -> list[Clients]:
    """Two full apps (each with its own hub and bus) on one database, as two instances."""
    from server.app import create_app

    out = []
    for _ in range(2):
        client = await aiohttp_client(create_app(config))
        out.append(Clients(str(client.make_url("/ws")).replace("http://", "ws://"), db_url))
        out[-1].app = client.server.app
    return out


def on_today(minutes: int = 5, otherwise: int = -25) -> timedelta:
    """A start ``minutes`` from now, or ``otherwise`` when that start would fall on another
    day in Rome: dashboards list today's (Rome) consultations, and a test run just before or
    after midnight must still find its booking there. Both keep the join window open
    (20-minute bookings, window until 30 minutes after the end)."""
    from zoneinfo import ZoneInfo

    rome = ZoneInfo("Europe/Rome")
    now = datetime.now(rome)
    if (now + timedelta(minutes=minutes)).date() == now.date():
        return timedelta(minutes=minutes)
    return timedelta(minutes=otherwise)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for crowds of sockets (``crowd.connector_session``; crowd imports
    this module's ``Visit``)."""
    from tests.signaling.crowd import connector_session

    s = connector_session()
    yield s
    await s.close()
