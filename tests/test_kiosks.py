"""Kiosk enrolment: codes made by a centre's admin or coordinator, single use, expiring,
revocable, guessed no faster than the limit; the kiosk holds one HttpOnly credential, stored
only hashed; the kiosk's pages refuse any other browser; last seen moves on."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from server.kiosks import store
from server.staff import Role
from tests.conftest import StaffFactory, csrf_token, login, post_refused

Client = TestClient[Any, Any]
CODE_RE = re.compile(r'<strong class="code" data-kiosk="(\d+)">([0-9A-Z-]+)</strong>')


async def add_kiosk(conn: asyncpg.Connection, centre: str = "san-siro",
                    name: str = "Kiosk 1") -> int:
    kiosk_id: int = await conn.fetchval(
        "INSERT INTO resources (centre_id, kind, name) VALUES ($1, 'kiosk', $2) RETURNING id",
        centre, name)
    return kiosk_id


async def make_code(client: Client, kiosk_id: int) -> str:
    token = await csrf_token(client, "/kiosks")
    resp = await client.post(f"/kiosks/{kiosk_id}/code", data={"csrf_token": token},
                             allow_redirects=False)
    assert resp.status == 303
    page = await client.get(resp.headers["Location"])
    found = CODE_RE.search(await page.text())
    assert found and int(found.group(1)) == kiosk_id
    return found.group(2)


def forget_everyone(client: Client) -> None:
    client.session.cookie_jar.clear()


async def code_from_a_coordinator(client: Client, conn: asyncpg.Connection,
                                  make_staff: StaffFactory) -> str:
    """A San Siro coordinator makes an enrolment code for a new kiosk; then the browser is
    nobody's again (a kiosk is enrolled without a staff session)."""
    coord = await make_staff(Role.COORDINATOR, ("san-siro",))
    kiosk_id = await add_kiosk(conn)
    await login(client, coord.email)
    code = await make_code(client, kiosk_id)
    forget_everyone(client)
    return code


async def enrol(client: Client, code: str) -> Any:
    token = await csrf_token(client, "/kiosk/enrol")
    return await client.post("/kiosk/enrol", data={"csrf_token": token, "code": code},
                             allow_redirects=False)


def kiosk_cookie(client: Client) -> str | None:
    for c in client.session.cookie_jar:
        if c.key == "casa_kiosk":
            return c.value
    return None


async def test_a_coordinator_enrols_a_kiosk_with_a_single_use_code(
        client: Client, conn: asyncpg.Connection, make_staff: StaffFactory) -> None:
    coord = await make_staff(Role.COORDINATOR, ("san-siro",))
    kiosk_id = await add_kiosk(conn)
    await login(client, coord.email)
    home = await client.get("/home")
    assert 'href="/kiosks"' in await home.text()
    listing = await (await client.get("/kiosks")).text()
    assert f'data-kiosk="{kiosk_id}" data-enrolled="no"' in listing
    code = await make_code(client, kiosk_id)
    # Shown once: the list after it no longer has it.
    assert code not in await (await client.get("/kiosks")).text()
    # Stored only as a keyed hash.
    assert not await conn.fetchval("SELECT count(*) FROM kiosk_enrolment_codes"
                                   " WHERE position($1::bytea in code_hash) > 0", code.encode())

    forget_everyone(client)
    before = await client.get("/kiosk", allow_redirects=False)
    assert before.status == 403
    resp = await enrol(client, code.lower().replace("-", " "))
    assert resp.status == 303 and resp.headers["Location"] == "/kiosk"
    morsel = resp.cookies["casa_kiosk"]
    assert morsel["httponly"] and int(morsel["max-age"]) >= 365 * 24 * 3600
    token = kiosk_cookie(client)
    assert token is not None
    stored = await conn.fetchval("SELECT token_hash FROM kiosk_credentials WHERE kiosk_id = $1",
                                 kiosk_id)
    assert stored == store.token_hash(token) and stored != hashlib.sha256(token.encode()).digest()
    page = await client.get("/kiosk")
    assert page.status == 200
    html = await page.text()
    assert 'id="k-lang"' in html
    # The kiosk's guard is in the page's one script (server/bundles.py).
    script = re.search(r'<script type="module" src="(/static/bundles/[^"]+)"', html)
    assert script is not None
    assert 'casa$modules["kiosk-guard.js"]' in await (await client.get(script.group(1))).text()
    # No form field for a patient to type into: no input, nothing to autofill or restore.
    steps = html.split('<div id="kiosk"')[1]
    assert "<input" not in steps and "<form" not in steps
    # The code form for home patients is not for a kiosk.
    to_kiosk = await client.get("/join", allow_redirects=False)
    assert to_kiosk.status == 303 and to_kiosk.headers["Location"] == "/kiosk"

    # The same code on another browser: refused.
    forget_everyone(client)
    refused = await post_refused(client, "/kiosk/enrol",
                                 {"csrf_token": await csrf_token(client, "/kiosk/enrol"),
                                  "code": code}, typed=(code,))
    assert refused.status == 422
    assert kiosk_cookie(client) is None

    # The list says enrolled, with when it was last seen.
    await login(client, coord.email)
    listing = await (await client.get("/kiosks")).text()
    assert f'data-kiosk="{kiosk_id}" data-enrolled="yes"' in listing


