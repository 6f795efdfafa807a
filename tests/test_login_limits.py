"""Login bursts as an anonymous attacker makes them: raced, from one or many addresses, and
counted by what the server actually checked (the casa_auth_checks metric), not by its answers."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server import staff as staff_store
from server.app import create_app
from server.auth import passwords, ratelimit, throttle, totp
from server.auth.checker import CHECKER
from server.config import Config
from server.keys import METRICS
from tests.conftest import PASSWORD, SECRET_KEY, csrf_token
from tests.pg import serving_url

WRONG = "wrong password!"
# Every receive in these tests is bounded.
TIMEOUT_S = 60


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def proxied(db_url: str, tmp_path: Path, aiohttp_client: Any,
                  clock: Clock) -> TestClient[Any, Any]:
    """An app that believes X-Forwarded-For from loopback, so one test plays many addresses,
    with the throttle's clock in the test's hand."""
    config = Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                    trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    app = create_app(config)
    clock_fn: Callable[[], datetime] = clock
    app[throttle.CLOCK] = clock_fn
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


def _app(client: TestClient[Any, Any]) -> web.Application:
    app = client.app
    assert isinstance(app, web.Application)
    return app


def checks(client: TestClient[Any, Any], kind: str = "password") -> int:
    value = _app(client)[METRICS].get_sample_value("casa_auth_checks_total", {"kind": kind})
    return int(value or 0)


def unbounded_queue(client: TestClient[Any, Any]) -> None:
    """Take the password-check queue out of the way, so only the database limits are tested."""
    _app(client)[CHECKER].limit = 100_000


async def attempt(client: TestClient[Any, Any], email: str, password: str, ip: str,
                  token: str, **extra: str) -> Any:
    headers = {"X-Forwarded-For": ip}
    async with asyncio.timeout(TIMEOUT_S):
        resp = await client.post("/login", data={"email": email, "password": password,
                                                  "csrf_token": token, **extra},
                                 headers=headers, allow_redirects=False)
        await resp.read()
        return resp


async def test_parallel_wrong_logins_from_one_address_check_at_most_its_limit(proxied):
    unbounded_queue(proxied)
    token = await csrf_token(proxied)
    # Three per account, so no pair reaches its delays: only the address limit holds them.
    answers = await asyncio.gather(*[
        attempt(proxied, f"user{i % 50}@test.example", WRONG, "203.0.113.7", token)
        for i in range(150)])
    statuses = [a.status for a in answers]
    assert checks(proxied) <= ratelimit.IP.limit
    assert statuses.count(401) == checks(proxied)
    assert statuses.count(429) == 150 - checks(proxied)


async def test_parallel_wrong_logins_on_one_account_check_only_the_free_attempts(proxied,
                                                                               make_staff):
    unbounded_queue(proxied)
    gp = await make_staff()
    token = await csrf_token(proxied)
    answers = await asyncio.gather(*[attempt(proxied, gp.email, WRONG, "203.0.113.8", token)
                                     for _ in range(150)])
    # The free attempts, and the one that starts the first delay.
    assert checks(proxied) <= ratelimit.PAIR.free + 1
    assert [a.status for a in answers].count(401) == checks(proxied)


async def test_parallel_second_factor_codes_check_at_most_five(proxied, make_staff, db_url):
    unbounded_queue(proxied)
    gp = await make_staff()
    secret = await _enable_totp(db_url, gp.id)
    token = await csrf_token(proxied)
    first = await attempt(proxied, gp.email, PASSWORD, "203.0.113.9", token)
    assert first.headers["Location"] == "/login/totp"
    # The password alone does not make this browser a known device.
    assert "casa_device" not in first.cookies
    token = await csrf_token(proxied, "/login/totp")
    right = totp.current_code(secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    async def guess() -> int:
        async with asyncio.timeout(TIMEOUT_S):
            resp = await proxied.post("/login/totp", data={"code": wrong, "csrf_token": token},
                                      allow_redirects=False)
            return int(resp.status)

    statuses = await asyncio.gather(*[guess() for _ in range(60)])
    assert checks(proxied, "totp") <= ratelimit.TOTP.limit
    assert statuses.count(401) == checks(proxied, "totp")


async def test_a_full_queue_is_answered_429_at_once_before_any_hashing(proxied):
    _app(proxied)[CHECKER].limit = 2
    token = await csrf_token(proxied)
    answers = await asyncio.gather(*[
        attempt(proxied, f"user{i}@test.example", WRONG, f"198.51.100.{i}", token)
        for i in range(20)])
    shed = [a for a in answers if a.status == 429]
    assert shed, "a queue of two took twenty checks"
    assert all(a.headers["Retry-After"] == "1" for a in shed)
    assert checks(proxied) == 20 - len(shed) <= 20
    shed_metric = _app(proxied)[METRICS].get_sample_value("casa_auth_shed_total")
    assert shed_metric == len(shed)


async def test_password_checks_leave_the_event_loop_free(proxied):
    unbounded_queue(proxied)
    started = time.perf_counter()
    passwords.verify_password(WRONG, passwords.DUMMY_HASH)
    one_check = time.perf_counter() - started
    token = await csrf_token(proxied)
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    task = asyncio.create_task(probe())
    await asyncio.gather(*[attempt(proxied, f"u{i}@test.example", WRONG, f"192.0.2.{i}", token)
                           for i in range(8)])
    done.set()
    await task
    assert checks(proxied) == 8
    # On the loop, eight checks stalled it for eight checks' time; off it, the loop only
    # waits for its turn at the interpreter.
    assert max(lags) < max(one_check, 0.05), (max(lags), one_check)


async def test_an_attacker_gets_growing_delays_and_the_owner_still_signs_in(proxied, make_staff,
                                                                          clock):
    gp = await make_staff()
    token = await csrf_token(proxied)
    # Last week the owner signed in at her centre, whose address the attacker now shares.
    shared = "203.0.113.66"
    assert (await attempt(proxied, gp.email, PASSWORD, shared, token)).status == 303
    device = proxied.session.cookie_jar.filter_cookies(proxied.make_url("/"))["casa_device"]
    proxied.session.cookie_jar.clear(lambda cookie: cookie.key == "casa_device")
    token = await csrf_token(proxied)   # a login renews the CSRF cookie
    waits = []
    for _ in range(ratelimit.PAIR.free + 5):
        resp = await attempt(proxied, gp.email, WRONG, shared, token)
        if resp.status == 429:
            waits.append(int(resp.headers["Retry-After"]))
            clock.advance(waits[-1])
            resp = await attempt(proxied, gp.email, WRONG, shared, token)
        assert resp.status == 401
    assert waits == sorted(waits) and len(set(waits)) == len(waits) >= 4, waits
    assert waits[0] == ratelimit.PAIR.base.total_seconds()
    # Now too early again from the attacker's browser ...
    assert (await attempt(proxied, gp.email, PASSWORD, shared, token)).status == 429
    # ... while the owner, from another address, signs in at once ...
    owner = await attempt(proxied, gp.email, PASSWORD, "192.0.2.10", token)
    assert owner.status == 303 and owner.headers["Location"] == "/home"
    # ... and so does her known browser at the attacker's address.
    token = await csrf_token(proxied)
    proxied.session.cookie_jar.clear(lambda cookie: cookie.key == "casa_device")
    proxied.session.cookie_jar.update_cookies({"casa_device": device.value},
                                              proxied.make_url("/"))
    known = await attempt(proxied, gp.email, PASSWORD, shared, token)
    assert known.status == 303 and known.headers["Location"] == "/home"


async def _fill_account_ceiling(client: TestClient[Any, Any], email: str, token: str) -> None:
    """An attacker spread over many addresses: each tries once, until the account's ceiling."""
    for i in range(ratelimit.ACCOUNT.limit):
        resp = await attempt(client, email, WRONG, f"203.0.113.{100 + i}", token)
        assert resp.status == 401


