"""Everything a client may get wrong, and what it is told."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from server.consultations import credentials, store
from server.staff import Role
from tests.signaling.conftest import staff_session


async def _closed(client: Any, within: float = 3.0) -> int | None:
    msg = await client.ws.receive(timeout=within)
    while msg.type == aiohttp.WSMsgType.TEXT:
        msg = await client.ws.receive(timeout=within)
    code: int | None = client.ws.close_code
    return code


async def test_message_before_hello_is_refused_and_closed(clients, visits, gp):
    c = await clients.raw()
    await c.send("offer", to="p_abcdefgh", sdp="v=0")
    err = await c.recv(2)
    assert err["code"] == "hello_required" and err["fatal"] is True
    assert await _closed(c) == 4002


@pytest.mark.serial  # a deadline measured from both sides: alone, after the parallel run (Makefile)
async def test_silent_socket_is_closed_after_two_seconds(clients):
    c = await clients.raw()
    started = time.monotonic()
    err = await c.recv(4)
    assert err["code"] == "hello_required"
    assert 1.5 < time.monotonic() - started < 3.5


async def test_unsupported_version(clients, visits, gp):
    visit = await visits(gp.id)
    c = await clients.raw()
    reply = await c.hello(version=2, credential=visit.token)
    assert reply["code"] == "unsupported_version"


async def test_unknown_credential_is_unauthenticated(clients):
    c = await clients.raw()
    reply = await c.hello(credential="not-a-real-token")
    assert reply["code"] == "unauthenticated"
    assert await _closed(c) == 4001


async def test_revoked_credential_is_refused(clients, visits, gp, conn):
    visit = await visits(gp.id)
    await conn.execute("UPDATE patient_credentials SET revoked_at = now() "
                       "WHERE consultation_id = $1", visit.consultation_id)
    c = await clients.raw()
    assert (await c.hello(credential=visit.token))["code"] == "unauthenticated"


async def test_expired_window_credential_is_refused(clients, visits, gp):
    visit = await visits(gp.id, starts_in=timedelta(hours=-2))
    c = await clients.raw()
    assert (await c.hello(credential=visit.token))["code"] == "too_late"


async def test_session_owing_second_factor_is_refused(clients, gp, db_url):
    token = await staff_session(db_url, gp.id, mfa_pending=True)
    c = await clients.raw(cookies={"casa_session": token})
    assert (await c.hello())["code"] == "unauthenticated"


async def test_clinician_of_another_booking_cannot_enter(clients, visits, gp, make_staff):
    other = await make_staff(Role.GP)
    visit = await visits(gp.id)
    token = await staff_session(clients.db_url, other.id)
    c = await clients.raw(cookies={"casa_session": token})
    assert (await c.hello(room=visit.room_id))["code"] == "room_not_found"


async def test_patient_credential_for_another_room(clients, visits, gp):
    a = await visits(gp.id)
    b = await visits(gp.id, starts_in=timedelta(minutes=30),
                     open_before=timedelta(minutes=60))
    c = await clients.raw()
    assert (await c.hello(credential=a.token, room=b.room_id))["code"] == "room_not_found"


async def test_foreign_origin_is_refused(clients, ws_url):
    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
        await clients.raw(headers={"Origin": "https://evil.example"})
    assert exc.value.status == 403


async def test_offer_rejected_before_admit(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    await patient.send("offer", to=doctor.welcome["peer_id"], sdp="v=0", id="o1")
    err = await patient.expect("error", 2)
    assert err["code"] == "not_in_call" and err["id"] == "o1" and err["fatal"] is False
    await patient.send("ping", id="still-here")
    assert (await patient.expect("pong", 2))["id"] == "still-here"


async def test_relay_across_consultations_is_refused(clients, visits, gp, make_staff):
    other_gp = await make_staff(Role.GP)
    a = await visits(gp.id)
    b = await visits(other_gp.id)
    pa = await clients.patient(a)
    da = await clients.staff(gp.id, a.room_id)
    pb = await clients.patient(b)
    db_ = await clients.staff(other_gp.id, b.room_id)
    await da.send("admit", peer=pa.welcome["peer_id"])
    await db_.send("admit", peer=pb.welcome["peer_id"])
    await pa.expect("admitted", 2)
    await pb.expect("admitted", 2)
    await pa.send("offer", to=pb.welcome["peer_id"], sdp="v=0 cross")
    assert (await pa.expect("error", 2))["code"] == "unknown_peer"
    await da.send("admit", peer=pb.welcome["peer_id"])
    assert (await da.expect("error", 2))["code"] == "unknown_peer"
    with pytest.raises(TimeoutError):
        await pb.expect("offer", 0.5)


async def test_spoofed_from_is_refused(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 2)
    await patient.send("chat", text="hi", **{"from": doctor.welcome["peer_id"]})
    err = await patient.expect("error", 2)
    assert err["code"] == "invalid_field" and err["details"]["field"] == "from"


async def test_patient_cannot_admit_or_end(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    await patient.send("admit", peer=patient.welcome["peer_id"])
    assert (await patient.expect("error", 2))["code"] == "not_allowed"
    await patient.send("end")
    assert (await patient.expect("error", 2))["code"] == "not_allowed"


MALFORMED = [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    ('{"type": "chat", "text": NaN}', "bad_json"),
    ('{"no_type": 1}', "unknown_type"),
    ('{"type": "teleport"}', "unknown_type"),
    ('{"type": "chat"}', "invalid_field"),
    ('{"type": "chat", "text": 42}', "invalid_field"),
    ('{"type": "chat", "text": "   "}', "invalid_field"),
    ('{"type": "media_state", "audio": 1, "video": true}', "invalid_field"),
    ('{"type": "candidate", "to": "p_x", "candidate": {"candidate": "a", "evil": 1}}',
     "invalid_field"),
    ('{"type": "notice", "peer": "p_x", "code": "buy_now"}', "invalid_field"),
    ('{"type": "invite", "staff_id": 3, "guest": true}', "invalid_field"),
    ('{"type": "ping", "id": ' + json.dumps("x" * 65) + "}", "invalid_field"),
    ('{"type": "hello", "version": 1}', "duplicate_hello"),
]


async def test_malformed_messages_get_catalogued_errors_and_keep_socket(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    for frame, code in MALFORMED:
        await patient.send_raw(frame)
        err = await patient.expect("error", 2)
        assert (err["code"], err["fatal"]) == (code, False), frame
        await patient.send("ping")
        await patient.expect("pong", 2)


async def test_binary_frame_is_refused_and_closed(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    await patient.ws.send_bytes(b"\x00\x01")
    err = await patient.expect("error", 2)
    assert (err["code"], err["fatal"]) == ("binary_frame", True)
    assert await _closed(patient) == 1003


async def test_oversized_message_closes_with_1009(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    await patient.send("chat", text="x" * (70 * 1024))
    err = await patient.expect("error", 2)
    assert err["code"] == "message_too_large"
    assert await _closed(patient) == 1009


async def test_huge_message_is_closed_by_the_transport(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    await patient.send_raw("x" * (200 * 1024))
    assert await _closed(patient) == 1009


async def test_too_many_errors_close_the_socket(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    for _ in range(60):
        await patient.send_raw("{}")
    codes = []
    with pytest.raises(ConnectionError):
        while True:
            codes.append((await patient.recv(2))["code"])
    assert codes[-1] == "too_many_errors"


@pytest.mark.serial  # a delay measured: alone, after the parallel run (Makefile)
async def test_logout_closes_staff_sockets_within_a_second(client, clients, visits, gp, conn):
    from server.auth import sessions

    visit = await visits(gp.id)
    token = await staff_session(clients.db_url, gp.id)
    doctor = await clients.raw(cookies={"casa_session": token})
    await doctor.hello(room=visit.room_id)
    dash = await clients.raw(cookies={"casa_session": token})
    await dash.hello()
    started = time.monotonic()
    await sessions.revoke(conn, sessions.hash_token(token))
    for c in (doctor, dash):
        err = await c.expect("error", 1.5)
        assert err["code"] == "session_ended"
    assert time.monotonic() - started < 1.2
    assert await _closed(doctor) == 4001


async def test_unknown_room_for_staff(clients, gp):
    token = await staff_session(clients.db_url, gp.id)
    c = await clients.raw(cookies={"casa_session": token})
    assert (await c.hello(room=store.new_room_id()))["code"] == "room_not_found"
    await asyncio.sleep(0)


async def test_a_patient_token_that_starts_like_a_guests_opens(clients, visits, gp, conn):
    """Invitation tokens are url-safe random text: one in 4,096 starts with ``g_``, the guest
    tokens' prefix. Such a patient enters (and may run the pre-call check) like any other."""
    visit = await visits(gp.id)
    token = "g_" + secrets.token_urlsafe(32)
    c = await store.get(conn, visit.consultation_id)
    assert c is not None
    await conn.execute(credentials.INSERT, c.id, "link", store.hash_credential(token),
                       c.join_opens_at, c.join_closes_at)
    patient = await clients.raw()
    welcome = await patient.hello(credential=token)
    assert (welcome["type"], welcome["state"]) == ("welcome", "waiting"), welcome
    url = clients.url.replace("ws://", "http://").replace("/ws", "/api/v1/precall/ice-servers")
    async with aiohttp.ClientSession() as http, \
            http.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200

