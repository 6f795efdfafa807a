"""Page rendering and access guards shared by every page handler."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from server import errors, static
from server.bundles import graph
from server.consultations.languages import direction
from server.keys import CSRF_TOKEN, JINJA, KIOSK, LANG, LANGUAGES, SESSION, STAFF
from server.request_info import wants_json
from server.staff import Role, Staff
from server.static import VersionedStatic
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
        "page_scripts": lambda *entries, strings=None: page_scripts(request, entries, strings),
        "page_styles": lambda *names: page_styles(request, names),
        "kiosk_guarded": lambda: bool(request.get(_GUARDED)),
        "language_name": lambda code: language_name(code, lang),
        "language_autonym": language_autonym,
        "language_label": lambda code: language_label(code, lang),
        # Dates and times as the page's language writes them, in Rome time.
        "local_time": lambda instant: local_time_text(instant, lang),
        "local_day": lambda day: local_day_text(day, lang),
        **extra,
    }


KIOSK_GUARD = "kiosk-guard.js"
_GUARDED = web.RequestKey("kiosk_guarded", bool)


def page_scripts(request: web.Request, entries: tuple[str, ...],
                 strings: dict[str, str] | None = None) -> Markup:
    """The page's one script: ``entries`` (modules under js/, in order) with what they import
    and the page's words ``strings``, as one bundle (server.bundles). On a centre kiosk the
    kiosk's guard joins the bundle (base.html leaves it out then), so the page's modules stay
    one instance each. Without the served copy (a plain static route, as the benchmark's
    baseline has), the modules go as they are, preloaded, and the words inline."""
    if request.get(KIOSK) is not None and KIOSK_GUARD not in entries:
        entries = (*entries, KIOSK_GUARD)
    if KIOSK_GUARD in entries:
        request[_GUARDED] = True
    resource = request.app.router["static"]
    if isinstance(resource, VersionedStatic):
        name = static.named(request, resource.files, resource.files.scripts(entries, strings))
        url = resource.url_for(filename=name)
        return Markup('<script type="module" src="{}"></script>').format(str(url))
    html = Markup("")
    if strings is not None:
        html += Markup('<script type="application/json" data-strings>{}</script>\n').format(
            htmlsafe_json_dumps(strings, ensure_ascii=False, sort_keys=True))
    sources = {p.name: p.read_text("utf-8") for p in Path(resource.get_info()["directory"],
                                                            "js").glob("*.js")}
    for name in graph(entries, sources):
        html += Markup('<link rel="modulepreload" href="{}">\n').format(
            str(resource.url_for(filename=f"js/{name}")))
    for name in entries:
        html += Markup('<script type="module" src="{}"></script>\n').format(
            str(resource.url_for(filename=f"js/{name}")))
    return html


def page_styles(request: web.Request, names: tuple[str, ...]) -> Markup:
    """The page's one stylesheet: ``names`` (files under css/, in order) joined."""
    resource = request.app.router["static"]
    if isinstance(resource, VersionedStatic):
        name = static.named(request, resource.files, resource.files.styles(names))
        urls = [resource.url_for(filename=name)]
    else:
        urls = [resource.url_for(filename=f"css/{name}") for name in names]
    return Markup("").join(Markup('<link rel="stylesheet" href="{}">').format(str(u))
                           for u in urls)


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