async def test_wrong_expired_and_revoked_codes_and_credentials_are_refused(
        client: Client, conn: asyncpg.Connection, make_staff: StaffFactory) -> None:
    coord = await make_staff(Role.COORDINATOR, ("san-siro",))
    kiosk_id = await add_kiosk(conn)
    await login(client, coord.email)
    code = await make_code(client, kiosk_id)
    await conn.execute("UPDATE kiosk_enrolment_codes SET expires_at = now() - interval '1 s'")
    forget_everyone(client)
    assert (await enrol(client, code)).status == 303
    assert (await client.get("/kiosk/enrol")).status == 422
    assert kiosk_cookie(client) is None
    assert (await enrol(client, "ABCDE-FGHJK")).status == 303
    assert kiosk_cookie(client) is None

    # A revoked code.
    await login(client, coord.email)
    code = await make_code(client, kiosk_id)
    token = await csrf_token(client, "/kiosks")
    await client.post(f"/kiosks/{kiosk_id}/revoke", data={"csrf_token": token})
    forget_everyone(client)
    await enrol(client, code)
    assert kiosk_cookie(client) is None

    # An enrolled kiosk, revoked: refused at its next request, its cookie taken off.
    await login(client, coord.email)
    code = await make_code(client, kiosk_id)
    forget_everyone(client)
    await enrol(client, code)
    assert (await client.get("/kiosk")).status == 200
    await conn.execute("UPDATE kiosk_credentials SET revoked_at = now()")
    resp = await client.get("/kiosk")
    assert resp.status == 403
    assert kiosk_cookie(client) is None


async def test_enrolment_codes_are_guessed_no_faster_than_the_limit(
        client: Client, conn: asyncpg.Connection, make_staff: StaffFactory) -> None:
    code = await code_from_a_coordinator(client, conn, make_staff)
    for _ in range(10):
        await enrol(client, "ZZZZZ-ZZZZZ")
    # The right code, after the limit: refused too.
    await enrol(client, code)
    assert (await client.get("/kiosk/enrol")).status == 429
    assert kiosk_cookie(client) is None


async def test_another_centres_coordinator_sees_and_touches_nothing(
        client: Client, conn: asyncpg.Connection, make_staff: StaffFactory) -> None:
    other = await make_staff(Role.COORDINATOR, ("gratosoglio",))
    kiosk_id = await add_kiosk(conn)
    nurse = await make_staff(Role.NURSE, ("san-siro",))
    await login(client, other.email)
    listing = await (await client.get("/kiosks")).text()
    assert f'data-kiosk="{kiosk_id}"' not in listing
    token = await csrf_token(client, "/kiosks")
    for action in ("code", "revoke"):
        resp = await client.post(f"/kiosks/{kiosk_id}/{action}", data={"csrf_token": token},
                                 allow_redirects=False)
        assert resp.status in (303, 404)
        if resp.status == 303:
            assert (await client.get(resp.headers["Location"])).status == 404
    assert not await conn.fetchval("SELECT count(*) FROM kiosk_enrolment_codes")
    # A nurse is no kiosk manager.
    forget_everyone(client)
    await login(client, nurse.email)
    assert (await client.get("/kiosks")).status == 403