async def test_a_known_device_passes_the_account_ceiling(proxied, make_staff):
    gp = await make_staff()
    token = await csrf_token(proxied)
    # Monday: the owner signs in from her desk; her browser is now known to the account.
    first = await attempt(proxied, gp.email, PASSWORD, "192.0.2.20", token)
    assert first.status == 303
    device = first.cookies["casa_device"]
    assert "HttpOnly" in device.output() and gp.email not in device.value
    await proxied.post("/logout", data={"csrf_token": await csrf_token(proxied, "/home")})
    token = await csrf_token(proxied)   # a login renews the CSRF cookie
    # The attacker's browsers, and then a stranger's, carry no device cookie.
    proxied.session.cookie_jar.clear(lambda cookie: cookie.key == "casa_device")
    await _fill_account_ceiling(proxied, gp.email, token)
    # The stranger with the right password now needs more than the password ...
    refused = await attempt(proxied, gp.email, PASSWORD, "192.0.2.21", token)
    assert refused.status == 429 and 'name="code"' in await refused.text()
    # ... and an unknown account looks just the same.
    await _fill_account_ceiling(proxied, "nobody@test.example", token)
    ghost = await attempt(proxied, "nobody@test.example", PASSWORD, "192.0.2.21", token)
    assert ghost.status == 429 and 'name="code"' in await ghost.text()
    # The owner's browser passes, even from an address the attacker also used.
    proxied.session.cookie_jar.update_cookies({"casa_device": device.value},
                                              proxied.make_url("/"))
    # The owner's browser passes, even from an address the attacker also uses.
    owner = await attempt(proxied, gp.email, PASSWORD, "203.0.113.100", token)
    assert owner.status == 303 and owner.headers["Location"] == "/home"


