"""Admins run staff accounts at /admin/users: add (with a one-time password link), disable and
enable, role and centres, reset password and second factor, sessions listed and ended. Every
change is audited; other roles are refused; Casa keeps at least one active admin."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from server import staff as staff_store
from server.auth import totp
from server.staff import Role
from tests.conftest import PASSWORD, SECRET_KEY, csrf_token, login, post_refused
from tests.records.conftest import login_as

LINK = re.compile(r"(https?://[^<\s]+/account/password/[A-Za-z0-9_-]+)")


@contextlib.asynccontextmanager
async def browser(client: Any, **headers: str) -> AsyncIterator[TestClient[Any, Any]]:
    """Another browser on the same server: its own cookies."""
    other: TestClient[Any, Any] = TestClient(client.server, headers=headers)
    await other.start_server()  # already running: only the session is new
    try:
        yield other
    finally:
        await other.session.close()


async def audits(conn: asyncpg.Connection, action: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(
        "SELECT actor_staff_id, detail FROM audit_log WHERE action = $1 ORDER BY id", action)]


async def post(client: Any, path: str, data: dict[str, Any], token: str) -> Any:
    return await client.post(path, data={**data, "csrf_token": token}, allow_redirects=False)


async def test_other_roles_are_refused_every_page_and_action(client, make_staff, db_url, conn):
    target = await make_staff(Role.GP)
    for role in (Role.COORDINATOR, Role.GP, Role.NURSE, Role.PSYCHOLOGIST):
        user = await make_staff(role)
        await login_as(client, user, db_url)
        for path in ("/admin/users", "/admin/users/new", f"/admin/users/{target.id}"):
            assert (await client.get(path, allow_redirects=False)).status == 403, (role, path)
        token = await csrf_token(client, "/home")
        for action, data in (("active", {"active": "no"}), ("password", {}), ("totp", {}),
                             ("access", {"role": "admin"}), ("sessions", {"session": "all"})):
            resp = await post(client, f"/admin/users/{target.id}/{action}", data, token)
            assert resp.status == 303, (role, action)
            shown = await client.get(resp.headers["Location"], allow_redirects=False)
            assert shown.status == 403, (role, action)
        resp = await post(client, "/admin/users/new",
                          {"full_name": "Eve", "email": "eve@x.example", "role": "admin"}, token)
        assert resp.status == 303
        client.session.cookie_jar.clear()
    after = await staff_store.get(conn, target.id)
    assert after is not None and after.role is Role.GP
    assert await conn.fetchval("SELECT count(*) FROM staff WHERE email = 'eve@x.example'") == 0
    assert await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action LIKE 'staff\\_%' "
        "AND action <> 'staff_login'") == 0


async def test_admin_adds_an_account_whose_owner_sets_the_password_once(client, make_staff,
                                                                       db_url, conn):
    admin = await make_staff(Role.ADMIN, ())
    await login_as(client, admin, db_url)
    home = await (await client.get("/home")).text()
    assert 'href="/admin/users"' in home
    token = await csrf_token(client, "/admin/users/new")
    refused = await post_refused(client, "/admin/users/new",
                                 {"full_name": "Ada\u202eX", "email": "ada@x.example",
                                  "role": "gp", "centres": "san-siro", "csrf_token": token})
    assert refused.status == 422 and "full_name" in refused.html
    refused = await post_refused(client, "/admin/users/new",
                                 {"full_name": "Ada Rossi", "email": "ada@x.example",
                                  "role": "gp", "csrf_token": token})
    assert refused.status == 422 and "centres" in refused.html
    resp = await post(client, "/admin/users/new", {"full_name": "Ada Rossi",
                                                   "email": "ada@x.example", "role": "gp",
                                                   "centres": "san-siro"}, token)
    assert resp.status == 303
    page = await client.get(resp.headers["Location"])
    html = await page.text()
    link = LINK.search(html)
    assert page.status == 200 and link, html
    # Shown once.
    assert not LINK.search(await (await client.get(resp.headers["Location"])).text())
    ada = await staff_store.get_by_email(conn, "ada@x.example")
    assert ada is not None and ada.role is Role.GP and ada.centres == ("san-siro",)
    [created] = await audits(conn, "staff_created")
    assert created["actor_staff_id"] == admin.id
    assert f'"staff": {ada.id}' in created["detail"] and "ada@" not in created["detail"]
    # The same address twice: refused, field named.
    refused = await post_refused(client, "/admin/users/new",
                                 {"full_name": "Ada Bis", "email": "ADA@x.example",
                                  "role": "gp", "centres": "san-siro", "csrf_token": token})
    assert refused.status == 409 and "email" in refused.html
    # In the list, found by e-mail and by name.
    listed = await (await client.get("/admin/users?q=ADA%40x")).text()
    assert f'data-staff="{ada.id}"' in listed and f'data-staff="{admin.id}"' not in listed

    # Ada, in another browser: no password works until she uses the link; then hers does.
    async with browser(client) as other:
        await _set_password(client, conn, other, link.group(1))


async def _set_password(client: Any, conn: asyncpg.Connection, other: Any, link: str) -> None:
    assert (await login(other, "ada@x.example", PASSWORD)).status == 401
    path = "/account/password/" + link.rsplit("/", 1)[1]
    landing = await other.get(path, allow_redirects=False)
    assert landing.status == 303 and landing.headers["Location"] == "/account/password"
    form = await other.get("/account/password")
    assert form.status == 200 and "ada@x.example" in await form.text()
    t = await csrf_token(other, "/account/password")
    refused = await post_refused(other, "/account/password",
                                 {"password": "short", "again": "short", "csrf_token": t},
                                 typed=("short",))
    assert refused.status == 422
    new_password = "a horse and a battery"
    resp = await other.post("/account/password", data={"password": new_password,
                                                       "again": new_password, "csrf_token": t},
                            allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    assert (await login(other, "ada@x.example", new_password)).status == 303
    # The link worked once.
    await other.get(path, allow_redirects=False)
    assert (await other.get("/account/password")).status == 404
    assert len(await audits(conn, "staff_password_set")) == 1


async def test_role_centres_totp_and_password_resets_are_audited(client, make_staff, db_url,
                                                                conn):
    admin = await make_staff(Role.ADMIN, ())
    nurse = await make_staff(Role.NURSE, ("san-siro",))
    await staff_store.set_totp(conn, nurse.id, totp.seal(totp.new_secret(), SECRET_KEY,
                                                         nurse.id))
    await login_as(client, admin, db_url)
    token = await csrf_token(client, f"/admin/users/{nurse.id}")
    resp = await post(client, f"/admin/users/{nurse.id}/access",
                      {"role": "coordinator", "centres": ["san-siro", "gratosoglio"]}, token)
    assert resp.status == 303
    after = await staff_store.get(conn, nurse.id)
    assert after is not None and after.role is Role.COORDINATOR
    assert set(after.centres) == {"san-siro", "gratosoglio"}
    [changed] = await audits(conn, "staff_role_changed")
    assert '"before": "nurse"' in changed["detail"]
    assert '"after": "coordinator"' in changed["detail"]
    [centres] = await audits(conn, "staff_centres_changed")
    assert '"added": ["gratosoglio"]' in centres["detail"]
    # An unknown centre or role: refused, nothing changed.
    refused = await post_refused(client, f"/admin/users/{nurse.id}/access",
                                 {"role": "gp", "centres": "atlantis", "csrf_token": token})
    assert refused.status == 422
    assert (await staff_store.get(conn, nurse.id)).role is Role.COORDINATOR  # type: ignore[union-attr]

    resp = await post(client, f"/admin/users/{nurse.id}/totp", {}, token)
    assert resp.status == 303
    assert await staff_store.get_totp(conn, nurse.id) == (None, None)
    assert len(await audits(conn, "staff_totp_reset")) == 1

    resp = await post(client, f"/admin/users/{nurse.id}/password", {}, token)
    assert resp.status == 303
    assert LINK.search(await (await client.get(resp.headers["Location"])).text())
    hashed = await conn.fetchval("SELECT password_hash FROM staff WHERE id = $1", nurse.id)
    assert hashed.startswith("$argon2id$")
    assert len(await audits(conn, "staff_password_reset")) == 1


async def test_sessions_are_listed_without_tokens_and_ended(client, make_staff, db_url, conn):
    admin = await make_staff(Role.ADMIN, ())
    gp = await make_staff(Role.GP)
    async with browser(client, **{"User-Agent": ANDROID}) as phone, \
            browser(client) as desk:
        await _sessions(client, conn, admin, gp, phone, desk, db_url)


ANDROID = ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0 Mobile Safari/537.36")


async def _sessions(client: Any, conn: asyncpg.Connection, admin: Any, gp: Any, phone: Any,
                    desk: Any, db_url: str) -> None:
    for c in (phone, desk):
        assert (await login(c, gp.email)).status == 303
    cookies = [c.session.cookie_jar.filter_cookies(c.make_url("/"))["casa_session"].value
               for c in (phone, desk)]
    await login_as(client, admin, db_url)
    page = await client.get(f"/admin/users/{gp.id}")
    html = await page.text()
    assert "Chrome / Android" in html and html.count("data-session=") == 2
    hashes = [r["token_hash"].hex() for r in await conn.fetch(
        "SELECT token_hash FROM staff_sessions WHERE staff_id = $1", gp.id)]
    for secret in cookies + hashes:
        assert secret not in html
    phone_session = await conn.fetchval(
        "SELECT id FROM staff_sessions WHERE staff_id = $1 AND device = 'Chrome / Android'",
        gp.id)
    token = await csrf_token(client, f"/admin/users/{gp.id}")
    # Another account's session id: nothing ended.
    resp = await post(client, f"/admin/users/{admin.id}/sessions",
                      {"session": str(phone_session)}, token)
    assert (await phone.get("/home", allow_redirects=False)).status == 200
    resp = await post(client, f"/admin/users/{gp.id}/sessions",
                      {"session": str(phone_session)}, token)
    assert resp.status == 303
    assert (await phone.get("/home", allow_redirects=False)).status == 303
    assert (await desk.get("/home", allow_redirects=False)).status == 200
    resp = await post(client, f"/admin/users/{gp.id}/sessions", {"session": "all"}, token)
    assert (await desk.get("/home", allow_redirects=False)).status == 303
    assert len(await audits(conn, "staff_session_revoked")) == 1
    assert len(await audits(conn, "staff_sessions_revoked")) == 1


async def test_disabling_ends_sessions_at_once_and_enabling_restores_sign_in(
        client, make_staff, db_url, conn):
    admin = await make_staff(Role.ADMIN, ())
    gp = await make_staff(Role.GP)
    async with browser(client) as theirs:
        await _disable(client, conn, admin, gp, theirs, db_url)


async def _disable(client: Any, conn: asyncpg.Connection, admin: Any, gp: Any, theirs: Any,
                   db_url: str) -> None:
    assert (await login(theirs, gp.email)).status == 303
    await login_as(client, admin, db_url)
    token = await csrf_token(client, f"/admin/users/{gp.id}")
    resp = await post(client, f"/admin/users/{gp.id}/active", {"active": "no"}, token)
    assert resp.status == 303
    assert (await theirs.get("/home", allow_redirects=False)).status == 303
    assert (await login(theirs, gp.email)).status == 401
    assert await conn.fetchval("SELECT count(*) FROM staff_sessions WHERE staff_id = $1 "
                               "AND revoked_at IS NULL", gp.id) == 0
    listed = await (await client.get("/admin/users?state=disabled")).text()
    assert f'data-staff="{gp.id}" data-active="no"' in listed
    resp = await post(client, f"/admin/users/{gp.id}/active", {"active": "yes"}, token)
    assert (await login(theirs, gp.email)).status == 303
    assert [a["actor_staff_id"] for a in await audits(conn, "staff_disabled")] == [admin.id]
    assert len(await audits(conn, "staff_enabled")) == 1


async def test_the_last_active_admin_cannot_be_disabled_or_demoted(client, make_staff, db_url,
                                                                  conn):
    admin = await make_staff(Role.ADMIN, ())
    await login_as(client, admin, db_url)
    token = await csrf_token(client, f"/admin/users/{admin.id}")
    for action, data in (("active", {"active": "no"}), ("access", {"role": "gp",
                                                                   "centres": "san-siro"})):
        refused = await post_refused(client, f"/admin/users/{admin.id}/{action}",
                                     {**data, "csrf_token": token})
        assert refused.status == 409 and "admin" in refused.html, action
    me = await staff_store.get(conn, admin.id)
    assert me is not None and me.role is Role.ADMIN
    # With a second admin, the first may step down; then the second is the last.
    second = await make_staff(Role.ADMIN, ())
    resp = await post(client, f"/admin/users/{admin.id}/access",
                      {"role": "coordinator", "centres": "san-siro"}, token)
    assert resp.status == 303
    assert (await staff_store.get(conn, admin.id)).role is Role.COORDINATOR  # type: ignore[union-attr]
    await conn.execute("UPDATE staff SET role = 'admin' WHERE id = $1", admin.id)
    await conn.execute("UPDATE staff SET active = false WHERE id = $1", second.id)
    refused = await post_refused(client, f"/admin/users/{admin.id}/active",
                                 {"active": "no", "csrf_token": token})
    assert refused.status == 409
