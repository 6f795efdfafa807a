"""Health for operators and load balancers: is the database reachable, is there disk to write?

``/healthz`` answers within ``DB_CHECK_TIMEOUT_S`` (plus a disk check bounded the same way)
whatever the database does: a frozen PostgreSQL makes it say "down", not hang. It is 200 only
when the database answers and the disks under Casa's data directory and under the database's
files (when they are on this machine) have room; otherwise 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from server.background import Background
from server.keys import CONFIG, DATABASE, POOL
from server.metrics import http

# Health must answer within 2 s even when PostgreSQL is frozen: the check gets 1.5 s.
DB_CHECK_TIMEOUT_S = 1.5
# Below two WAL segments PostgreSQL is about to refuse writes (and our own files too).
DISK_FULL_BELOW_BYTES = 32 * 1024 * 1024
# After a write failed for want of space, health says "full" this long even if no local disk
# looks full (the database may be on another machine).
STORAGE_FULL_MEMORY_S = 30.0
RETRY_AFTER_S = 30

# Where this database's files live: its tablespace, or the cluster's data directory.
DATABASE_PLACE = """
SELECT coalesce(nullif(pg_tablespace_location(dattablespace), ''),
                current_setting('data_directory'))
  FROM pg_database WHERE datname = current_database()
"""


@dataclass
class HealthState:
    """What health remembers between checks: the one probe in flight, the last full disk."""

    clock: Callable[[], float] = time.monotonic
    storage_full_at: float | None = None
    # Learnt from the first probe that answers; it does not change while the server runs.
    db_place: Path | None = None
    probe: asyncio.Task[str | None] | None = field(default=None, repr=False)
    # The probe may outlive the request that started it (a frozen database); it is kept,
    # its failure logged and, at shutdown, cancelled here.
    tasks: Background = field(default_factory=lambda: Background("health"), repr=False)


HEALTH = web.AppKey("health", HealthState)


def setup(app: web.Application) -> None:
    app[HEALTH] = HealthState()
    app.router.add_get("/healthz", healthz, name="healthz")
    app.on_cleanup.append(_close)


async def _close(app: web.Application) -> None:
    await app[HEALTH].tasks.close()


def note_storage_full(app: web.Application) -> None:
    """Called where a write failed with disk_full or ENOSPC."""
    state = app[HEALTH]
    state.storage_full_at = state.clock()


def database_restarting(app: web.Application) -> bool:
    """The embedded server died and its supervisor is starting it again."""
    database = app.get(DATABASE)
    return bool(database and database.supervisor and database.supervisor.restarting)


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    state = app[HEALTH]
    places = {"data": app[CONFIG].data_dir}
    if state.db_place is not None:
        places["database"] = state.db_place
    database, disk = await asyncio.gather(check_database(app), check_disk(state, places))
    ok = database["status"] == "up" and disk["status"] == "ok"
    http(app).db_up.set(1 if database["status"] == "up" else 0)
    return web.json_response({"status": "ok" if ok else "degraded", "database": database,
                              "disk": disk}, status=200 if ok else 503,
                             headers={} if ok else {"Retry-After": str(RETRY_AFTER_S)})


async def check_database(app: web.Application) -> dict[str, Any]:
    """{"status": "up"|"down"|"restarting", ...}. One probe at a time: a frozen server gets
    one stuck query, not one per health request."""
    if database_restarting(app):
        return {"status": "restarting"}
    state = app[HEALTH]
    if state.probe is None or state.probe.done():
        state.probe = state.tasks.spawn(_probe(app[POOL]), "database probe")
    started = time.perf_counter()
    # wait(), not wait_for(): the answer must not wait for the probe's cancellation either
    # (asyncpg returns a connection to the pool under a shield).
    done, _ = await asyncio.wait({state.probe}, timeout=DB_CHECK_TIMEOUT_S)
    if not done:
        return {"status": "down", "error": "timeout"}
    exc = state.probe.exception()
    if exc is not None:
        return {"status": "down", "error": type(exc).__name__}
    place = state.probe.result()
    if place:
        state.db_place = Path(place)
    return {"status": "up", "ms": round((time.perf_counter() - started) * 1000, 2)}


async def _probe(pool: asyncpg.Pool) -> str | None:
    async with pool.acquire() as conn:
        try:
            place: str | None = await conn.fetchval(DATABASE_PLACE)
        except asyncpg.InsufficientPrivilegeError:
            # Not allowed to see the data directory: the database answered, that is enough.
            return None
        return place


async def check_disk(state: HealthState, places: dict[str, Path]) -> dict[str, Any]:
    """{"status": "ok"|"full", "free_mb": the least free space among the places seen}."""
    free = await _free_bytes(places)
    recent = (state.storage_full_at is not None
              and state.clock() - state.storage_full_at < STORAGE_FULL_MEMORY_S)
    least = min(free.values(), default=None)
    full = recent or (least is not None and least < DISK_FULL_BELOW_BYTES)
    out: dict[str, Any] = {"status": "full" if full else "ok"}
    if least is not None:
        out["free_mb"] = round(least / 2**20, 1)
    if recent:
        out["last_write_refused"] = True
    return out


async def _free_bytes(places: dict[str, Path]) -> dict[str, int]:
    def measure() -> dict[str, int]:
        out = {}
        for name, path in places.items():
            try:
                out[name] = shutil.disk_usage(path).free
            except OSError:
                pass  # not on this machine (a remote database), or not created yet
        return out

    # A hung network filesystem must not hang health: the thread is left to finish alone.
    task = asyncio.ensure_future(asyncio.to_thread(measure))
    done, _ = await asyncio.wait({task}, timeout=DB_CHECK_TIMEOUT_S)
    return task.result() if done else {}
