"""Health tells the truth quickly, as the unlucky operator needs it: a frozen PostgreSQL, a
full disk (a real one: a small tmpfs holding the database's tablespace), a client that hangs up
in the middle of its request."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
from aiohttp import web

from server import centres
from server.app import create_app
from server.config import Config
from server.serving import listening
from tests import pg
from tests.conftest import SECRET_KEY, StaffFactory, csrf_token

# The filesystem the full-disk test fills: big enough for a copy of the template database.
TMPFS_SIZE = "64m"


async def test_healthz_reports_the_database_and_the_disk(client):
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["database"]["status"] == "up"
    assert body["disk"]["status"] == "ok" and body["disk"]["free_mb"] > 32


def _database_processes(pids: list[int]) -> list[psutil.Process]:
    """The backends serving one database and their postmaster: all PostgreSQL does for us."""
    backends = [psutil.Process(pid) for pid in pids]
    return [*backends, psutil.Process(backends[0].ppid())]


@pytest.mark.serial  # a delay measured: alone, after the parallel run (Makefile)
async def test_healthz_answers_within_2_s_while_postgres_is_frozen(client, databases, db_url):
    assert (await client.get("/healthz")).status == 200  # the pool holds live connections
    name = urlsplit(db_url).path.lstrip("/")
    admin = await asyncpg.connect(databases.uri("postgres"))
    try:
        pids = [r["pid"] for r in await admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", name)]
    finally:
        await admin.close()
    frozen = _database_processes(pids)
    try:
        for p in frozen:
            p.send_signal(signal.SIGSTOP)
        for _ in range(3):  # every ask, not only the first, answers in time
            started = time.monotonic()
            resp = await asyncio.wait_for(client.get("/healthz"), 5)
            elapsed = time.monotonic() - started
            body = await resp.json()
            assert elapsed < 2.0, elapsed
            assert resp.status == 503 and body["database"]["status"] == "down", body
            assert resp.headers["Retry-After"] == "30"
    finally:
        for p in frozen:
            p.send_signal(signal.SIGCONT)
    for _ in range(50):
        if (await client.get("/healthz")).status == 200:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("health did not come back after PostgreSQL did")


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    """A real small filesystem (root can mount tmpfs), owned by PostgreSQL's user."""
    mount = Path(tempfile.mkdtemp(prefix="casa-full-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs",
                    str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def _owned_like(directory: Path, pgdata: Path) -> Path:
    """A new directory PostgreSQL's user owns, as a tablespace location must be."""
    owner = pgdata.stat()
    directory.mkdir()
    os.chown(directory, owner.st_uid, owner.st_gid)
    return directory


@pytest.fixture
async def full_disk_db(databases: pg.TestDatabases, tmpfs: Path) -> AsyncIterator[str]:
    """A database copied from the template into a tablespace on the small tmpfs."""
    suffix = f"{os.getpid()}_{time.monotonic_ns()}"
    space, name = f"casa_small_{suffix}", f"casa_full_{suffix}"
    admin = await asyncpg.connect(databases.uri("postgres"))
    try:
        pgdata = await admin.fetchval("SELECT current_setting('data_directory')")
        location = _owned_like(tmpfs / "ts", Path(pgdata))
        await admin.execute(f"CREATE TABLESPACE {space} LOCATION '{location}'")
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{databases.template}" '
                            f"TABLESPACE {space}")
        yield databases.uri(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f"DROP TABLESPACE IF EXISTS {space}")
        await admin.close()


async def fill(url: str) -> None:
    """Write until PostgreSQL says disk_full, in ever smaller steps, so that not even one
    more page fits."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE filler (b text STORAGE PLAIN)")
        for rows in (100_000, 10_000, 1_000, 100, 10, 1):
            while True:
                try:
                    await conn.execute("INSERT INTO filler SELECT md5(g::text) || md5(random()"
                                       "::text) FROM generate_series(1, $1) g", rows)
                except asyncpg.DiskFullError:
                    break
    finally:
        await conn.close()


async def test_a_full_disk_is_a_catalogued_503_and_health_says_so(
        full_disk_db, password_hash, aiohttp_client, tmp_path, caplog):
    config = Config(secret_key=SECRET_KEY, data_dir=tmp_path,
                    database_url=pg.serving_url(full_disk_db))
    gp = await StaffFactory(full_disk_db, password_hash)()
    conn = await asyncpg.connect(full_disk_db)
    try:
        await centres.sync(conn, centres.load_data())
    finally:
        await conn.close()
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/healthz")).status == 200  # learns where the database lives
    await fill(full_disk_db)
    token = await csrf_token(client)
    with caplog.at_level(logging.INFO):
        resp = await client.post("/login", data={"email": gp.email, "password": "x" * 20,
                                                 "csrf_token": token},
                                 headers={"Accept": "application/json"})
    body: dict[str, Any] = await resp.json()
    assert resp.status == 503 and body["error"]["code"] == "storage_full", body
    assert int(resp.headers["Retry-After"]) > 0
    assert "unhandled error" not in caplog.text
    health = await client.get("/healthz")
    status = await health.json()
    assert health.status == 503 and status["disk"]["status"] == "full", status
    assert status["database"]["status"] == "up" and "Retry-After" in health.headers


async def test_no_space_on_our_own_write_is_storage_full(aiohttp_client, config):
    app = create_app(config)

    async def write(request: web.Request) -> web.Response:
        raise OSError(errno.ENOSPC, "No space left on device")

    app.router.add_get("/api/write", write)
    client = await aiohttp_client(app)
    resp = await client.get("/api/write")
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "storage_full"
    assert "Retry-After" in resp.headers
    health = await client.get("/healthz")
    assert health.status == 503 and (await health.json())["disk"]["last_write_refused"]


async def test_a_client_hanging_up_mid_body_is_not_database_unavailable(config, caplog):
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    try:
        async with listening(runner, "127.0.0.1", 0, None) as (_, port):
            with caplog.at_level(logging.INFO):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                             b"application/x-www-form-urlencoded\r\nContent-Length: 500\r\n"
                             b"\r\nemail=a")
                await writer.drain()
                await asyncio.sleep(0.2)
                writer.transport.abort()
                for _ in range(50):
                    if "client went away" in caplog.text:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    assert "database unavailable" not in caplog.text
    assert "client went away" in caplog.text
