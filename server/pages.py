"""Page rendering and access guards shared by every page handler."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from server import errors
from server.consultations.languages import direction
from server.keys import CSRF_TOKEN, JINJA, KIOSK, LANG, LANGUAGES, SESSION, STAFF
from server.request_info import wants_json
from server.staff import Role, Staff
from server.timeutil import local_day_text, local_time_text
from web.i18n import Catalogues, language_autonym, language_label, language_name, page_languages

log = logging.getLogger("casa.pages")
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "web" / "templates"
_CATALOGUES = web.AppKey("catalogues", Catalogues)

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def setup(app: web.Application) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Placeholders: the real per-request callables are passed in each render's context.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s, **kw: s % kw if kw else s,
        ngettext=lambda s, p, n, **kw: (s if n == 1 else p) % ({"num": n} | kw),
        newstyle=True,
    )
    env.filters["bdi"] = bdi
    # The words handed to scripts (``|tojson``) stay as UTF-8: escaped as \\uXXXX, every
    # Cyrillic, Arabic or Bengali letter cost six bytes instead of two or three, and the call
    # page in Russian 13 KB more than in Italian (HTML is not compressed: BREACH).
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    app[JINJA] = env
    app[_CATALOGUES] = Catalogues.load()


def bdi(value: Any) -> Markup:
    """``{{ name|bdi }}``: a name or other text someone typed, isolated from the sentence
    around it, so its direction (or a stray override character) cannot reorder the page."""
    return Markup("<bdi>{}</bdi>").format(value)


def catalogues(app: web.Application) -> Catalogues:
    return app[_CATALOGUES]


def translator(request: web.Request) -> Callable[..., str]:
    return request.app[_CATALOGUES].gettext(request.get(LANG, "it"))


def context(request: web.Request, **extra: Any) -> dict[str, Any]:
    lang = request.get(LANG, "it")
    cats = request.app[_CATALOGUES]
    gettext = cats.gettext(lang)
    return {
        "lang": lang,
        "dir": direction(lang),
        "languages": request.get(LANGUAGES) or page_languages(request.path, False),
        "gettext": gettext,
        "_": gettext,
        "ngettext": cats.ngettext(lang),
        "user": request.get(STAFF),
        # A centre kiosk (server.kiosks): its pages forget each patient (kiosk-guard.js).
        "kiosk_device": request.get(KIOSK),
        "csrf_token": request.get(CSRF_TOKEN, ""),
        "path": request.path,
        "static": lambda name: str(request.app.router["static"].url_for(filename=name)),
        "language_name": lambda code: language_name(code, lang),
        "language_autonym": language_autonym,
        "language_label": lambda code: language_label(code, lang),
        # Dates and times as the page's language writes them, in Rome time.
        "local_time": lambda instant: local_time_text(instant, lang),
        "local_day": lambda day: local_day_text(day, lang),
        **extra,
    }


def render(request: web.Request, template: str, status: int = 200,
           **extra: Any) -> web.Response:
    html = request.app[JINJA].get_template(template).render(context(request, **extra))
    return web.Response(text=html, status=status, content_type="text/html",
                        headers={"Content-Language": request.get(LANG, "it")})


def render_error(request: web.Request, kind: errors.ErrorKind, message: str | None,
                 details: dict[str, Any], headers: dict[str, str]) -> web.Response:
    _ = translator(request) if _CATALOGUES in request.app else (lambda s, **k: s)
    text = message or _(kind.message)
    if wants_json(request) or JINJA not in request.app:
        body: dict[str, Any] = {"error": {"code": kind.code, "message": text}}
        if details:
            body["error"]["details"] = details
        return web.json_response(body, status=kind.status, headers=headers)
    try:
        resp = render(request, "error.html", status=kind.status, code=kind.code, message=text,
                      status_code=kind.status,
                      details=details)
    except Exception:
        # The error page itself must never fail into a stack trace: plain text it is.
        log.exception("error page failed to render")
        resp = web.Response(text=text, status=kind.status, content_type="text/plain")
    resp.headers.update(headers)
    return resp


def current_staff(request: web.Request) -> Staff:
    """The signed-in staff member, inside a handler guarded by ``require_staff``."""
    user = request[STAFF]
    if user is None:
        raise errors.ApiError(errors.UNAUTHENTICATED)
    return user


def require_staff(*roles: Role) -> Callable[[PageHandler], PageHandler]:
    """Guard a handler: signed-in staff with one of ``roles`` (any role when none given).
    A page sends the browser to the login page; an API call gets 401/403 JSON."""

    def wrap(handler: PageHandler) -> PageHandler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user: Staff | None = request.get(STAFF)
            if user is None:
                session = request.get(SESSION)
                if session is not None and session.mfa_pending:
                    raise web.HTTPSeeOther("/login/totp")
                if wants_json(request) or request.method != "GET":
                    raise errors.ApiError(errors.UNAUTHENTICATED)
                raise web.HTTPSeeOther("/login")
            if user.needs_totp_enrolment and request.path not in ("/account/totp", "/logout"):
                raise web.HTTPSeeOther("/account/totp")
            if roles and user.role not in roles:
                raise errors.ApiError(errors.FORBIDDEN)
            return await handler(request)

        return guarded

    return wrap
