"""The embedded PostgreSQL comes back by itself, and the last Casa out stops it even after
another Casa was killed. Real processes, real kills."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from server import staff as staff_store
from server.bookings import tokens
from server.staff import Role
from tests.casa_process import (
    CasaProcess,
    postgres_pids,
    postmaster_pid,
    stop_postgres,
    superuser_uri,
)

# The promise: service back within this long after PostgreSQL is killed.
BACK_WITHIN_S = 10.0
# Writes keep coming this long before the kill, and the whole scenario is bounded.
WRITES_BEFORE_KILL_S = 1.5
SCENARIO_LIMIT_S = 40.0
WRITERS = 3
REQUEST_TIMEOUT_S = 5.0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp root (0700): the embedded server runs as another user.
    d = Path(tempfile.mkdtemp(prefix="casa-embedded-"))
    os.chmod(d, 0o755)
    yield d
    stop_postgres(d / "pgdata")
    shutil.rmtree(d, ignore_errors=True)


async def _bearer(pgdata: Path) -> dict[str, str]:
    """A coordinator's API token, written as the superuser (a fixture, not the app)."""
    conn = await asyncpg.connect(superuser_uri(pgdata))
    try:
        staff_id = await staff_store.create(
            conn, email="coord@casa.example", full_name="Coordinatrice", role=Role.COORDINATOR,
            password="", password_hash="x", language="it", centres=("san-siro",))
        _, token = await tokens.create(conn, staff_id, "supervision test")
    finally:
        await conn.close()
    return {"Authorization": f"Bearer {token}"}


class Writers:
    """Patients created through the API, concurrently; only a 201 counts as acknowledged."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers
        self.acknowledged: dict[int, str] = {}
        self.failed = 0
        self.stopped = False
        self._names = itertools.count()

    async def run(self, session: aiohttp.ClientSession) -> None:
        while not self.stopped:
            name = f"Paziente{next(self._names):05d}"
            body = {"given_name": name, "family_name": "Supervisione",
                    "date_of_birth": "1950-01-01"}
            try:
                async with session.post(f"{self.base}/api/v1/patients", json=body,
                                        headers=self.headers,
                                        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
                                        ) as resp:
                    if resp.status == 201:
                        self.acknowledged[int((await resp.json())["id"])] = name
                        continue
                    self.failed += 1
            except (TimeoutError, aiohttp.ClientError):
                self.failed += 1
            await asyncio.sleep(0.02)


async def _health(session: aiohttp.ClientSession, base: str) -> tuple[int, str]:
    try:
        async with session.get(f"{base}/healthz",
                               timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as resp:
            body = await resp.json()
            return resp.status, str(body["database"]["status"])
    except (TimeoutError, aiohttp.ClientError):
        return 0, "unreachable"


async def kill_postgres_and_wait(casa: CasaProcess, session: aiohttp.ClientSession,
                                 limit_s: float = SCENARIO_LIMIT_S) -> tuple[float, list[str]]:
    """kill -9 the postmaster; return the seconds until /healthz is 200 again, and what health
    said meanwhile."""
    pid = postmaster_pid(casa.pgdata)
    assert pid is not None
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    seen: list[str] = []
    while time.monotonic() - killed_at < limit_s:
        status, db = await _health(session, casa.base)
        if status == 200 and postmaster_pid(casa.pgdata) not in (pid, None):
            return time.monotonic() - killed_at, seen
        seen.append(f"{status}:{db}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"PostgreSQL not back within {limit_s} s; health said {seen[-5:]}")


@pytest.mark.serial  # a restart timed under writes: alone, after the parallel run (Makefile)
async def test_killed_postgres_comes_back_and_loses_no_acknowledged_write(data_dir: Path
                                                                         ) -> None:
    casa = CasaProcess(data_dir)
    await asyncio.to_thread(casa.start)
    try:
        headers = await _bearer(casa.pgdata)
        writers = Writers(casa.base, headers)
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(writers.run(session)) for _ in range(WRITERS)]
            await asyncio.sleep(WRITES_BEFORE_KILL_S)
            before_kill = len(writers.acknowledged)
            back_after, seen = await kill_postgres_and_wait(casa, session)
            # Writes go on after the restart, then stop.
            await asyncio.sleep(1.0)
            writers.stopped = True
            await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT_S * 2)
        assert before_kill > 0, "no write succeeded before the kill"
        assert back_after < BACK_WITHIN_S, f"back after {back_after:.2f} s"
        # A backend may answer once more before it notices its postmaster died; from the first
        # "down" on, health says so until the server is back (never a stale 200).
        down = [i for i, s in enumerate(seen) if s.startswith("503:")]
        assert down, seen
        assert all(s.startswith(("503:", "0:")) for s in seen[down[0]:]), seen
        assert "503:restarting" in seen, seen
        assert len(writers.acknowledged) > before_kill, "no write succeeded after the restart"
        conn = await asyncpg.connect(superuser_uri(casa.pgdata))
        try:
            rows = await conn.fetch("SELECT id, given_name FROM patients WHERE id = ANY($1)",
                                    list(writers.acknowledged))
        finally:
            await conn.close()
        assert {r["id"]: r["given_name"] for r in rows} == writers.acknowledged
        assert casa.stop() == 0
        assert not postgres_pids(casa.pgdata), "PostgreSQL left running after a clean stop"
    finally:
        casa.kill()


async def test_the_last_casa_out_stops_postgres_even_after_one_was_killed(data_dir: Path
                                                                          ) -> None:
    first = CasaProcess(data_dir)
    await asyncio.to_thread(first.start)
    second: CasaProcess | None = None
    try:
        postmaster = postmaster_pid(first.pgdata)
        first.kill()
        # The killed Casa never unregistered; PostgreSQL is still up, shared by the next one.
        assert postgres_pids(first.pgdata) == [postmaster]
        second = CasaProcess(data_dir)
        await asyncio.to_thread(second.start)
        assert postmaster_pid(second.pgdata) == postmaster
        assert await asyncio.to_thread(second.stop) == 0
        assert not postgres_pids(first.pgdata), "the last Casa out left PostgreSQL running"
    finally:
        first.kill()
        if second is not None:
            second.kill()
