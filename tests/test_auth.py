"""Staff identity: login, sessions, CSRF, rate limits, TOTP, roles."""

from __future__ import annotations

import base64
import re

import asyncpg

from server import staff as staff_store
from server.auth import ratelimit, totp
from server.staff import Role
from tests.conftest import PASSWORD, SECRET_KEY, csrf_token, login


async def test_wrong_password_is_refused_without_saying_which_part(client, make_staff):
    gp = await make_staff()
    resp = await login(client, gp.email, "wrong password!")
    assert resp.status == 401
    text = await resp.text()
    assert "password is not right" in text or "password non sono corretti" in text
    unknown = await login(client, "nobody@test.example", "wrong password!")
    assert unknown.status == 401
    assert (await client.get("/home", allow_redirects=False)).headers["Location"] == "/login"


async def test_login_issues_a_new_session_id_and_cookie_flags(client, make_staff):
    gp = await make_staff()
    first = await login(client, gp.email)
    cookie1 = first.cookies["casa_session"]
    assert cookie1["httponly"] and cookie1["samesite"] == "Lax"
    second = await login(client, gp.email)
    assert second.cookies["casa_session"].value != cookie1.value


async def test_logout_revokes_the_session(client, make_staff, conn):
    gp = await make_staff()
    await login(client, gp.email)
    token = await csrf_token(client, "/home")
    resp = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    assert await conn.fetchval("SELECT count(*) FROM staff_sessions WHERE revoked_at IS NULL") == 0
    assert (await client.get("/home", allow_redirects=False)).status == 303


async def test_disabling_an_account_ends_its_live_sessions_at_the_next_request(client, make_staff,
                                                                             conn):
    gp = await make_staff(Role.GP, ("san-siro", "mazzini"))
    await login(client, gp.email)
    home = await client.get("/home", allow_redirects=False)
    assert home.status == 200 and gp.full_name in await home.text()
    await conn.execute("UPDATE staff SET active = false WHERE id = $1", gp.id)
    assert (await client.get("/home", allow_redirects=False)).headers["Location"] == "/login"
    await conn.execute("UPDATE staff SET active = true WHERE id = $1", gp.id)
    # The session itself was not touched: with the account back, it works again, and the
    # staff member's centres come with it (the join aggregates them).
    assert (await client.get("/home", allow_redirects=False)).status == 200


async def test_missing_or_wrong_csrf_token_is_refused(client, make_staff):
    gp = await make_staff()
    await client.get("/login")
    resp = await client.post("/login", data={"email": gp.email, "password": PASSWORD})
    assert resp.status == 403
    assert "expired" in (await resp.text()) or "scaduto" in (await resp.text())
    resp = await client.post("/login", data={"email": gp.email, "password": PASSWORD,
                                             "csrf_token": "0" * 64})
    assert resp.status == 403
    api = await client.post("/logout", headers={"Accept": "application/json"})
    assert api.status == 403
    assert (await api.json())["error"]["code"] == "csrf_failed"


async def test_foreign_origin_is_refused_even_with_a_token(client, make_staff):
    gp = await make_staff()
    token = await csrf_token(client)
    resp = await client.post("/login", data={"email": gp.email, "password": PASSWORD,
                                             "csrf_token": token},
                             headers={"Origin": "https://evil.example"})
    assert resp.status == 403


async def test_idle_and_absolute_expiry(client, make_staff, conn):
    gp = await make_staff()
    await login(client, gp.email)
    assert (await client.get("/home")).status == 200
    await conn.execute("UPDATE staff_sessions SET last_seen_at = now() - interval '31 minutes'")
    assert (await client.get("/home", allow_redirects=False)).headers["Location"] == "/login"
    await login(client, gp.email)
    assert (await client.get("/home")).status == 200
    await conn.execute("UPDATE staff_sessions SET expires_at = now() - interval '1 second'")
    assert (await client.get("/home", allow_redirects=False)).status == 303


async def test_repeated_wrong_passwords_wait_longer_with_a_clear_message(client, make_staff):
    gp = await make_staff()
    for _ in range(ratelimit.PAIR.free + 1):
        assert (await login(client, gp.email, "wrong password!")).status == 401
    blocked = await login(client, gp.email)  # even the right password now waits, from here
    assert blocked.status == 429
    assert int(blocked.headers["Retry-After"]) > 0
    text = await blocked.text()
    assert "Try again in" in text or "Riprova tra" in text


