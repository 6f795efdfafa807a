"""The landing page and each role's home page."""

from __future__ import annotations

from aiohttp import web

from server import centres
from server.keys import POOL, STAFF
from server.pages import current_staff, render, require_staff
from server.staff import Role

# Extension point: other modules add (role -> list of (title msgid, href)) links.
HOME_LINKS = web.AppKey("home_links", dict)


def setup(app: web.Application) -> None:
    app[HOME_LINKS] = {role: [] for role in Role}
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
    return render(request, f"home_{user.role.value}.html", centres=mine,
                  all_centres=all_centres, links=request.app[HOME_LINKS][user.role])
