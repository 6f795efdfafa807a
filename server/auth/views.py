"""Login, second factor, logout, TOTP enrolment and the language switch."""

from __future__ import annotations

import io
import logging
import math
from datetime import timedelta
from urllib.parse import urlsplit

import segno
from aiohttp import web

from server import staff as staff_store
from server.auth import csrf, devices, passwords, ratelimit, sessions, throttle, totp
from server.auth.checker import CHECKER, SHED_RETRY_AFTER_S, Overloaded
from server.consultations.languages import STAFF_LANGUAGES
from server.keys import (
    AUDIT_LOGIN,
    CLIENT_IP,
    CONFIG,
    CSRF_COOKIE,
    POOL,
    REQUEST_ID,
    SESSION,
    STAFF,
)
from server.middleware import set_cookie
from server.pages import current_staff, render, require_staff, translator
from web.i18n import LANGUAGE_COOKIE, LANGUAGES

log = logging.getLogger("casa.auth")

# A year: the language choice is a preference, not a credential.
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
MAX_FIELD = 1024


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/login", login_page, name="login")
    r.add_post("/login", login_submit)
    r.add_get("/login/totp", totp_page, name="login_totp")
    r.add_post("/login/totp", totp_submit)
    r.add_post("/logout", logout, name="logout")
    r.add_get("/account/totp", enrol_page, name="totp_enrol")
    r.add_post("/account/totp", enrol_submit)
    r.add_post("/language", set_language, name="language")


