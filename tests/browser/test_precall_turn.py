"""The pre-call check with the call's STUN/TURN servers, against a real coturn: the ICE servers
endpoint (who may ask, how long the credentials live), a relay-only check that succeeds in the
browser, and a guest (interpreter) who runs the same check before entering the call."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.config import Config
from server.staff import Role
from signaling import presence, turn
from tests.browser.conftest import LiveServer, Visit, book, fits_width, open_page, sign_in
from tests.conftest import SECRET_KEY, StaffFactory, login
from tests.coturn import TURN_SECRET, coturn
from tests.pg import serving_url

ICE = "/api/v1/precall/ice-servers"
# The direct test's verdict: "good" or, on a machine too loaded to echo video smoothly, "slow";
# either way it connected. These tests are about the relay and who may check, not speed.
DIRECT_DONE = "#net-result:is([data-state=ok], [data-state=warn])"
# The check: up to 3 s gathering, 10 s to connect, 2.5 s of media, twice (direct, relay-only).
CHECK_MS = 45_000
LAPTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def turn_port() -> Iterator[int]:
    with coturn() as port:
        yield port


@pytest.fixture
def config(db_url: str, tmp_path: Path, turn_port: int) -> Config:
    return Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                  turn_secret=TURN_SECRET,
                  turn_urls=(f"turn:127.0.0.1:{turn_port}?transport=udp",),
                  stun_urls=(f"stun:127.0.0.1:{turn_port}",))


def _turn_entry(body: dict[str, Any]) -> dict[str, Any]:
    [stun, relay] = body["ice_servers"]
    assert stun == {"urls": [stun["urls"][0]]} and stun["urls"][0].startswith("stun:")
    assert relay["credential"] == turn.turn_password(TURN_SECRET, relay["username"])
    return dict(relay)


async def test_ice_servers_for_patients_guests_and_staff_only(
        client: Any, conn: asyncpg.Connection, config: Config,
        make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, cid, _, link, _ = await book(config, gp.id, timedelta(0))
    closes = (await conn.fetchval("SELECT join_closes_at FROM consultations WHERE id = $1",
                                  cid)).timestamp()
    # Nobody, and credentials that are not ours or cannot be: refused before any relay.
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer g_nope"},
                    {"Authorization": "Bearer " + "x" * 300}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer g_" + "x" * 300}, {"Authorization": "Bearer "}):
        resp = await client.get(ICE, headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"]["code"] == "unauthenticated"
    # The patient's link as a bearer credential (as the cookie, below).
    before = time.time()
    resp = await client.get(ICE, headers={"Authorization": "Bearer " + link})
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    relay = _turn_entry(await resp.json())
    expiry, peer = relay["username"].split(":")
    assert peer.startswith("precall-") and link not in relay["username"]
    # Short-lived: ten minutes at most, and never past the join window.
    assert int(expiry) <= min(closes, time.time() + turn.SHORT_TURN_TTL_S)
    assert int(expiry) >= min(closes, before + turn.SHORT_TURN_TTL_S) - 1
    # Each ask is a new TURN user: one leaked credential is not everyone's.
    again = _turn_entry(await (await client.get(
        ICE, headers={"Authorization": "Bearer " + link})).json())
    assert again["username"] != relay["username"]
    # A guest's token (an interpreter's link), while it lives; the echo peer takes it too.
    guest, _ = await presence.create_guest(conn, cid, gp.id, None,
                                           datetime.now(UTC) + timedelta(minutes=30))
    resp = await client.get(ICE, headers={"Authorization": "Bearer " + guest})
    assert resp.status == 200
    expiry = _turn_entry(await resp.json())["username"].split(":")[0]
    assert int(expiry) <= min(closes, time.time() + turn.SHORT_TURN_TTL_S)
    for token in (guest, "g_nope"):
        resp = await client.post("/api/v1/precall/offer", json={"sdp": "v=0", "type": "offer"},
                                 headers={"Authorization": "Bearer " + token})
        # A known guest gets as far as the SDP (refused as bad); an unknown one no further
        # than its credential.
        assert resp.status == (400 if token == guest else 401), token
    await conn.execute("UPDATE signaling_guests SET expires_at = now() - interval '1 s'")
    assert (await client.get(ICE, headers={"Authorization": "Bearer " + guest})).status == 401
    # The patient's cookie from the join pages.
    await client.get(f"/join/{link}")
    assert (await client.get(ICE)).status == 200
    client.session.cookie_jar.clear()
    # A signed-in clinician.
    await login(client, gp.email)
    assert (await client.get(ICE)).status == 200
    client.session.cookie_jar.clear()
    # After the join window the patient's credential opens nothing, relay included.
    await conn.execute("UPDATE patient_credentials SET valid_from = now() - interval '1 hour',"
                       " valid_until = now() - interval '1 s'"
                       " WHERE consultation_id = $1", cid)
    resp = await client.get(ICE, headers={"Authorization": "Bearer " + link})
    assert resp.status == 401


async def test_relay_only_check_succeeds_through_coturn(live: str, visit: Visit,
                                                        browser: Any) -> None:
    patient = await open_page(browser, locale="en-GB")
    await patient.page.goto(f"{live}/join/{visit.link}")
    await patient.page.wait_for_selector("#stage-precall:not([hidden])")
    await patient.page.wait_for_selector(DIRECT_DONE, timeout=CHECK_MS)
    # The second test used relay candidates only; the echo peer saw the relay, and the
    # microphone's sound came back through it.
    await patient.page.wait_for_selector("#relay-result[data-state=ok][data-candidate=relay]",
                                         timeout=CHECK_MS)
    assert await patient.page.is_visible("#relay-result")
    text = await patient.page.inner_text("#check-network")
    # In the patient's booked language (Italian).
    assert "server di inoltro funziona da qui" in text
    # The connection check's dot follows the connection test, not the relay line.
    assert await patient.page.get_attribute("#check-network", "data-state") == \
        await patient.page.get_attribute("#net-result", "data-state")
    await fits_width(patient)
    patient.assert_clean()


async def test_guest_runs_the_same_check_before_entering(live: str, visit: Visit,
                                                        browser: Any) -> None:
    doc = await open_page(browser, viewport=LAPTOP, locale="en-GB")
    await sign_in(doc, live, visit.gp_email)
    await doc.page.goto(f"{live}/consultation/{visit.room}")
    # Clinicians check their devices only.
    assert not await doc.page.is_visible("#check-network")
    await doc.page.click("#precall-continue")
    await doc.page.wait_for_selector("#stage-call:not([hidden])")
    await doc.page.click("#tab-invite")  # the invitations are the side column's second tab
    await doc.page.click("#invite-guest")
    link_input = doc.page.locator("#invite-result input")
    await link_input.wait_for()
    link = await link_input.input_value()

    guest = await open_page(browser, locale="it-IT")
    await guest.page.goto(link)
    await guest.page.wait_for_selector("#stage-precall:not([hidden])")
    assert "guest=" not in guest.page.url
    # The connection test runs for the guest too, with the guest's token, relay included.
    assert await guest.page.is_visible("#check-network")
    await guest.page.wait_for_selector(DIRECT_DONE, timeout=CHECK_MS)
    assert int(await guest.page.get_attribute("#net-result", "data-frames-decoded") or 0) > 0
    await guest.page.wait_for_selector("#relay-result[data-state=ok]", timeout=CHECK_MS)
    # Guests go straight into the call: the button says so, in the guest's language.
    assert await guest.page.inner_text("#precall-continue") == "Entri nella visita"
    await fits_width(guest)
    await guest.page.click("#precall-continue")
    await guest.page.wait_for_selector("#stage-call:not([hidden])")
    await guest.page.wait_for_selector("#remotes .tile video", timeout=CHECK_MS)
    await doc.page.wait_for_selector("#remotes .tile video", timeout=CHECK_MS)
    guest.assert_clean()
    doc.assert_clean()


async def test_relay_that_refuses_us_is_said_plainly(config: Config, visit: Visit,
                                                     browser: Any) -> None:
    # A server whose TURN secret does not match coturn's (a deployment mistake): coturn
    # refuses every allocation, so the relay-only test cannot connect. The direct test still
    # passes, and the patient is told what to try, in words.
    server = LiveServer(dataclasses.replace(config, turn_secret="not-coturn-secret-" + "q" * 20))
    await server.start()
    try:
        patient = await open_page(browser, locale="en-GB")
        await patient.page.goto(f"{server.url}/join/{visit.link}")
        await patient.page.wait_for_selector(DIRECT_DONE, timeout=CHECK_MS)
        await patient.page.wait_for_selector("#relay-result[data-state=fail]", timeout=CHECK_MS)
        text = await patient.page.inner_text("#relay-result")
        # In the patient's booked language (Italian).
        assert "non è raggiungibile da questa rete" in text and "dati mobili" in text
        assert await patient.page.get_attribute("#check-network", "data-state") != "fail"
        patient.assert_clean()
    finally:
        await server.close()