async def test_a_correct_second_factor_passes_the_account_ceiling(proxied, make_staff, db_url):
    gp = await make_staff()
    secret = await _enable_totp(db_url, gp.id)
    token = await csrf_token(proxied)
    await _fill_account_ceiling(proxied, gp.email, token)
    asked = await attempt(proxied, gp.email, PASSWORD, "192.0.2.30", token)
    assert asked.status == 429
    # A wrong code with the right password reads exactly like a wrong password.
    wrong = f"{(int(totp.current_code(secret)) + 1) % 1_000_000:06d}"
    bad = await attempt(proxied, gp.email, PASSWORD, "192.0.2.30", token, code=wrong)
    assert bad.status == 401
    ok = await attempt(proxied, gp.email, PASSWORD, "192.0.2.30", token,
                       code=totp.current_code(secret))
    assert ok.status == 303 and ok.headers["Location"] == "/home"
    assert "casa_device" in ok.cookies
    assert (await proxied.get("/home", allow_redirects=False)).status == 200


async def test_a_known_device_is_bound_to_its_account_and_password(proxied, make_staff):
    gp = await make_staff()
    nurse = await make_staff()
    token = await csrf_token(proxied)
    assert (await attempt(proxied, gp.email, PASSWORD, "192.0.2.40", token)).status == 303
    token = await csrf_token(proxied)   # a login renews the CSRF cookie
    await _fill_account_ceiling(proxied, nurse.email, token)
    # The GP's device entry does not open the nurse's account.
    assert (await attempt(proxied, nurse.email, PASSWORD, "192.0.2.40", token)).status == 429
    # A new password voids the devices that knew the old one.
    conn = await asyncpg.connect(_db(proxied))
    try:
        await conn.execute("UPDATE staff SET password_hash = $1 WHERE id = $2",
                           passwords.hash_password(PASSWORD + "!"), gp.id)
    finally:
        await conn.close()
    await _fill_account_ceiling(proxied, gp.email, token)
    assert (await attempt(proxied, gp.email, PASSWORD + "!", "192.0.2.40", token)).status == 429


def _db(client: TestClient[Any, Any]) -> str:
    from server.keys import CONFIG

    url = _app(client)[CONFIG].database_url
    assert url is not None
    return str(url)


async def _enable_totp(db_url: str, staff_id: int) -> bytes:
    secret = totp.new_secret()
    c = await asyncpg.connect(db_url)
    try:
        await staff_store.set_totp(c, staff_id, totp.seal(secret, SECRET_KEY, staff_id))
    finally:
        await c.close()
    return secret


async def test_quiet_keys_are_forgotten_and_live_delays_kept(conn):
    now = datetime.now(UTC)
    old = now - throttle.FORGET - timedelta(minutes=1)
    await conn.execute(
        "INSERT INTO login_throttle (key, attempts, window_start, next_at, last_at) VALUES "
        "('ip:quiet', 3, $1, $1, $1), ('pair:delayed', 20, $1, $2, $1), ('ip:live', 1, $2, $2, $2)",
        old, now + timedelta(minutes=5))
    await throttle.purge(conn, now)
    kept = {r["key"] for r in await conn.fetch("SELECT key FROM login_throttle")}
    assert kept == {"pair:delayed", "ip:live"}
