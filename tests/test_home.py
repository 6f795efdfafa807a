"""The home page's words: the greeting by the hour in Milan, one "today" for clinicians, and
the coordinator's calendar heading each person with their own role."""

from __future__ import annotations

import concurrent.futures
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from server import centres
from server.app import create_app
from server.config import Config
from server.home import HOME_CLOCK, greeting
from server.staff import Role
from server.timeutil import ROME
from tests.conftest import StaffFactory, login

MORNING, AFTERNOON, EVENING = ("Good morning, %(name)s", "Good afternoon, %(name)s",
                               "Good evening, %(name)s")


@pytest.mark.parametrize(("rome", "expected"), [
    (datetime(2026, 12, 7, 0, 37), EVENING),     # half past midnight is not "good morning"
    (datetime(2026, 12, 7, 4, 59), EVENING),
    (datetime(2026, 12, 7, 5, 0), MORNING),
    (datetime(2026, 12, 7, 12, 59), MORNING),
    (datetime(2026, 12, 7, 13, 0), AFTERNOON),
    (datetime(2026, 12, 7, 17, 59), AFTERNOON),
    (datetime(2026, 12, 7, 18, 0), EVENING),
    (datetime(2026, 7, 1, 5, 30), MORNING),      # summer time: 03:30 UTC is 05:30 in Milan
    (datetime(2026, 7, 1, 12, 30), MORNING),     # 10:30 UTC
])
def test_greeting_by_the_hour_in_rome(rome: datetime, expected: str) -> None:
    instant = rome.replace(tzinfo=ROME).astimezone(UTC)
    assert greeting(instant) == expected


@pytest.fixture
async def clocked(config: Config, aiohttp_client: Any,
                  password_checks: concurrent.futures.Executor) -> tuple[Any, list[datetime]]:
    """A client whose home page reads the time from ``now[0]``."""
    now = [datetime.now(UTC)]
    app = create_app(config, password_checks=password_checks)
    app[HOME_CLOCK] = lambda: now[0]
    client = await aiohttp_client(app)
    conn = await asyncpg.connect(config.database_url)
    try:
        await centres.sync(conn, centres.load_data())
    finally:
        await conn.close()
    return client, now


def _h1(html: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert found is not None
    return re.sub(r"<[^>]+>", "", found.group(1))


async def test_the_home_page_greets_by_the_time_in_milan(clocked, make_staff: StaffFactory):
    client, now = clocked
    gp = await make_staff(Role.GP)
    assert (await login(client, gp.email)).status == 303
    for rome, words in ((datetime(2026, 12, 7, 0, 37), "Buonasera, Test gp"),
                        (datetime(2026, 12, 7, 9, 0), "Buongiorno, Test gp"),
                        (datetime(2026, 12, 7, 15, 0), "Buon pomeriggio, Test gp")):
        now[0] = rome.replace(tzinfo=ROME)
        assert _h1(await (await client.get("/home")).text()) == words


@pytest.mark.parametrize("role", [Role.GP, Role.PSYCHOLOGIST, Role.NURSE])
async def test_a_clinicians_home_says_today_once(client, make_staff: StaffFactory, role: Role):
    who = await make_staff(role)
    assert (await login(client, who.email)).status == 303
    html = await (await client.get("/home")).text()
    links = re.findall(r'class="card link-card" href="[^"]+">([^<]+)</a>', html)
    assert "Le visite di oggi" in links
    # Only one link speaks of today (the dashboard); the day list is named for what it is.
    assert [t for t in links if "oggi" in t.lower()] == ["Le visite di oggi"], links
    assert "I miei appuntamenti per giorno" in links


async def test_the_calendar_heads_each_person_with_their_role(client, make_staff: StaffFactory):
    for role in (Role.GP, Role.PSYCHOLOGIST, Role.NURSE):
        await make_staff(role)
    desk = await make_staff(Role.COORDINATOR)
    assert (await login(client, desk.email)).status == 303
    html = await (await client.get("/bookings/calendar?centre=san-siro")).text()
    roles = dict(re.findall(r'data-role="(\w+)">([^<]+)</span>', html))
    assert roles == {"gp": "Medico di medicina generale", "psychologist": "Psicologo",
                     "nurse": "Infermiere"}
    head = re.search(r"<thead>.*?</thead>", html, re.S)
    assert head is not None and "Professionista" in head.group(0) and "Medico" not in head.group(0)
