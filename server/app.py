"""The application factory: ``create_app(config)`` builds a complete Casa app, no globals."""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from records import setup as records_setup
from server import (
    centres,
    client_errors,
    db,
    edge,
    health,
    home,
    metrics,
    middleware,
    pages,
    static,
)
from server.accounts import views as accounts_views
from server.auth import checker as auth_checker
from server.auth import throttle as auth_throttle
from server.auth import views as auth_views
from server.bookings import setup as bookings_setup
from server.calls import setup as calls_setup
from server.config import Config
from server.keys import CONFIG, DATABASE, POOL
from server.kiosks import views as kiosk_views
from server.monitoring import setup as monitoring_setup
from server.nurse import setup as nurse_setup
from server.reports import setup as reports_setup
from signaling import setup as signaling_setup

log = logging.getLogger("casa.app")

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
# Forms and JSON bodies are small; anything larger is refused before it is read.
MAX_BODY_BYTES = 1024 * 1024


def create_app(config: Config, *,
               password_checks: concurrent.futures.Executor | None = None) -> web.Application:
    """The whole application. ``password_checks``: an executor for password checks that the
    caller owns and shares between apps (a test session does; a server uses its own pool)."""
    app = web.Application(
        middlewares=[middleware.request_context, middleware.error_pages, edge.body_in_time,
                     middleware.identity, kiosk_views.device],
        client_max_size=MAX_BODY_BYTES,
    )
    app[CONFIG] = config
    app.cleanup_ctx.append(_database)
    app.on_response_prepare.append(middleware.security_headers)
    metrics.setup(app)
    client_errors.setup(app)
    pages.setup(app)
    health.setup(app)
    auth_checker.setup(app, shared=password_checks)
    auth_throttle.setup(app)
    auth_views.setup(app)
    home.setup(app)
    # The packages, in this order: bookings (and their consultations), clinical records,
    # signalling, the call pages.
    bookings_setup.setup(app)
    records_setup.setup(app)
    signaling_setup.setup(app)
    calls_setup.setup(app)
    nurse_setup.setup(app)
    monitoring_setup.setup(app)
    reports_setup.setup(app)
    accounts_views.setup(app)
    kiosk_views.setup(app)
    static.setup(app, STATIC_DIR)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Open the pool (starting the embedded server when no DATABASE_URL, and watching it) and
    migrate."""
    async with db.open_served(app[CONFIG]) as database, db.supervise(database):
        await centres.ensure_loaded(database.pool)
        app[POOL] = database.pool
        app[DATABASE] = database
        yield