def _safe_next(value: object) -> str:
    """Only a plain local path: an open redirect would let a phishing link borrow our domain.
    Browsers drop tabs and newlines from URLs, so ``/\t/evil`` would become ``//evil``."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return "/home"
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in value):
        return "/home"
    parts = urlsplit(value)
    if value.startswith("//") or parts.scheme or parts.netloc:
        return "/home"
    return value


async def login_page(request: web.Request) -> web.StreamResponse:
    if request[STAFF] is not None:
        raise web.HTTPSeeOther("/home")
    return render(request, "login.html", error=None, email="")


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email = str(form.get("email", ""))[:MAX_FIELD].strip()
    password = str(form.get("password", ""))[:MAX_FIELD]
    code = str(form.get("code", ""))[:32].strip()
    try:
        async with request.app[CHECKER].slot():
            return await _check_login(request, email, password, code)
    except Overloaded:
        _ = translator(request)
        resp = render(request, "login.html", status=429, email=email,
                      error=_("The server is busy. Try again in a moment."))
        resp.headers["Retry-After"] = str(SHED_RETRY_AFTER_S)
        return resp


async def _check_login(request: web.Request, email: str, password: str,
                       code: str) -> web.StreamResponse:
    """The login itself, inside a place in the password-check queue (docs/architecture.md,
    staff identity: which attempts are counted where)."""
    pool = request.app[POOL]
    config = request.app[CONFIG]
    ip = request[CLIENT_IP]
    found = await staff_store.password_hash_for(pool, email)
    known = found is not None and devices.is_known(
        request.cookies.get(devices.COOKIE), config.secret_key, email, found[1])
    now = throttle.current_time(request.app)
    async with pool.acquire() as conn:
        refused = await throttle.reserve(
            conn, ratelimit.login_keys(ip, email, known_device=known, count_account=not known),
            now)
        if refused is not None and refused.rule is ratelimit.ACCOUNT and code:
            # The ceiling asks for more than a password; a code with it may go ahead, counted
            # on the address and the pair only.
            refused = await throttle.reserve(
                conn, ratelimit.login_keys(ip, email, known_device=False, count_account=False),
                now)
            second_factor_owed = True
        else:
            second_factor_owed = False
    if refused is not None:
        return _refused(request, email, refused)
    checker = request.app[CHECKER]
    ok = await checker.verify(password, found[1] if found else passwords.DUMMY_HASH)
    if not found or not ok:
        return _wrong(request, email)
    staff_id = found[0]
    sealed, last_step = await staff_store.get_totp(pool, staff_id)
    mfa_done = False
    if code or second_factor_owed:
        # Whatever is wrong, the answer is the same as for a wrong password: a different one
        # would tell an attacker holding the code field that the password was right.
        if sealed is None or not await _second_factor(request, staff_id, sealed, last_step, code):
            return _wrong(request, email)
        mfa_done = True
    async with pool.acquire() as conn:
        # The owner's own attempt is given back, and the pair's failures forgotten.
        await throttle.refund(conn, ratelimit.IP, ip)
        await throttle.clear(conn, ratelimit.PAIR,
                             ratelimit.pair_subject(ip, email, known_device=known))
        if not known and not second_factor_owed:
            await throttle.refund(conn, ratelimit.ACCOUNT, email.lower())
    token = await sessions.create(pool, staff_id, timedelta(hours=config.session_absolute_hours),
                                  mfa_pending=sealed is not None and not mfa_done,
                                  device=sessions.device_summary(
                                      request.headers.get("User-Agent", "")))
    old = request.get(SESSION)
    if old is not None:
        await sessions.revoke(pool, old.token_hash)
    await _audit_login(request, staff_id, "password")
    log.info("login", extra={"request_id": request[REQUEST_ID], "staff_id": staff_id})
    pending = sealed is not None and not mfa_done
    target = "/login/totp" if pending else _safe_next(request.query.get("next"))
    resp = web.HTTPSeeOther(target)
    set_cookie(request, resp, sessions.COOKIE, token, max_age=None)
    # A fresh CSRF cookie: anything planted before login is void now.
    set_cookie(request, resp, csrf.COOKIE, csrf.new_cookie_value(), max_age=None)
    request[CSRF_COOKIE] = None
    if not pending:
        _remember_device(request, resp, email, found[1])
    raise resp


def _remember_device(request: web.Request, resp: web.StreamResponse, email: str,
                     password_hash: str) -> None:
    """Only once every factor is passed: a password alone does not make a device known."""
    value = devices.remember(request.cookies.get(devices.COOKIE),
                             request.app[CONFIG].secret_key, email, password_hash)
    set_cookie(request, resp, devices.COOKIE, value, max_age=devices.MAX_AGE_S)


def _wrong(request: web.Request, email: str) -> web.StreamResponse:
    _ = translator(request)
    log.info("login failed", extra={"request_id": request[REQUEST_ID]})
    return render(request, "login.html", status=401, email=email,
                  error=_("The e-mail address or the password is not right."))


def _refused(request: web.Request, email: str, refused: throttle.Refused) -> web.StreamResponse:
    _ = translator(request)
    wait = refused.retry_after
    if refused.rule is ratelimit.ACCOUNT:
        msg = _("Many wrong sign-ins were tried on this account. Sign in from a device you "
                "have used before, or add the code from your authenticator app.")
    elif wait < 120:
        msg = _("Too many attempts. Try again in %(seconds)s seconds.", seconds=wait)
    else:
        msg = _("Too many attempts. Try again in %(minutes)s minutes.",
                minutes=max(1, math.ceil(wait / 60)))
    resp = render(request, "login.html", status=429, error=msg, email=email,
                  ask_code=refused.rule is ratelimit.ACCOUNT)
    resp.headers["Retry-After"] = str(wait)
    return resp


async def _second_factor(request: web.Request, staff_id: int, sealed: bytes,
                         last_step: int | None, code: str) -> bool:
    """Check a TOTP code, counted atomically on the account before it is checked."""
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        refused = await throttle.reserve(conn, [(ratelimit.TOTP, str(staff_id))],
                                         throttle.current_time(request.app))
    if refused is not None:
        return False
    request.app[CHECKER].count("totp")
    secret = totp.unseal(sealed, request.app[CONFIG].secret_key, staff_id)
    step = totp.verify(secret, code, last_step)
    if step is None or not await staff_store.advance_totp_step(pool, staff_id, step):
        return False
    async with pool.acquire() as conn:
        await throttle.clear(conn, ratelimit.TOTP, str(staff_id))
    return True


async def _audit_login(request: web.Request, staff_id: int, factor: str) -> None:
    hook = request.app.get(AUDIT_LOGIN)
    if hook is not None:
        await hook(request.app, staff_id, factor, request[CLIENT_IP])


async def totp_page(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is None or not session.mfa_pending:
        raise web.HTTPSeeOther("/login")
    return render(request, "login_totp.html", error=None)


async def totp_submit(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is None or not session.mfa_pending:
        raise web.HTTPSeeOther("/login")
    form = await request.post()
    pool = request.app[POOL]
    _ = translator(request)
    async with pool.acquire() as conn:
        # The second factor has its own budget against guessing, counted on the account.
        refused = await throttle.reserve(conn, [(ratelimit.TOTP, str(session.staff_id))],
                                         throttle.current_time(request.app))
    if refused is not None:
        minutes = max(1, math.ceil(refused.retry_after / 60))
        resp = render(request, "login_totp.html", status=429,
                      error=_("Too many attempts. Try again in %(minutes)s minutes.",
                              minutes=minutes))
        resp.headers["Retry-After"] = str(refused.retry_after)
        return resp
    request.app[CHECKER].count("totp")
    sealed, last_step = await staff_store.get_totp(pool, session.staff_id)
    step = None
    if sealed is not None:
        secret = totp.unseal(sealed, request.app[CONFIG].secret_key, session.staff_id)
        step = totp.verify(secret, str(form.get("code", ""))[:32], last_step)
    if step is None or not await staff_store.advance_totp_step(pool, session.staff_id, step):
        return render(request, "login_totp.html", status=401,
                      error=_("That code is not right. Use the newest code in your app."))
    async with pool.acquire() as conn:
        await throttle.clear(conn, ratelimit.TOTP, str(session.staff_id))
    await sessions.complete_mfa(pool, session.token_hash)
    resp = web.HTTPSeeOther("/home")
    user = await staff_store.get(pool, session.staff_id)
    found = await staff_store.password_hash_for(pool, user.email) if user else None
    if user is not None and found is not None:
        _remember_device(request, resp, user.email, found[1])
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    session = request.get(SESSION)
    if session is not None:
        await sessions.revoke(request.app[POOL], session.token_hash)
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(sessions.COOKIE, path="/")
    raise resp


def _qr_svg(uri: str) -> str:
    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="svg", scale=5, border=2, xmldecl=False,
                                    svgns=True, dark="#000", light="#fff")
    return buf.getvalue().decode()


ENROL_SECRET = "casa_totp_pending"


@require_staff()
async def enrol_page(request: web.Request) -> web.StreamResponse:
    user = current_staff(request)
    config = request.app[CONFIG]
    # The candidate secret travels sealed in a short-lived cookie until a code proves it works;
    # a reload keeps it, so a key already scanned stays valid.
    secret = _pending_secret(request, config.secret_key, user.id) or totp.new_secret()
    sealed = totp.seal(secret, config.secret_key, user.id).hex()
    resp = render(request, "totp_enrol.html", error=None, enabled=user.totp_enabled,
                  secret=totp.display_secret(secret),
                  qr_svg=_qr_svg(totp.provisioning_uri(secret, user.email)))
    set_cookie(request, resp, ENROL_SECRET, sealed, max_age=600)
    return resp


def _pending_secret(request: web.Request, secret_key: str, staff_id: int) -> bytes | None:
    try:
        return totp.unseal(bytes.fromhex(request.cookies.get(ENROL_SECRET, "")), secret_key,
                           staff_id)
    except Exception:
        return None


@require_staff()
async def enrol_submit(request: web.Request) -> web.StreamResponse:
    user = current_staff(request)
    config = request.app[CONFIG]
    form = await request.post()
    _ = translator(request)
    secret = _pending_secret(request, config.secret_key, user.id)
    if secret is None:
        raise web.HTTPSeeOther("/account/totp")
    if totp.verify(secret, str(form.get("code", ""))[:32], None) is None:
        return render(request, "totp_enrol.html", status=400,
                      error=_("That code is not right. Use the newest code in your app."),
                      enabled=user.totp_enabled, secret=totp.display_secret(secret),
                      qr_svg=_qr_svg(totp.provisioning_uri(secret, user.email)))
    await staff_store.set_totp(request.app[POOL], user.id,
                               totp.seal(secret, config.secret_key, user.id))
    resp = web.HTTPSeeOther("/home")
    resp.del_cookie(ENROL_SECRET, path="/")
    raise resp


async def set_language(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    lang = str(form.get("lang", ""))
    if lang not in LANGUAGES:
        raise web.HTTPSeeOther(_safe_next(form.get("next")))
    user = request.get(STAFF)
    if user is not None and lang in STAFF_LANGUAGES:
        await staff_store.set_language(request.app[POOL], user.id, lang)
    resp = web.HTTPSeeOther(_safe_next(form.get("next")))
    resp.set_cookie(LANGUAGE_COOKIE, lang, max_age=LANGUAGE_COOKIE_AGE, path="/",
                    samesite="Lax", httponly=True)
    raise resp