async def test_rate_limit_per_address(client, make_staff, conn):
    gp = await make_staff()
    await conn.execute("INSERT INTO login_throttle (key, attempts, window_start, next_at, last_at)"
                       " VALUES ('ip:127.0.0.1', $1, now(), now(), now())", ratelimit.IP.limit)
    assert (await login(client, gp.email)).status == 429


async def test_role_cannot_reach_a_page_for_another_role(client, make_staff, aiohttp_client):
    from aiohttp import web

    from server.pages import require_staff

    @require_staff(Role.ADMIN)
    async def admin_only(request: web.Request) -> web.Response:
        return web.Response(text="secret admin page")

    # A fresh app with one extra admin-only route, sharing the test database.
    from server.app import create_app
    from server.keys import CONFIG

    app = create_app(client.server.app[CONFIG])
    app.router.add_get("/only-admins", admin_only)
    c2 = await aiohttp_client(app)
    nurse = await make_staff(Role.NURSE)
    await login(c2, nurse.email)
    resp = await c2.get("/only-admins")
    assert resp.status == 403
    assert "secret admin page" not in await resp.text()
    json_resp = await c2.get("/only-admins", headers={"Accept": "application/json"})
    assert (await json_resp.json())["error"]["code"] == "forbidden"


async def _enable_totp(db_url: str, staff_id: int) -> bytes:
    secret = totp.new_secret()
    c = await asyncpg.connect(db_url)
    try:
        await staff_store.set_totp(c, staff_id, totp.seal(secret, SECRET_KEY, staff_id))
    finally:
        await c.close()
    return secret


async def test_totp_second_factor(client, make_staff, db_url):
    gp = await make_staff()
    secret = await _enable_totp(db_url, gp.id)
    resp = await login(client, gp.email)
    assert resp.headers["Location"] == "/login/totp"
    # Password alone does not open pages.
    assert (await client.get("/home", allow_redirects=False)).headers["Location"] == "/login/totp"
    token = await csrf_token(client, "/login/totp")
    bad = await client.post("/login/totp", data={"code": "000000", "csrf_token": token})
    assert bad.status == 401
    code = totp.current_code(secret)
    ok = await client.post("/login/totp", data={"code": code, "csrf_token": token},
                           allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == "/home"
    assert (await client.get("/home")).status == 200
    # The same code cannot be used twice.
    await login(client, gp.email)
    token = await csrf_token(client, "/login/totp")
    replay = await client.post("/login/totp", data={"code": code, "csrf_token": token})
    assert replay.status == 401


async def test_admin_without_totp_must_enrol_first(client, make_staff):
    admin = await make_staff(Role.ADMIN)
    await login(client, admin.email)
    resp = await client.get("/home", allow_redirects=False)
    assert resp.headers["Location"] == "/account/totp"
    page = await client.get("/account/totp")
    html = await page.text()
    assert "<svg" in html  # the QR code
    key = _shown_key(html)

    raw = key.replace(" ", "")
    secret = base64.b32decode(raw + "=" * (-len(raw) % 8))
    token = await csrf_token(client, "/account/totp")
    wrong = await client.post("/account/totp", data={"code": "123456", "csrf_token": token})
    assert wrong.status == 400
    # A reload keeps the key already shown (it may have been scanned).
    html = await (await client.get("/account/totp")).text()
    assert _shown_key(html) == key
    token = await csrf_token(client, "/account/totp")
    ok = await client.post("/account/totp", data={"code": totp.current_code(secret),
                                                  "csrf_token": token}, allow_redirects=False)
    assert ok.status == 303
    home = await client.get("/home")
    assert 'data-role="admin"' in await home.text()


async def test_language_follows_choice_then_browser(client, make_staff):
    page = await client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Staff sign in" in await page.text()
    page = await client.get("/login", headers={"Accept-Language": "it-IT"})
    assert "Accesso del personale" in await page.text()
    token = await csrf_token(client)
    await client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": token})
    page = await client.get("/login", headers={"Accept-Language": "it-IT"})
    assert '<html lang="en" dir="ltr">' in await page.text()


async def test_open_redirect_is_not_followed(client, make_staff):
    gp = await make_staff()
    token = await csrf_token(client)
    resp = await client.post("/login?next=//evil.example/x",
                             data={"email": gp.email, "password": PASSWORD, "csrf_token": token},
                             allow_redirects=False)
    assert resp.headers["Location"] == "/home"


def _shown_key(html: str) -> str:
    match = re.search(r'<code class="key">([A-Z2-7 ]+)</code>', html)
    assert match, "the enrolment page shows no key"
    return match.group(1)
