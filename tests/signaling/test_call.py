"""Real aiortc peers hold a consultation through the real server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from server.consultations import store
from server.staff import Role
from signaling import events
from signaling.bus import CHANNEL
from signaling.envelope import MAX_PAYLOAD_BYTES, MAX_SENDER_CHARS, Envelope
from signaling.handlers import chat_frame
from signaling.messages import CHAT_MAX_CHARS, CHAT_MAX_RELAY_BYTES, Chat, chat_relay_bytes
from signaling.peer import CallPeer
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import on_today, waiting_until


async def _admitted_call(clients: Any, visit: Any, gp: Any) -> tuple[CallPeer, CallPeer]:
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    pid = patient.welcome["peer_id"]
    await doctor.expect("waiting_list", 2)
    p_peer = CallPeer(patient)
    d_peer = CallPeer(doctor)
    p_peer.start()
    d_peer.start()
    await doctor.send("admit", peer=pid)
    return p_peer, d_peer


async def test_media_flows_both_ways_after_admit(clients, visits, gp, conn):
    visit = await visits(gp.id)
    p_peer, d_peer = await _admitted_call(clients, visit, gp)
    try:
        await p_peer.wait_frames(d_peer.peer_id, 5, 20)
        await d_peer.wait_frames(p_peer.peer_id, 5, 20)
        await d_peer.client.send("media_state", audio=False, video=True)
        state = await p_peer.next_event("media_state", 3)
        assert state["from"] == d_peer.peer_id
        assert state["audio"] is False
        await p_peer.client.send("chat", text="Buongiorno dottore")
        chat = await d_peer.next_event("chat", 3)
        assert chat["text"] == "Buongiorno dottore"
        assert chat["from"] == p_peer.peer_id
        assert "at" in chat
        await d_peer.client.send("end")
        ended = await p_peer.next_event("ended", 3)
        assert ended["by"] == d_peer.peer_id
    finally:
        await p_peer.close()
        await d_peer.close()
    c = await store.get(conn, visit.consultation_id)
    assert c is not None
    assert c.state == "ended"
    assert c.booking_status == "fulfilled"
    events = [e["event"] for e in await store.events(conn, visit.consultation_id)]
    assert events[0] == "arrived"
    assert "admitted" in events and events[-1] == "ended"
    ended_detail = (await store.events(conn, visit.consultation_id))[-1]["detail"]
    assert "patient" in ended_detail["present"]
    assert f"staff:{gp.id}" in ended_detail["present"]
    assert await conn.fetchval("SELECT admitted_at IS NOT NULL AND ended_at IS NOT NULL "
                               "FROM consultations WHERE id = $1", visit.consultation_id)


EMOJI = "\U0001f600"   # 4 bytes of UTF-8, 12 once JSON-escaped
# A room's key on the bus is its consultation's id (a bigint) or ``probe-<nonce>``: the
# longest is the largest bigint.
LONGEST_ROOM_KEY = str(2**63 - 1)


def chat_worst_case(char: str = EMOJI) -> str:
    """The longest chat of ``char`` the server accepts (after one letter: not blank)."""
    n = CHAT_MAX_CHARS
    while chat_relay_bytes("x" + char * (n - 1)) > CHAT_MAX_RELAY_BYTES:
        n -= 1
    return "x" + char * (n - 1)


def test_every_accepted_chat_fits_a_notify_payload():
    """Chat must never be written to the database: its relay always fits one NOTIFY."""
    for char in (EMOJI, "\u00e8", "\u0627", '"', "\\", "\t", "\n", "a"):
        text = chat_worst_case(char)
        Chat(text=text).check()
        out = chat_frame(Chat(text=text, id=EMOJI * 64), "p_" + "x" * 38)
        event = events.Relay(room=LONGEST_ROOM_KEY, to=None, text=out.decode(),
                             from_="p_" + "x" * 38)
        sealer = Envelope(SECRET_KEY, CHANNEL, "i_" + "x" * (MAX_SENDER_CHARS - 2))
        payload = sealer.seal(events.encode(event))   # raises when over MAX_BODY_BYTES
        assert len(payload.encode()) <= MAX_PAYLOAD_BYTES, (repr(char), len(payload))
    assert len(chat_worst_case("a")) == CHAT_MAX_CHARS   # plain text keeps its 2000 chars
    assert len(chat_worst_case(EMOJI)) < CHAT_MAX_CHARS


async def test_chat_is_never_stored(clients, visits, gp, conn):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 2)
    await patient.send("chat", text="secret-chat-text-xyz")
    await doctor.expect("chat", 2)
    # 2000 characters of 4-byte UTF-8 would outgrow a NOTIFY payload: refused, with the cap
    await patient.send("chat", text=EMOJI * CHAT_MAX_CHARS, id="big")
    err = await patient.expect("error", 2)
    assert (err["code"], err["fatal"], err["id"]) == ("invalid_field", False, "big")
    assert err["details"]["field"] == "text"
    assert err["details"]["max_bytes"] == CHAT_MAX_RELAY_BYTES
    assert err["details"]["bytes"] > CHAT_MAX_RELAY_BYTES
    worst = chat_worst_case()
    await patient.send("chat", text=worst)
    assert (await doctor.expect("chat", 2))["text"] == worst
    dump = await conn.fetchval(
        "SELECT string_agg(detail::text, ' ') FROM consultation_events")
    assert "secret-chat-text-xyz" not in (dump or "")
    # (Between instances, tests/signaling/test_relay_sealed.py and test_instances.py show that
    # chat never goes through the relay table.)


async def test_second_clinician_invited_joins_as_third_participant(clients, visits, gp,
                                                                   make_staff):
    colleague = await make_staff(Role.PSYCHOLOGIST)
    visit = await visits(gp.id)
    p_peer, d_peer = await _admitted_call(clients, visit, gp)
    try:
        await p_peer.wait_frames(d_peer.peer_id, 3, 20)
        colleague_dash = await clients.staff(colleague.id)
        assert (await colleague_dash.expect("waiting_list", 2))["entries"] == []
        await d_peer.client.send("invite", staff_id=colleague.id, id="inv1")
        invited = await d_peer.next_event("invited", 3)
        assert invited["staff_id"] == colleague.id and invited["id"] == "inv1"
        third = await clients.staff(colleague.id, visit.room_id)
        assert third.welcome["state"] == "in_call"
        assert {p["peer_id"] for p in third.welcome["peers"]} == {p_peer.peer_id,
                                                                  d_peer.peer_id}
        t_peer = CallPeer(third)
        t_peer.start()
        try:
            await t_peer.wait_frames(p_peer.peer_id, 3, 20)
            await t_peer.wait_frames(d_peer.peer_id, 3, 20)
            await p_peer.wait_frames(t_peer.peer_id, 3, 20)
        finally:
            await t_peer.close()
    finally:
        await p_peer.close()
        await d_peer.close()


async def test_guest_link_lets_an_interpreter_in(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 2)
    await doctor.send("invite", guest=True, label="Arabic interpreter")
    invited = await doctor.expect("invited", 2)
    link = invited["link"]
    assert link.startswith(f"/consultation/{visit.room_id}#guest=")
    token = link.split("#guest=")[1]
    guest = await clients.raw()
    welcome = await guest.hello(credential=token)
    assert welcome["state"] == "in_call" and welcome["role"] == "guest"
    # a patient's name is for staff only
    assert all(p["name"] == "" for p in welcome["peers"] if p["role"] == "patient")
    joined = await patient.expect("peer_joined", 2)
    assert joined["peer"]["role"] == "guest"
    # the guest's token does not open another consultation's room
    forged = await clients.raw()
    reply = await forged.hello(credential=token + "x")
    assert reply["code"] == "unauthenticated"


async def test_dashboard_lists_every_consultation_of_the_day(clients, visits, gp):
    # Two bookings of today in Rome, not overlapping, whatever the hour of the run.
    a = await visits(gp.id, starts_in=on_today(5, -25))
    # Near midnight b starts an hour ago: its window must still be open (20 minutes long, it
    # would close 30 minutes after its end, ten minutes ago).
    b = await visits(gp.id, starts_in=on_today(40, -60), open_before=timedelta(minutes=60),
                     close_after=timedelta(minutes=60))
    dash = await clients.staff(gp.id)
    await dash.expect("waiting_list", 2)
    await clients.patient(a)
    await clients.patient(b)
    entries = await waiting_until(dash, lambda e: len(e) == 2)
    assert {(e["room"], e["state"]) for e in entries} == {(a.room_id, "waiting"),
                                                          (b.room_id, "waiting")}
    await asyncio.sleep(0)
