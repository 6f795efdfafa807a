"""Clinicians' weekly hours and exceptions (leave, extra hours): storage and the coordinator's
page that edits them. Slots are computed from these (``slots.py``)."""

from __future__ import annotations

from datetime import date, datetime, time
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from server import centres, outcome
from server.bookings import views
from server.keys import POOL
from server.pages import current_staff, render, require_staff, translator
from server.staff import Role
from server.timeutil import local_instant, to_local

CSS = "css/bookings.css"

WEEKLY = """
SELECT a.id, a.staff_id, s.full_name, a.weekday, a.starts, a.ends, a.valid_from, a.valid_until
FROM availability a JOIN staff s ON s.id = a.staff_id
WHERE a.centre_id = $1 ORDER BY s.full_name, a.weekday, a.starts
"""
EXCEPTIONS = """
SELECT e.id, e.staff_id, s.full_name, e.kind, e.centre_id, lower(e.during) AS s,
       upper(e.during) AS e
FROM availability_exceptions e JOIN staff s ON s.id = e.staff_id
JOIN staff_centres sc ON sc.staff_id = e.staff_id AND sc.centre_id = $1
WHERE (e.centre_id = $1 OR e.centre_id IS NULL) AND upper(e.during) > now()
ORDER BY lower(e.during)
"""
ADD_WEEKLY = """
INSERT INTO availability (staff_id, centre_id, weekday, starts, ends) VALUES ($1, $2, $3, $4, $5)
"""
ADD_EXCEPTION = """
INSERT INTO availability_exceptions (staff_id, centre_id, kind, during)
VALUES ($1, $2, $3, tstzrange($4, $5))
"""
DELETE_WEEKLY = "DELETE FROM availability WHERE id = $1 AND centre_id = $2"
DELETE_EXCEPTION = """
DELETE FROM availability_exceptions WHERE id = $1
  AND (centre_id = $2 OR (centre_id IS NULL AND staff_id IN
       (SELECT staff_id FROM staff_centres WHERE centre_id = $2)))
"""


async def add_weekly(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int, centre_id: str,
                     weekday: int, starts: time, ends: time) -> None:
    await conn.execute(ADD_WEEKLY, staff_id, centre_id, weekday, starts, ends)


async def add_exception(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int,
                        centre_id: str | None, kind: str, start: datetime,
                        end: datetime) -> None:
    await conn.execute(ADD_EXCEPTION, staff_id, centre_id, kind, start, end)


async def _centre(request: web.Request, value: str | None) -> centres.Centre | None:
    user = current_staff(request)
    mine = [c for c in await centres.list_all(request.app[POOL]) if c.id in user.centres]
    return next((c for c in mine if c.id == value), mine[0] if mine else None)


async def _page(request: web.Request, centre: centres.Centre | None, error: str | None = None,
                status: int = 200) -> web.Response:
    user = current_staff(request)
    pool = request.app[POOL]
    mine = [c for c in await centres.list_all(pool) if c.id in user.centres]
    weekly = await pool.fetch(WEEKLY, centre.id) if centre else []
    exceptions = [dict(r) | {"s": to_local(r["s"]), "e": to_local(r["e"])}
                  for r in await pool.fetch(EXCEPTIONS, centre.id)] if centre else []
    people = await views.clinicians_at(pool, centre.id) if centre else []
    return render(request, "bookings/availability.html", status=status, centres=mine,
                  centre=centre, weekly=weekly, exceptions=exceptions, people=people,
                  error=error, css=CSS)


@require_staff(Role.COORDINATOR)
async def page(request: web.Request) -> web.StreamResponse:
    last = outcome.take(request)
    return outcome.forget(request, await _page(
        request, await _centre(request, request.query.get("centre")),
        last.message if last else None, last.status if last else 200))


def _refused(request: web.Request, centre: centres.Centre | None, status: int,
             message: str) -> web.HTTPSeeOther:
    """Back to the centre's page with the refusal (see server.outcome)."""
    where = f"/bookings/availability?centre={centre.id}" if centre else "/bookings/availability"
    return outcome.redirect(request, where, outcome.Outcome(status, message))


def _time(value: str) -> time:
    return time.fromisoformat(value)


async def _centre_page(request: web.Request) -> str:
    centre = str((await request.post()).get("centre", ""))
    return ("/bookings/availability?" + urlencode({"centre": centre[:64]}) if centre
            else "/bookings/availability")


@outcome.form(_centre_page)
@require_staff(Role.COORDINATOR)
async def submit(request: web.Request) -> web.StreamResponse:
    """Add or remove weekly hours or an exception at one of the coordinator's centres."""
    form = await request.post()
    centre = await _centre(request, str(form.get("centre", "")))
    _ = translator(request)
    if centre is None or centre.id != form.get("centre"):
        raise _refused(request, centre, 403, _("Choose one of your centres."))
    pool = request.app[POOL]
    people = {r["id"] for r in await views.clinicians_at(pool, centre.id)}
    action = form.get("action")
    try:
        staff_id = int(str(form.get("staff_id", "0")))
        if action == "add_weekly":
            if staff_id not in people:
                raise ValueError("staff")
            await add_weekly(pool, staff_id, centre.id, int(str(form.get("weekday"))),
                             _time(str(form.get("starts"))), _time(str(form.get("ends"))))
        elif action == "add_exception":
            if staff_id not in people or form.get("kind") not in ("leave", "extra"):
                raise ValueError("staff")
            day_from = date.fromisoformat(str(form.get("day_from")))
            day_to = date.fromisoformat(str(form.get("day_to") or day_from))
            start = local_instant(day_from, _time(str(form.get("starts") or "00:00")))
            end = local_instant(day_to, _time(str(form.get("ends") or "23:59")))
            # Leave applies everywhere the person works; extra hours at this centre only.
            where = None if form.get("kind") == "leave" else centre.id
            await add_exception(pool, staff_id, where, str(form.get("kind")), start, end)
        elif action == "delete_weekly":
            await pool.execute(DELETE_WEEKLY, int(str(form.get("id"))), centre.id)
        elif action == "delete_exception":
            await pool.execute(DELETE_EXCEPTION, int(str(form.get("id"))), centre.id)
        else:
            raise ValueError("action")
    except (ValueError, TypeError, OverflowError, asyncpg.DataError,
            asyncpg.CheckViolationError):
        raise _refused(request, centre, 422, _("Check the times: the end must come after the "
                                               "start.")) from None
    raise web.HTTPSeeOther(f"/bookings/availability?centre={centre.id}")

