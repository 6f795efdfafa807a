"""Plug-in point: ``setup(app)`` adds ``/ws``, the pre-call echo endpoints and the
signalling hub, bus and watcher (started and stopped with the app)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from server.keys import CONFIG, METRICS, POOL
from signaling import echo, errors, presence, watch
from signaling.bus import Bus
from signaling.handlers import HANDLERS, make_handlers
from signaling.hub import Hub
from signaling.keys import BUS, DIRECTORY, HUB, LIFECYCLE, BookingsDirectory
from signaling.lifecycle import LIMITS, Lifecycle
from signaling.metrics import SignalMetrics
from signaling.ws import ws_view


def setup(app: web.Application) -> None:
    app.router.add_get("/ws", ws_view, name="signaling_ws")
    echo.setup(app)
    app.cleanup_ctx.append(_signaling)


async def _signaling(app: web.Application) -> AsyncIterator[None]:
    import asyncio

    if DIRECTORY not in app:
        app[DIRECTORY] = BookingsDirectory()
    hub = Hub(SignalMetrics(app[METRICS]))
    life = Lifecycle(app, hub, app[DIRECTORY], LIMITS)
    app[HUB] = hub
    app[LIFECYCLE] = life
    app[HANDLERS] = make_handlers(hub, life)
    pool = app[POOL]
    await presence.heartbeat(pool, hub.instance_id)
    bus = Bus(pool, hub.instance_id, hub.on_bus_event, life.resync, app[CONFIG].secret_key,
              on_rejected=lambda reason: hub.metrics.bus_rejected.labels(reason).inc())
    app[BUS] = bus
    await bus.start()
    hub.publish = bus.publish
    idle = timedelta(minutes=app[CONFIG].session_idle_minutes)
    watcher = asyncio.create_task(watch.run(pool, hub, life, idle), name="signaling-watch")
    yield
    await watch.stop(watcher)
    life.cancel_timers()
    for conn in list(hub.conns):
        conn.replaced = True   # dropped in bulk by deregister below, places kept
        await conn.fail(errors.SERVER_SHUTDOWN)
    await echo.close_all(app)
    await bus.stop()
    with contextlib.suppress(Exception):
        await presence.deregister(pool, hub.instance_id)
