"""Every object shared across the application, each under one typed ``web.AppKey``.

Declared here and nowhere else, so a reader sees at a glance what state the app holds. Objects
owned by other packages (the room registry, the keyring, the bus) are typed as ``object`` here to
keep ``server`` free of import cycles; their owners expose typed accessors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import jinja2
from aiohttp import web
from prometheus_client import CollectorRegistry

from server.auth.sessions import Session
from server.config import Config
from server.staff import Staff

# ``async hook(app, staff_id, factor, client_ip)``
AuditLoginHook = Callable[[web.Application, int, str, str], Awaitable[None]]

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
JINJA = web.AppKey("jinja", jinja2.Environment)
METRICS = web.AppKey("metrics", CollectorRegistry)
# Staff WebSockets by staff id, so logging out closes that user's sockets at once.
STAFF_SOCKETS = web.AppKey("staff_sockets", dict)
# Owned by signaling/: the consultation room registry and the cross-instance bus.
ROOMS = web.AppKey("rooms", object)
BUS = web.AppKey("bus", object)
# Owned by records/: the key-encryption keyring.
KEYRING = web.AppKey("keyring", object)
# Owned by the bookings module: the invitation outbox sender task.
OUTBOX = web.AppKey("outbox", object)
# Owned by records/: ``async hook(app, staff_id, factor, ip)`` that audit-logs a staff login.
AUDIT_LOGIN: web.AppKey[AuditLoginHook] = web.AppKey("audit_login")
# Free-form extension point for tests that need to reach into a running app.
EXTRA = web.AppKey("extra", dict)


# Per-request state set by server.middleware, read by handlers.
REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_IP = web.RequestKey("client_ip", str)
LANG = web.RequestKey("lang", str)
STAFF: web.RequestKey[Staff | None] = web.RequestKey("staff")
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
CSRF_COOKIE: web.RequestKey[str | None] = web.RequestKey("csrf_cookie")
CSRF_TOKEN = web.RequestKey("csrf_token", str)
