"""Patient join: link tokens and codes, their windows, guessing, and what they open."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from server.consultations import credentials, store
from server.keys import CONFIG, METRICS
from tests.bookings.conftest import Api, open_hours

LINK = re.compile(r"/join/([A-Za-z0-9_-]{20,})")
CODE = re.compile(r"\b(\d{6})\b")


def soon(minutes: int) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(microsecond=0)


async def book(api: Api, starts_at: datetime, **over: Any) -> tuple[dict[str, Any], str, str]:
    """A video booking through the API; returns it with the link token and code it sent.
    One in the past is the coordinator's, with the reason that takes."""
    if starts_at < soon(0):
        over.setdefault("past_reason", "registering an appointment of the past")
    resp = await api.post("/api/v1/bookings", api.booking_body(starts_at, **over))
    assert resp.status == 201, await resp.text()
    b = await resp.json()
    body = await api.world.conn.fetchval(
        "SELECT body FROM outbox WHERE booking_id = $1 AND channel = 'sms' ORDER BY id DESC"
        " LIMIT 1", b["id"])
    if not body and starts_at < soon(0):
        # Booked in the past: the outbox blanks an invitation whose window has closed (maybe
        # already), so take a fresh link and code of the same kind.
        cid = b["consultation"]["id"]
        secret = api.client.app[CONFIG].secret_key
        return (b, await credentials.issue_link(api.world.conn, cid),
                await credentials.issue_code(api.world.conn, secret, cid))
    link, code = LINK.search(body), CODE.search(body)
    assert link and code, body
    return b, link.group(1), code.group(1)


ADDRESS = re.compile(r'<meta name="casa-address" content="([^"]*)">')


async def open_link(api: Api, token: str, query: str = "") -> Any:
    """Open an invitation link as a browser does: /join/{token} answers with the page itself
    (no redirect), which names its clean address for address.js; returns that answer."""
    resp = await api.client.get(f"/join/{token}{query}", allow_redirects=False)
    assert resp.status in (200, 404, 410, 429), resp.status
    text = await resp.text()
    assert token not in text
    assert resp.headers["Referrer-Policy"] == "strict-origin"
    assert resp.headers["Cache-Control"] == "no-store"
    return resp


async def address_of(resp: Any) -> str:
    """The clean address the page puts in the address bar (address.js)."""
    found = ADDRESS.search(await resp.text())
    assert found, "no casa-address on a page answered at the token's address"
    return found.group(1)


async def join_with_code(api: Api, code: str, dob: str = "1950-03-04",
                         ip: str | None = None) -> Any:
    from tests.conftest import csrf_token

    token = await csrf_token(api.client, "/join")
    y, m, d = dob.split("-")
    headers = {"X-Forwarded-For": ip} if ip else {}
    resp = await api.client.post("/join", data={"csrf_token": token, "code": code, "day": d,
                                                "month": m, "year": y},
                                 allow_redirects=False, headers=headers)
    if resp.status == 303 and resp.headers["Location"] == "/join":
        # Refused: never a page in answer to the POST (the browser would keep its body, the
        # code and date of birth); the form says why after the redirect.
        assert "casa_patient" not in resp.cookies
        retry_after = resp.headers.get("Retry-After")
        resp = await api.client.get("/join", allow_redirects=False)
        assert resp.headers.get("Retry-After") == retry_after
    return resp


async def test_link_sets_patient_cookie_and_leaves_the_url(api: Api):
    b, token, _ = await book(api, soon(5))
    resp = await open_link(api, token)
    assert resp.status == 200, "the consultation page itself, no redirect"
    room = b["consultation"]["room_id"]
    assert await address_of(resp) == f"/consultation/{room}"
    assert f'data-room="{room}"' in await resp.text()
    # The language form sends back to the clean address, never to the token's.
    assert f'name="next" value="/consultation/{room}"' in await resp.text()
    cookie = resp.cookies["casa_patient"]
    assert cookie["httponly"] and cookie.value != token
    c = await store.resolve_patient_credential(api.world.conn, cookie.value)
    assert c is not None and c.room_id == room
    # The raw link token is itself a credential for signalling, for its own consultation.
    c2 = await store.resolve_patient_credential(api.world.conn, token)
    assert c2 is not None and c2.id == c.id
    again = await open_link(api, token)
    assert again.status == 200, "the link keeps working for rejoining inside the window"
    assert await address_of(again) == f"/consultation/{room}"


async def test_token_opens_only_its_own_consultation(api: Api):
    a, token_a, _ = await book(api, soon(5))
    b, token_b, _ = await book(api, soon(5), patient_id=api.world.patient2,
                               clinician_id=api.world.gp2)
    ca = await store.resolve_patient_credential(api.world.conn, token_a)
    cb = await store.resolve_patient_credential(api.world.conn, token_b)
    assert ca and cb and ca.booking_id == a["id"] and cb.booking_id == b["id"]
    resp = await open_link(api, token_a)
    assert await address_of(resp) == f"/consultation/{a['consultation']['room_id']}"


