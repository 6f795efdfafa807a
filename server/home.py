"""The landing page and each role's home page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from server import centres
from server.errors import N_
from server.keys import POOL, STAFF
from server.pages import current_staff, render, require_staff
from server.staff import Role, Staff
from server.timeutil import ROME

# Extension point: other modules add (role -> list of (title msgid, href)) links.
HOME_LINKS = web.AppKey("home_links", dict)
# Extension point: what other packages add to the home page's context (records: the notes
# still to sign), so this page shows what they know without importing them.
HomeContext = Callable[[web.Request, Staff], Awaitable[dict[str, Any]]]
HOME_CONTEXT: web.AppKey[list[HomeContext]] = web.AppKey("home_context")
# The clock the greeting reads (tests set a fixed one before the app starts).
HOME_CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("home_clock")

# The greeting by the hour in Milan: "Buongiorno" from 5 to 13, "Buon pomeriggio" to 18,
# "Buonasera" through the night (nobody is greeted "good morning" at half past midnight).
MORNING_FROM, AFTERNOON_FROM, EVENING_FROM = 5, 13, 18


def greeting(now: datetime) -> str:
    """The msgid greeting the user at ``now`` (an aware instant), by the hour in Rome."""
    hour = now.astimezone(ROME).hour
    if MORNING_FROM <= hour < AFTERNOON_FROM:
        return N_("Good morning, %(name)s")
    if AFTERNOON_FROM <= hour < EVENING_FROM:
        return N_("Good afternoon, %(name)s")
    return N_("Good evening, %(name)s")


def setup(app: web.Application) -> None:
    app[HOME_LINKS] = {role: [] for role in Role}
    app[HOME_CONTEXT] = []
    app[HOME_CLOCK] = lambda: datetime.now(UTC)
    app.router.add_get("/", landing, name="landing")
    app.router.add_get("/home", home, name="home")


def add_home_link(app: web.Application, roles: tuple[Role, ...], title: str, href: str) -> None:
    for role in roles:
        app[HOME_LINKS][role].append((title, href))


async def landing(request: web.Request) -> web.StreamResponse:
    if request[STAFF] is not None:
        raise web.HTTPSeeOther("/home")
    return render(request, "landing.html")


@require_staff()
async def home(request: web.Request) -> web.StreamResponse:
    user = current_staff(request)
    all_centres = await centres.list_all(request.app[POOL])
    mine = [c for c in all_centres if c.id in user.centres]
    extra: dict[str, Any] = {}
    for contribute in request.app[HOME_CONTEXT]:
        extra |= await contribute(request, user)
    return render(request, f"home_{user.role.value}.html", centres=mine,
                  all_centres=all_centres, links=request.app[HOME_LINKS][user.role],
                  greeting=greeting(request.app[HOME_CLOCK]()), **extra)
