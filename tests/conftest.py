"""Shared fixtures: a real PostgreSQL, a fresh migrated database per test, a running app."""

from __future__ import annotations

import base64
import concurrent.futures
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from server import staff as staff_store
from server.app import create_app
from server.auth import checker, passwords
from server.config import Config
from server.staff import Role
from tests.pg import TestDatabases, serving_url

# tests.factories: staff, patients and bookings made through the real workflow.
pytest_plugins = ("tests.factories", "tests.chromium")

PASSWORD = "correct horse battery staple"
SECRET_KEY = "test-secret-key-" + "x" * 40


@pytest.fixture(scope="session")
def databases() -> Iterator[TestDatabases]:
    dbs = TestDatabases()
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def password_hash() -> str:
    # Argon2id costs ~0.1 s: hash once for the whole run.
    return passwords.hash_password(PASSWORD)


@pytest.fixture
async def db_url(databases: TestDatabases) -> AsyncIterator[str]:
    name = await databases.create()
    yield databases.uri(name)
    await databases.drop(name)


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(db_url)
    yield c
    await c.close()


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    return Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url))


@pytest.fixture(scope="session")
def password_checks() -> Iterator[concurrent.futures.Executor]:
    """One pool of password-check workers for the whole run: spawning one per test app cost
    about 0.6 s for each test that signs in."""
    pool = checker.process_pool(checker.WORKERS)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
async def client(config: Config, aiohttp_client: Any,
                 password_checks: concurrent.futures.Executor) -> TestClient[Any, Any]:
    from server import centres

    app = create_app(config, password_checks=password_checks)
    c: TestClient[Any, Any] = await aiohttp_client(app)
    conn = await asyncpg.connect(config.database_url)
    try:
        await centres.sync(conn, centres.load_data())
    finally:
        await conn.close()
    return c


class StaffFactory:
    def __init__(self, db_url: str, password_hash: str) -> None:
        self.db_url = db_url
        self.password_hash = password_hash
        self._n = 0

    async def __call__(self, role: Role = Role.GP, centres: tuple[str, ...] = ("san-siro",),
                       email: str | None = None, language: str = "it") -> staff_store.Staff:
        self._n += 1
        email = email or f"{role.value}{self._n}@test.example"
        conn = await asyncpg.connect(self.db_url)
        try:
            from server import centres as centre_store

            await centre_store.sync(conn, centre_store.load_data())
            staff_id = await staff_store.create(conn, email=email, full_name=f"Test {role.value}",
                                                role=role, password="",
                                                password_hash=self.password_hash,
                                                language=language, centres=centres)
            found = await staff_store.get(conn, staff_id)
        finally:
            await conn.close()
        assert found is not None
        return found


@pytest.fixture
def make_staff(db_url: str, password_hash: str) -> StaffFactory:
    return StaffFactory(db_url, password_hash)


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf_token(client: TestClient[Any, Any], path: str = "/login") -> str:
    resp = await client.get(path)
    match = CSRF_RE.search(await resp.text())
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@dataclass
class Refused:
    """A page form's refusal, seen as a browser sees it: the POST's 303, then the GET."""

    location: str
    status: int
    html: str


async def post_refused(client: TestClient[Any, Any], path: str, data: dict[str, str],
                       typed: tuple[str, ...] = ()) -> Refused:
    """POST a page form that must be refused: it answers 303 (never a page the browser would
    keep with the request body), and neither the outcome cookie nor the page it leads to
    holds anything typed (``typed``). Shown once: the page after it is the plain form."""
    resp = await client.post(path, data=data, allow_redirects=False)
    assert resp.status == 303, (path, resp.status)
    cookie = resp.cookies["casa_outcome"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    carried = base64.urlsafe_b64decode(cookie.value.rpartition(".")[0]).decode()
    shown = await client.get(resp.headers["Location"], allow_redirects=False)
    html = await shown.text()
    for value in typed:
        assert value not in html and value not in carried, (path, value)
    assert not any(c.key == "casa_outcome" for c in client.session.cookie_jar)
    return Refused(resp.headers["Location"], shown.status, html)


async def login(client: TestClient[Any, Any], email: str, password: str = PASSWORD) -> Any:
    token = await csrf_token(client)
    return await client.post("/login", data={"email": email, "password": password,
                                             "csrf_token": token}, allow_redirects=False)