async def test_too_early_expired_cancelled_and_guessed_links_are_refused(api: Api):
    _, early, _ = await book(api, soon(60 * 24))
    resp = await open_link(api, early)
    assert resp.status == 200 and "casa_patient" not in resp.cookies
    assert "too early" in (await resp.text()) or "troppo presto" in (await resp.text())
    _, late, _ = await book(api, soon(-120), patient_id=api.world.patient2)
    late_page = await open_link(api, late)
    assert late_page.status == 410, "too late is shown as too late, not as unknown"
    assert "terminato" in await late_page.text()
    c, gone, _ = await book(api, soon(5), clinician_id=api.world.gp2)
    assert (await api.post(f"/api/v1/bookings/{c['id']}/cancel", {})).status == 200
    assert (await open_link(api, gone)).status in (404, 410)
    for guess in ("A" * 43, gone[:-1] + ("A" if gone[-1] != "A" else "B"), "xq" * 30):
        resp = await open_link(api, guess)
        assert resp.status == 404 and "casa_patient" not in resp.cookies
        assert guess not in await resp.text()


async def test_reschedule_retires_the_old_link(api: Api):
    await open_hours(api.world.conn, api.world.gp)
    b, old, _ = await book(api, soon(5))
    assert (await api.post(f"/api/v1/bookings/{b['id']}/reschedule",
                           {"starts_at": soon(10).isoformat()})).status == 200
    moved = await open_link(api, old)  # says so, and opens nothing (test_reschedule_rules)
    assert moved.status == 410 and "casa_patient" not in moved.cookies
    _, new, _ = await book_again(api, b["id"])
    new_page = await open_link(api, new)
    assert new_page.status == 200 and "casa_patient" in new_page.cookies


async def book_again(api: Api, booking_id: int) -> tuple[None, str, str]:
    body = await api.world.conn.fetchval(
        "SELECT body FROM outbox WHERE booking_id = $1 AND channel = 'sms' ORDER BY id DESC"
        " LIMIT 1", booking_id)
    link, code = LINK.search(body), CODE.search(body)
    assert link and code
    return None, link.group(1), code.group(1)


async def test_code_with_date_of_birth_joins(api: Api):
    b, _, code = await book(api, soon(5))
    resp = await join_with_code(api, code)
    assert resp.status == 303
    assert resp.headers["Location"] == f"/consultation/{b['consultation']['room_id']}"
    assert "casa_patient" in resp.cookies
    spaced = await join_with_code(api, code[:3] + " " + code[3:])
    assert spaced.status == 303


async def test_wrong_date_of_birth_is_refused_and_the_code_is_revoked_after_five(api: Api):
    _, _, code = await book(api, soon(5))
    for i in range(5):
        resp = await join_with_code(api, code, "1950-03-05", ip=f"10.0.0.{i}")
        assert resp.status == 422 and "casa_patient" not in resp.cookies
    # Even the right date of birth no longer opens a code that was being guessed at.
    assert (await join_with_code(api, code)).status == 422


async def test_guessing_codes_is_rate_limited_per_address(api: Api):
    _, _, code = await book(api, soon(5))
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    for _ in range(10):
        assert (await join_with_code(api, wrong)).status == 422
    resp = await join_with_code(api, code)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0


async def test_parallel_code_guesses_check_at_most_the_address_limit(api: Api):
    """150 guesses raced from one address: no more codes are looked up than the limit."""
    _, _, code = await book(api, soon(5))
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    registry = api.client.app[METRICS]
    answers = await asyncio.gather(*[join_with_code(api, wrong) for _ in range(150)])
    checked = int(registry.get_sample_value("casa_auth_checks_total", {"kind": "join_code"}))
    assert checked <= credentials.MAX_FAILURES_PER_IP
    assert [a.status for a in answers].count(422) == checked


async def test_parallel_wrong_birth_dates_on_a_known_code_compare_at_most_five(api: Api):
    b, _, code = await book(api, soon(5))
    answers = await asyncio.gather(*[join_with_code(api, code, "1950-03-05") for _ in range(40)])
    assert all(a.status in (422, 429) for a in answers)
    row = await api.world.conn.fetchrow(
        "SELECT failed_attempts, revoked_at FROM patient_credentials "
        "WHERE consultation_id = $1 AND kind = 'code'", b["consultation"]["id"])
    assert row["failed_attempts"] <= credentials.MAX_FAILURES_PER_CODE
    assert row["revoked_at"] is not None


async def test_bad_form_input_is_a_clear_page(api: Api):
    for dob in ("1950-02-31", "0000-01-01", "abcd-ef-gh"):
        resp = await join_with_code(api, "123456", dob)
        assert resp.status == 422
    assert (await api.client.get("/join")).status == 200


