"""Each clinician's bookings as an iCalendar feed at a secret per-user URL.

The URL's secret is shown once and stored as a hash; making a new one retires the old. Feeds end
up in phone and cloud calendars, so they carry no patient names, and sensitive services are only
"Appointment at <centre>", as in the patients' invitations.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import icalendar
from aiohttp import web

from server.bookings import invitations
from server.keys import POOL
from server.pages import catalogues
from server.request_info import own_origin
from web.i18n import Catalogues

# Enough history for "what did I do last month", enough future for planning.
PAST = timedelta(days=31)
FUTURE = timedelta(days=92)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(b"casa-feed:" + token.encode()).digest()


UPSERT = """
INSERT INTO calendar_feeds (staff_id, token_hash) VALUES ($1, $2)
ON CONFLICT (staff_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, created_at = now()
"""


async def new_feed(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> str:
    """A new secret for the staff member's feed (the previous one stops working)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(UPSERT, staff_id, hash_token(token))
    return token


FEED_OWNER = """
SELECT f.staff_id, s.language FROM calendar_feeds f JOIN staff s ON s.id = f.staff_id
WHERE f.token_hash = $1 AND s.active
"""
FEED_BOOKINGS = """
SELECT b.id, b.mode, b.status, lower(b.during) AS starts_at, upper(b.during) AS ends_at,
       c.name AS centre_name, c.address AS centre_address, s.name AS service_name, s.sensitive,
       st.full_name AS clinician_name
FROM bookings b JOIN centres c ON c.id = b.centre_id JOIN services s ON s.code = b.service_code
JOIN staff st ON st.id = b.clinician_id
WHERE (b.clinician_id = $1 OR b.nurse_id = $1) AND b.during && tstzrange($2, $3)
  AND b.status NOT IN ('entered-in-error', 'waitlist')
ORDER BY lower(b.during)
"""


async def calendar_for(pool: asyncpg.Pool, staff_id: int, language: str, origin: str,
                       cats: Catalogues) -> str:
    """The staff member's calendar as iCalendar text."""
    _ = cats.gettext(language)
    now = datetime.now(UTC)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Casa//Casa calendar feed//IT")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "Casa")
    for r in await pool.fetch(FEED_BOOKINGS, staff_id, now - PAST, now + FUTURE):
        a = invitations.Appointment(
            booking_id=r["id"], centre_name=r["centre_name"],
            centre_address=r["centre_address"], service_name=r["service_name"],
            sensitive=r["sensitive"], clinician_name=r["clinician_name"], mode=r["mode"],
            starts_at=r["starts_at"], ends_at=r["ends_at"], join_url=None, code=None,
            code_url=None)
        ev = invitations.vevent(a, _, with_link=False, cancelled=r["status"] == "cancelled")
        ev.add("url", f"{origin}/bookings/{r['id']}")
        cal.add_component(ev)
    raw: bytes = cal.to_ical()
    return raw.decode()


async def feed(request: web.Request) -> web.StreamResponse:
    """GET /calendar/{token}.ics"""
    token = request.match_info["token"]
    pool = request.app[POOL]
    owner = await pool.fetchrow(FEED_OWNER, hash_token(token)) if len(token) < 100 else None
    if owner is None:
        raise web.HTTPNotFound()
    body = await calendar_for(pool, owner["staff_id"], owner["language"], own_origin(request),
                              catalogues(request.app))
    return web.Response(text=body, content_type="text/calendar",
                        headers={"Content-Disposition": 'inline; filename="casa.ics"'})


def feed_url(origin: str, token: str) -> str:
    return f"{origin}/calendar/{token}.ics"
