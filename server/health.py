"""Liveness for operators and load balancers: is the database reachable?"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from server.keys import DATABASE, POOL
from server.metrics import http

# A health check that hangs is worse than one that says "down".
DB_CHECK_TIMEOUT_S = 2.0


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")


def database_restarting(app: web.Application) -> bool:
    """The embedded server died and its supervisor is starting it again."""
    database = app.get(DATABASE)
    return bool(database and database.supervisor and database.supervisor.restarting)


async def healthz(request: web.Request) -> web.Response:
    if database_restarting(request.app):
        http(request.app).db_up.set(0)
        return web.json_response({"status": "degraded", "database": {"status": "restarting"}},
                                 status=503)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_S):
            await request.app[POOL].fetchval("SELECT 1")
        db = {"status": "up", "ms": round((time.perf_counter() - started) * 1000, 2)}
        ok = True
    except Exception as exc:
        db = {"status": "down", "error": type(exc).__name__}
        ok = False
    http(request.app).db_up.set(1 if ok else 0)
    return web.json_response({"status": "ok" if ok else "degraded", "database": db},
                             status=200 if ok else 503)
