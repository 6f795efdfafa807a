"""The bookings workflow's context made from the running app (the workflow itself knows
nothing of aiohttp: pages, the API, the demo and the CLI each hand it this)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from server.bookings import outbox
from server.bookings.bookings import JoinWindow
from server.bookings.workflow import Context
from server.keys import CONFIG, POOL
from server.pages import catalogues
from server.request_info import own_origin


def of_app(app: web.Application, origin: str | None = None) -> Context:
    """The context for ``app``; links use CASA_PUBLIC_ORIGIN, else ``origin``, else the
    configured host and port."""
    config = app[CONFIG]
    window = JoinWindow(timedelta(minutes=config.join_open_minutes_before),
                        timedelta(minutes=config.join_close_minutes_after))
    scheme = "https" if config.tls_cert else "http"
    base = config.public_origin or origin or f"{scheme}://{config.host}:{config.port}"
    return Context(app[POOL], config.secret_key, window, base.rstrip("/"), catalogues(app),
                   wake=lambda: outbox.wake_sender(app))


def of_request(request: web.Request) -> Context:
    """The context for a request: links at the origin the request reached."""
    return of_app(request.app, own_origin(request))
