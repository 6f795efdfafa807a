"""Admins' pages for staff accounts (``/admin/users``) and the page where a member of staff
chooses a password through a one-time link (``/account/password``).

Every change is one transaction with its audit entry (``records.audit``: ids and kinds, never
names, addresses or tokens), answered 303 back to the account's page (``server.outcome``).
Other roles get the 403 every admin page gives.

A new account, and an account whose password is reset, gets a one-time link to choose a
password rather than a password the admin reads out: the admin never knows the password, the
link works once and for 24 hours, using it ends the account's other sessions, and it works
with no e-mail configured (the admin hands it over, printed or in person)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp import web

from records import audit
from server import centres, errors, outcome, validation
from server import staff as staff_store
from server.accounts import store
from server.auth import passwords
from server.errors import N_
from server.home import add_home_link
from server.keys import CONFIG, POOL
from server.middleware import set_cookie
from server.pages import current_staff, render, require_staff, translator
from server.request_info import own_origin
from server.staff import Role
from server.text import name_problem

USER = "/admin/users/{staff_id:\\d{1,18}}"
LINK_COOKIE = "casa_password_link"
MAX_FIELD = 254
STATES = ("active", "disabled")

LAST_ADMIN = errors.define(
    "last_admin", 409,
    N_("Casa must keep at least one active admin: make someone else an admin first."))
errors.maps_to(store.LastAdmin, LAST_ADMIN)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/users", users_page, name="accounts_users")
    r.add_get("/admin/users/new", new_page, name="accounts_new")
    r.add_post("/admin/users/new", new_submit)
    r.add_get(USER, user_page, name="accounts_user")
    r.add_post(USER + "/active", set_active)
    r.add_post(USER + "/access", set_access)
    r.add_post(USER + "/password", reset_password)
    r.add_post(USER + "/totp", reset_totp)
    r.add_post(USER + "/sessions", revoke_sessions)
    r.add_get("/account/password/{token}", link_landing, name="accounts_link")
    r.add_get("/account/password", password_page, name="accounts_password")
    r.add_post("/account/password", password_submit)
    add_home_link(app, (Role.ADMIN,), N_("Staff accounts"), "/admin/users")


@require_staff(Role.ADMIN)
async def users_page(request: web.Request) -> web.StreamResponse:
    q = request.query
    text = q.get("q", "")[:100].strip()
    role = q.get("role", "") if q.get("role", "") in {r.value for r in Role} else ""
    state = q.get("state", "") if q.get("state", "") in STATES else ""
    pool = request.app[POOL]
    found = await store.search(pool, text, role, state)
    names = {c.id: c.name for c in await centres.list_all(pool)}
    return render(request, "accounts/users.html", found=found, names=names, roles=list(Role),
                  query={"q": text, "role": role, "state": state})


@require_staff(Role.ADMIN)
async def new_page(request: web.Request) -> web.StreamResponse:
    last = outcome.take(request)
    return outcome.forget(request, render(
        request, "accounts/new.html", status=last.status if last else 200, roles=list(Role),
        all_centres=await centres.list_all(request.app[POOL]),
        error=last.message if last else None, fields=last.fields if last else {}))


async def _centres_of(request: web.Request, form: Any) -> tuple[str, ...]:
    known = {c.id for c in await centres.list_all(request.app[POOL])}
    chosen = tuple(sorted({str(v) for v in form.getall("centres", [])}))
    if any(c not in known for c in chosen):
        raise errors.invalid({"centres": "unknown centre"})
    return chosen


def _role(form: Any) -> Role:
    try:
        return Role(str(form.get("role", "")))
    except ValueError:
        raise errors.invalid({"role": "unknown role"}) from None


async def _new_back(request: web.Request) -> str:
    return "/admin/users/new"


async def _audit(conn: Any, request: web.Request, action: str, staff_id: int,
                 **detail: Any) -> None:
    await audit.append(conn, action=action, actor_staff_id=current_staff(request).id,
                       actor_kind="staff", patient_id=None, booking_id=None,
                       detail={"staff": staff_id, **detail})


async def _unusable() -> str:
    # Argon2 costs ~50 ms: off the event loop.
    return await asyncio.get_running_loop().run_in_executor(None, store.unusable_hash)


@outcome.form(_new_back)
@require_staff(Role.ADMIN)
async def new_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("full_name", ""))[:MAX_FIELD].strip()
    email = str(form.get("email", ""))[:MAX_FIELD].strip()
    role = _role(form)
    chosen = await _centres_of(request, form)
    problems = {}
    problem = name_problem(name)
    if not 1 <= len(name) <= 200 or problem:
        problems["full_name"] = problem or "required, at most 200 characters"
    if "@" not in email or " " in email or len(email) > 254:
        problems["email"] = "not an e-mail address"
    if role is not Role.ADMIN and not chosen:
        problems["centres"] = "choose at least one centre"
    if problems:
        raise errors.invalid(problems)
    unusable = await _unusable()
    by = current_staff(request).id
    async with request.app[POOL].acquire() as conn, conn.transaction():
        try:
            staff_id = await staff_store.create(conn, email=email, full_name=name, role=role,
                                                password="", password_hash=unusable,
                                                centres=chosen)
        except staff_store.DuplicateEmail:
            _ = translator(request)
            raise errors.ApiError(errors.CONFLICT, _(
                "An account with this e-mail address already exists."),
                details={"fields": {"email": "already in use"}}) from None
        token = await store.new_link(conn, staff_id, by)
        await _audit(conn, request, "staff_created", staff_id, role=role.value,
                     centres=list(chosen))
    raise outcome.redirect(request, f"/admin/users/{staff_id}",
                           outcome.Outcome(kind="created", keep={"link": token}))


async def _account(request: web.Request) -> store.Account:
    found = await store.get(request.app[POOL], validation.path_id(request, "staff_id"))
    if found is None:
        raise errors.NotFound()
    return found


@require_staff(Role.ADMIN)
async def user_page(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    pool = request.app[POOL]
    idle = timedelta(minutes=request.app[CONFIG].session_idle_minutes)
    last = outcome.take(request)
    token = last.keep.get("link") if last and last.status < 400 else None
    return outcome.forget(request, render(
        request, "accounts/user.html", status=last.status if last else 200, a=account,
        roles=list(Role), all_centres=await centres.list_all(pool),
        sessions=await store.live_sessions(pool, account.id, idle),
        is_self=account.id == current_staff(request).id,
        link=f"{own_origin(request)}/account/password/{token}" if token else None,
        done=last.kind if last and last.status < 400 else None,
        error=last.message if last and last.status >= 400 else None,
        fields=last.fields if last else {}))


async def _user_back(request: web.Request) -> str | None:
    # A refused form goes back to the account, which an admin may see (anyone else: a 403).
    return f"/admin/users/{int(request.match_info['staff_id'])}"


def _done(request: web.Request, staff_id: int, kind: str, **keep: Any) -> web.HTTPSeeOther:
    return outcome.redirect(request, f"/admin/users/{staff_id}",
                            outcome.Outcome(kind=kind, keep=keep))


@outcome.form(_user_back)
@require_staff(Role.ADMIN)
async def set_active(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    form = await request.post()
    active = form.get("active") == "yes"
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if await store.set_active(conn, account.id, active):
            await _audit(conn, request, "staff_enabled" if active else "staff_disabled",
                         account.id)
    raise _done(request, account.id, "enabled" if active else "disabled")


@outcome.form(_user_back)
@require_staff(Role.ADMIN)
async def set_access(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    form = await request.post()
    role = _role(form)
    chosen = await _centres_of(request, form)
    if role is not Role.ADMIN and not chosen:
        raise errors.invalid({"centres": "choose at least one centre"})
    async with request.app[POOL].acquire() as conn, conn.transaction():
        before_role, before_centres = await store.set_role_and_centres(
            conn, account.id, role, chosen)
        if before_role is not role:
            await _audit(conn, request, "staff_role_changed", account.id,
                         before=before_role.value, after=role.value)
        if before_centres != chosen:
            await _audit(conn, request, "staff_centres_changed", account.id,
                         added=sorted(set(chosen) - set(before_centres)),
                         removed=sorted(set(before_centres) - set(chosen)))
    raise _done(request, account.id, "access")


@outcome.form(_user_back)
@require_staff(Role.ADMIN)
async def reset_password(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    if not account.active:
        _ = translator(request)
        raise errors.ApiError(errors.CONFLICT, _("Enable the account first."))
    unusable = await _unusable()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        token = await store.reset_password(conn, account.id, current_staff(request).id,
                                           unusable)
        await _audit(conn, request, "staff_password_reset", account.id)
    raise _done(request, account.id, "password", link=token)


@outcome.form(_user_back)
@require_staff(Role.ADMIN)
async def reset_totp(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await store.reset_totp(conn, account.id)
        await _audit(conn, request, "staff_totp_reset", account.id)
    raise _done(request, account.id, "totp")


@outcome.form(_user_back)
@require_staff(Role.ADMIN)
async def revoke_sessions(request: web.Request) -> web.StreamResponse:
    account = await _account(request)
    form = await request.post()
    which = str(form.get("session", ""))
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if which == "all":
            count = await store.revoke_all(conn, account.id)
            await _audit(conn, request, "staff_sessions_revoked", account.id, count=count)
        else:
            session_id = validation.an_id(which, "session")
            if await store.revoke_session(conn, account.id, session_id):
                await _audit(conn, request, "staff_session_revoked", account.id,
                             session=session_id)
    raise _done(request, account.id, "revoked")


# The page where the link's owner chooses a password. The token leaves the address at once
# (into an HttpOnly cookie for this path), as invitation links do.
async def link_landing(request: web.Request) -> web.StreamResponse:
    resp = web.HTTPSeeOther("/account/password")
    set_cookie(request, resp, LINK_COOKIE, request.match_info["token"][:100], max_age=3600)
    raise resp


async def _link_owner(request: web.Request) -> int | None:
    return await store.link_owner(request.app[POOL], request.cookies.get(LINK_COOKIE, ""))


async def password_page(request: web.Request) -> web.StreamResponse:
    owner = await _link_owner(request)
    last = outcome.take(request)
    account = await staff_store.get(request.app[POOL], owner) if owner else None
    return outcome.forget(request, render(
        request, "accounts/password.html", status=(last.status if last else 200)
        if account else 404, account=account, min_chars=passwords.MIN_PASSWORD_CHARS,
        error=last.message if last else None, fields=last.fields if last else {}))


async def _password_back(request: web.Request) -> str:
    return "/account/password"


@outcome.form(_password_back)
async def password_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    password = str(form.get("password", ""))[:passwords.MAX_PASSWORD_CHARS + 1]
    if password != str(form.get("again", ""))[:passwords.MAX_PASSWORD_CHARS + 1]:
        raise errors.invalid({"again": "the two passwords differ"})
    try:
        passwords.check_strength(password)
    except passwords.WeakPassword as exc:
        raise errors.invalid({"password": str(exc)}) from None
    if await _link_owner(request) is None:
        raise errors.NotFound()
    hashed = await asyncio.get_running_loop().run_in_executor(
        None, passwords.hash_password, password)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        owner = await store.use_link(conn, request.cookies.get(LINK_COOKIE, ""), hashed)
        if owner is None:
            raise errors.NotFound()
        await audit.append(conn, action="staff_password_set", actor_staff_id=owner,
                           actor_kind="staff", patient_id=None, booking_id=None,
                           detail={"staff": owner})
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(LINK_COOKIE, path="/")
    raise resp