async def test_expired_and_too_early_codes(api: Api):
    _, _, old = await book(api, soon(-120))
    assert (await join_with_code(api, old)).status == 422
    _, _, early = await book(api, soon(60 * 24), patient_id=api.world.patient2)
    resp = await join_with_code(api, early, "1985-07-09")
    assert resp.status == 200 and "casa_patient" not in resp.cookies
    assert early not in await resp.text()


async def test_patient_language_follows_into_the_pages(api: Api):
    b, token, _ = await book(api, soon(5), patient_id=api.world.patient2)  # Arabic
    body = await api.world.conn.fetchval(
        "SELECT body FROM outbox WHERE booking_id = $1 AND channel = 'sms'", b["id"])
    assert f"/join/{token}?lang=ar" in body and "/join?lang=ar" in body
    resp = await open_link(api, token, "?lang=ar")
    assert resp.cookies["casa_lang"].value == "ar"
    api.client.session.cookie_jar.update_cookies({"casa_lang": "it"})
    again = await open_link(api, token, "?lang=ar")
    assert "casa_lang" not in again.cookies, "a language the browser chose is kept"


async def test_link_answers_with_its_page_and_keeps_the_token_for_too_early_only(api: Api):
    """The link answers at once (no redirect) with the consultation or the refusal, whose
    clean address (/join/status) replaces the token's; only "too early" keeps the token, in
    the HttpOnly cookie, so that a reload of /join/status checks it again."""
    _, good, _ = await book(api, soon(5))
    _, early, _ = await book(api, soon(60 * 24), patient_id=api.world.patient2)
    for token, status in ((good, 200), (early, 200), ("A" * 43, 404)):
        first = await open_link(api, token, "?lang=en")
        assert first.status == status
        if token == good:
            assert "casa_patient" in first.cookies
            assert first.cookies["casa_join"].value == ""
            continue
        assert "casa_patient" not in first.cookies
        assert await address_of(first) == "/join/status?lang=en"
        kept = first.cookies["casa_join"]
        if token == early:
            assert kept.value == token and kept["httponly"] and kept["path"] == "/join"
            assert 0 < int(kept["max-age"]) <= 15 * 60 and kept["samesite"] == "Lax"
        else:
            assert kept.value == "", "a link that does not work leaves nothing behind"
    api.client.session.cookie_jar.clear()
    bare = await api.client.get("/join/status", allow_redirects=False)
    assert bare.status == 404 and "casa_patient" not in bare.cookies
    # Reloading a "too early" page (its clean address) works while the cookie lives.
    assert (await open_link(api, early)).status == 200
    again = await api.client.get("/join/status", allow_redirects=False)
    assert again.status == 200 and "troppo presto" in await again.text()
    # Not a token shape: refused directly, nothing kept.
    odd = await api.client.get("/join/a%3Bb%20c", allow_redirects=False)
    assert odd.status == 404 and odd.cookies["casa_join"].value == ""


async def test_refusals_are_answered_directly(api: Api):
    """An expired link and a cancelled one get their page in the link's own answer."""
    _, late, _ = await book(api, soon(-120), patient_id=api.world.patient2)
    c, gone, _ = await book(api, soon(5), clinician_id=api.world.gp2)
    assert (await api.post(f"/api/v1/bookings/{c['id']}/cancel", {})).status == 200
    for token in (late, gone):
        resp = await api.client.get(f"/join/{token}", allow_redirects=False)
        assert resp.status in (404, 410) and "Location" not in resp.headers
        assert "casa_patient" not in resp.cookies
        assert await address_of(resp) == "/join/status"


async def test_expired_credentials_resolve_to_nothing_but_still_read_too_late(api: Api):
    """Review 12: past valid_until a link or session opens nothing (not even the echo test);
    the join page still says the appointment is over."""
    b, token, _ = await book(api, soon(5))
    joined = await open_link(api, token)
    session = joined.cookies["casa_patient"].value
    conn = api.world.conn
    assert await store.resolve_patient_credential(conn, session) is not None
    # The window closes (as it would after the consultation's end plus the close minutes).
    await conn.execute("UPDATE patient_credentials SET valid_from = now() - interval '2 hours',"
                       " valid_until = now() - interval '1 second'")
    await conn.execute("UPDATE consultations SET join_opens_at = now() - interval '2 hours',"
                       " join_closes_at = now() - interval '1 second'")
    for credential in (token, session):
        assert await store.resolve_patient_credential(conn, credential) is None
        c = await store.lookup_patient_credential(conn, credential)
        assert c is not None and c.booking_id == b["id"]
    api.client.session.cookie_jar.clear()
    late = await open_link(api, token)
    assert late.status == 410 and "casa_patient" not in late.cookies
    echo = await api.client.post("/api/v1/precall/offer", json={"type": "offer", "sdp": "v=0"},
                                 headers={"Authorization": f"Bearer {token}"})
    assert echo.status == 401
    assert await store.lookup_patient_credential(conn, "A" * 43) is None
    assert await store.lookup_patient_credential(conn, "x" * 1000) is None
