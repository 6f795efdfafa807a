"""Tele-monitoring's routes, its missed-reading loop and its home links."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from server import background
from server.errors import N_
from server.home import add_home_link
from server.keys import POOL
from server.monitoring import alerts, api, pages, patient
from server.staff import Role

# How often missed readings are looked for: a tolerance is hours, a minute late is nothing.
MISSED_EVERY_S = 60.0


def setup(app: web.Application) -> None:
    api.setup(app)
    patient.setup(app)
    pages.setup(app)
    add_home_link(app, (Role.GP, Role.NURSE), N_("Tele-monitoring"), "/monitoring")
    app.cleanup_ctx.append(_missed_loop)


async def missed_step(pool: asyncpg.Pool, clock: Callable[[], datetime]) -> None:
    """One look for missed readings, at the time ``clock`` says (tests give theirs)."""
    await alerts.sweep_missed(pool, clock())


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _missed_loop(app: web.Application) -> AsyncIterator[None]:
    async def step() -> None:
        if POOL in app:
            await missed_step(app[POOL], _utc_now)

    async with background.running("monitoring") as tasks:
        tasks.every(MISSED_EVERY_S, step, "missed readings")
        yield
