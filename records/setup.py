"""Wires the records layer into the app: keyring, routes and the staff-login audit hook."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from records import anchor, api, audit, drafts, keyring, pages, refusals
from records.crypto import Envelope
from records.errors import KeyringError
from records.keys import RECORDS
from records.service import Records
from server.home import HOME_CONTEXT, add_home_link
from server.keys import AUDIT_LOGIN, CONFIG, JINJA, KEYRING, POOL
from server.staff import Role, Staff

log = logging.getLogger("casa.records")
ROME = ZoneInfo("Europe/Rome")


def records_time(value: datetime, seconds: bool = False) -> str:
    """Jinja filter: a timestamp in Rome time, day first as Italians and most readers expect."""
    return value.astimezone(ROME).strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M")


def records_date(value: date | datetime) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(ROME)
    return value.strftime("%d/%m/%Y")


def setup(app: web.Application) -> None:
    """Routes, the keyring loader and the login audit hook."""
    app.cleanup_ctx.append(_load_keyring)
    app.cleanup_ctx.append(anchor.log_anchors)
    env = app[JINJA]
    env.filters["records_time"] = records_time
    env.filters["records_date"] = records_date
    app[AUDIT_LOGIN] = audit_login
    # Innermost: it sees the refusal a handler raised before the error page is made of it.
    app.middlewares.append(refusals.audit_refusals)
    api.setup(app)
    pages.setup(app)
    add_home_link(app, (Role.GP, Role.NURSE, Role.PSYCHOLOGIST), "Notes: notifications",
                  "/records/inbox")
    add_home_link(app, (Role.ADMIN,), "Audit log", "/admin/audit")
    add_home_link(app, (Role.ADMIN,), "Erase patient notes", "/admin/records/erase")
    app[HOME_CONTEXT].append(_home_unsigned)


async def _home_unsigned(request: web.Request, user: Staff) -> dict[str, list[drafts.Draft]]:
    """The home page's "notes to sign" (metadata only: nothing is decrypted)."""
    return {"unsigned_notes": await drafts.unsigned(request.app[POOL], user)}


async def _load_keyring(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    path = config.keyring_path
    try:
        ring = keyring.load_or_create(path) if config.demo else keyring.load(path)
    except KeyringError as exc:
        # Casa still serves bookings and calls; clinical records answer 503 until fixed.
        log.warning("records disabled: %s", exc)
    else:
        app[KEYRING] = ring
        app[RECORDS] = rec = Records(Envelope(ring))
        # An erasure committed just before a crash may not have reached the keyring file.
        if POOL in app:
            removed = await rec.sweep(app[POOL])
            if removed:
                log.warning("removed %d erased key(s) left in the keyring file", removed)
    yield


async def audit_login(app: web.Application, staff_id: int, factor: str, client_ip: str) -> None:
    """``server.keys.AUDIT_LOGIN``: one audit row per completed login step."""
    async with app[POOL].acquire() as conn:
        await audit.append(conn, action="staff_login", actor_staff_id=staff_id,
                           actor_kind="staff", patient_id=None, booking_id=None,
                           detail={"factor": factor, "ip": client_ip})