async def test_last_seen_moves_on_at_most_once_a_minute(
        client: Client, conn: asyncpg.Connection, make_staff: StaffFactory) -> None:
    await enrol(client, await code_from_a_coordinator(client, conn, make_staff))
    first = await conn.fetchval("SELECT last_seen_at FROM kiosk_credentials")
    await client.get("/kiosk")
    assert await conn.fetchval("SELECT last_seen_at FROM kiosk_credentials") == first
    await conn.execute("UPDATE kiosk_credentials SET last_seen_at = last_seen_at - $1::interval",
                       timedelta(minutes=5))
    await client.get("/kiosk")
    assert await conn.fetchval("SELECT last_seen_at FROM kiosk_credentials") > first - timedelta(
        seconds=1)


async def test_kiosk_pages_refuse_a_browser_that_is_no_kiosk(client: Client) -> None:
    assert (await client.get("/kiosk")).status == 403
    token = await csrf_token(client, "/join")
    resp = await client.post("/kiosk/join", json={"code": "123456", "day": "1", "month": "1",
                                                  "year": "1950"},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 403
    # The wipe takes every patient cookie and clears storage, kiosk or not.
    wiped = await client.get("/kiosk/wipe", allow_redirects=False)
    assert wiped.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert {"casa_patient", "casa_lang", "casa_csrf"} <= set(wiped.cookies)


async def test_another_site_cannot_make_a_browser_forget_its_patient(client: Client) -> None:
    # A link or redirect on someone else's page to the GETs that forget a patient: the
    # browser says so (Sec-Fetch-Site) and nothing is forgotten.
    for path in ("/kiosk/wipe", "/join/done"):
        resp = await client.get(path, allow_redirects=False,
                                headers={"Sec-Fetch-Site": "cross-site"})
        assert resp.status == 303, path
        assert "Clear-Site-Data" not in resp.headers, path
        assert not {"casa_patient", "casa_lang"} & set(resp.cookies), path
        same = await client.get(path, allow_redirects=False,
                                headers={"Sec-Fetch-Site": "same-origin"})
        assert {"casa_patient", "casa_lang"} <= set(same.cookies), path


async def test_a_kiosk_lets_in_only_kiosk_bookings_of_its_own_centre(
        client: Client, conn: asyncpg.Connection, config: Any,
        make_staff: StaffFactory) -> None:
    from tests.browser.conftest import DOB, book, soon

    gp = await make_staff(Role.GP, ("san-siro",))
    coord = await make_staff(Role.COORDINATOR, ("gratosoglio",))
    elsewhere = await add_kiosk(conn, "gratosoglio", "Kiosk G")
    here = await add_kiosk(conn)
    at_san_siro = await book(config, gp.id, soon(), mode="kiosk_video", kiosk_id=here)
    await login(client, coord.email)
    code = await make_code(client, elsewhere)
    forget_everyone(client)
    await enrol(client, code)
    token = await csrf_token(client, "/kiosk/enrol")
    dob = {"day": str(DOB.day), "month": str(DOB.month), "year": str(DOB.year)}
    resp = await client.post("/kiosk/join", json={"code": at_san_siro[4], **dob},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 409
    assert "casa_patient" not in resp.cookies
    wrong = await client.post("/kiosk/join", json={"code": at_san_siro[4], **dob,
                                                   "day": "2"},
                              headers={"X-CSRF-Token": token})
    assert wrong.status == 422
    # The invitation's link (its QR code) with a wrong date of birth: refused.
    link = await client.post("/kiosk/join", json={"link": f"http://x/join/{at_san_siro[3]}",
                                                  **dob, "day": "2"},
                             headers={"X-CSRF-Token": token})
    assert link.status == 422 and "casa_patient" not in link.cookies
