"""The foundation's shared objects and per-request state, each under one typed key.

Feature packages declare their own keys beside their code (``server/bookings/keys.py``,
``records/keys.py``, ``signaling/keys.py``); the few they exchange with the foundation
(the keyring, the login audit hook) are declared here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import jinja2
from aiohttp import web
from prometheus_client import CollectorRegistry

from server.auth.sessions import Session
from server.config import Config
from server.db import Database
from server.kiosks.store import Device
from server.staff import Staff

# ``async hook(app, staff_id, factor, client_ip)``
AuditLoginHook = Callable[[web.Application, int, str, str], Awaitable[None]]

CONFIG = web.AppKey("config", Config)
POOL = web.AppKey("pool", asyncpg.Pool)
# The pool with, for the embedded server, its supervisor (whose state /healthz reports).
DATABASE = web.AppKey("database", Database)
JINJA = web.AppKey("jinja", jinja2.Environment)
METRICS = web.AppKey("metrics", CollectorRegistry)
# Owned by records/: the key-encryption keyring.
KEYRING = web.AppKey("keyring", object)
# Owned by records/: ``async hook(app, staff_id, factor, ip)`` that audit-logs a staff login.
AUDIT_LOGIN: web.AppKey[AuditLoginHook] = web.AppKey("audit_login")


# Per-request state set by server.middleware, read by handlers.
REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_IP = web.RequestKey("client_ip", str)
LANG = web.RequestKey("lang", str)
# The languages this page may be shown in (web.i18n.page_languages): the switcher's choices.
LANGUAGES: web.RequestKey[dict[str, str]] = web.RequestKey("languages")
STAFF: web.RequestKey[Staff | None] = web.RequestKey("staff")
# The staff member behind the request (session or bearer token), for logs and audit: an id only.
ACTOR_STAFF_ID: web.RequestKey[int | None] = web.RequestKey("actor_staff_id")
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
CSRF_COOKIE: web.RequestKey[str | None] = web.RequestKey("csrf_cookie")
CSRF_TOKEN = web.RequestKey("csrf_token", str)
# The centre kiosk this browser is (its enrolment credential, server.kiosks), or None.
KIOSK: web.RequestKey[Device | None] = web.RequestKey("kiosk")
