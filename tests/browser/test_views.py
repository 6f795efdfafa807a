"""The call pages' server side, without a browser: who sees what on /consultation/{room}."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from server.calls.views import ROOM_ID
from server.config import Config
from server.consultations import credentials
from server.consultations.credentials import PATIENT_COOKIE
from server.consultations.store import new_room_id
from server.keys import POOL
from server.staff import Role
from tests.browser.conftest import book, soon
from tests.conftest import StaffFactory, login
from tests.visible_text import BUNDLE_SRC, bundled_words

Client = TestClient[Any, Any]


async def test_patient_cookie_opens_only_its_own_room(client: Client, conn: asyncpg.Connection,
                                                      config: Config,
                                                      make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, cid, room, _, _ = await book(config, gp.id, soon(), given="Anna")
    gp2 = await make_staff(Role.GP, ("san-siro",))
    _, _, other_room, _, _ = await book(config, gp2.id, soon(), given="Bea")
    session = await credentials.issue_session(conn, cid, datetime.now(UTC))
    client.session.cookie_jar.update_cookies({PATIENT_COOKIE: session})
    own = await (await client.get(f"/consultation/{room}")).text()
    assert 'data-role="patient"' in own and gp.full_name in own
    other = await (await client.get(f"/consultation/{other_room}")).text()
    assert 'data-role="visitor"' in other
    assert "Bea" not in other and gp2.full_name not in other


async def test_staff_not_on_the_consultation_sees_no_names(client: Client,
                                                          conn: asyncpg.Connection,
                                                          config: Config,
                                                          make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, _, _ = await book(config, gp.id, soon(), given="Carla")
    stranger = await make_staff(Role.GP, ("san-siro",))
    await login(client, stranger.email)
    page = await (await client.get(f"/consultation/{room}")).text()
    assert 'data-role="visitor"' in page and "Carla" not in page
    await login(client, gp.email)
    page = await (await client.get(f"/consultation/{room}")).text()
    assert 'data-role="clinician"' in page and "Carla" in page


async def test_cancelled_consultation_says_cancelled_or_moved(client: Client,
                                                             conn: asyncpg.Connection,
                                                             config: Config,
                                                             make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    booking_id, cid, room, _, _ = await book(config, gp.id, soon())
    session = await credentials.issue_session(conn, cid, datetime.now(UTC))
    await conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = $1", booking_id)
    client.session.cookie_jar.update_cookies({PATIENT_COOKIE: session})
    page = await (await client.get(f"/consultation/{room}")).text()
    assert 'data-outcome="cancelled"' in page


async def test_dashboard_needs_sign_in(client: Client) -> None:
    resp = await client.get("/dashboard", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"


async def test_client_strings_are_translated_for_the_page(client: Client, conn: asyncpg.Connection,
                                                          config: Config,
                                                          make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, _, _ = await book(config, gp.id, soon())
    it = await (await client.get(f"/consultation/{room}?lang=it")).text()
    en = await (await client.get(f"/consultation/{room}?lang=en")).text()
    # The words come in the page's one script (cached per language), not in the page.
    assert "Riconnessione in corso" not in it and "data-strings" not in it
    it_words = bundled_words(await (await client.get(BUNDLE_SRC.findall(it)[0])).text())
    en_words = bundled_words(await (await client.get(BUNDLE_SRC.findall(en)[0])).text())
    assert it_words["reconnecting"].startswith("Riconnessione in corso")
    assert en_words["reconnecting"].startswith("Reconnecting...")


async def test_moved_consultation_says_when_to_come_back(client: Client,
                                                        conn: asyncpg.Connection,
                                                        config: Config,
                                                        make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, cid, room, _, _ = await book(config, gp.id, soon())
    session = await credentials.issue_session(conn, cid, datetime.now(UTC))
    # Moved to tomorrow: the patient's session still names the room, the window is later.
    await conn.execute("UPDATE consultations SET join_opens_at = join_opens_at + interval '1 day',"
                       " join_closes_at = join_closes_at + interval '1 day' WHERE id = $1", cid)
    opens = await conn.fetchval(
        "SELECT to_char(join_opens_at AT TIME ZONE 'Europe/Rome', 'HH24:MI') FROM consultations"
        " WHERE id = $1", cid)
    client.session.cookie_jar.update_cookies({PATIENT_COOKIE: session})
    page = await (await client.get(f"/consultation/{room}?lang=en")).text()
    assert 'data-outcome="too_early"' in page and f"Come back at {opens}" in page


async def test_sensitive_service_page_names_neither_clinician_nor_service(
        client: Client, conn: asyncpg.Connection, config: Config,
        make_staff: StaffFactory) -> None:
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    await conn.execute("UPDATE staff SET full_name = 'Dott.ssa Elena Romano' WHERE id = $1",
                       psy.id)
    _, cid, room, _, _ = await book(config, psy.id, soon(), service="violence_support")
    session = await credentials.issue_session(conn, cid, datetime.now(UTC))
    client.session.cookie_jar.update_cookies({PATIENT_COOKIE: session})
    for lang, neutral in (("en", "Your clinician will let you in"),
                          ("it", "Il suo medico la farà entrare")):
        page = await (await client.get(f"/consultation/{room}?lang={lang}")).text()
        assert 'data-role="patient"' in page and 'data-discreet="true"' in page
        assert neutral in page and "Casa San Siro" in page
        lowered = page.lower()
        for word in ("romano", "violence", "violenza", "psycholog", "psicolog", "ascolto"):
            assert word not in lowered, (lang, word)


async def test_plain_service_page_keeps_the_clinicians_name(
        client: Client, conn: asyncpg.Connection, config: Config,
        make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, cid, room, _, _ = await book(config, gp.id, soon())
    session = await credentials.issue_session(conn, cid, datetime.now(UTC))
    client.session.cookie_jar.update_cookies({PATIENT_COOKIE: session})
    page = await (await client.get(f"/consultation/{room}?lang=en")).text()
    assert gp.full_name in page and 'data-discreet="false"' in page


async def test_room_ids_of_the_wrong_shape_are_not_found_without_a_query(
        client: Client, conn: asyncpg.Connection, config: Config,
        make_staff: StaffFactory) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    _, _, room, _, _ = await book(config, gp.id, soon())
    assert (await client.get(f"/consultation/{room}")).status == 200
    # Every room id bookings makes has the accepted shape.
    assert all(ROOM_ID.fullmatch(new_room_id()) for _ in range(500))
    wrong = ["%00abc", "%00" * 22, room[:-1], room + "A", room[:-1] + ".", room[:-1] + "%C3%A9",
             room[:-1] + "%20", "A" * 5000]
    # With the database out of reach a lookup would be a 500: these never get that far.
    app = client.app
    assert app is not None
    await app[POOL].close()
    for bad in wrong:
        resp = await client.get(f"/consultation/{bad}")
        assert resp.status == 404, bad
        assert "This page does not exist." in await resp.text() or \
            "Questa pagina non esiste" in await resp.text()
