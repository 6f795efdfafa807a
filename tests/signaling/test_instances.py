"""Server processes killed and restarted, and two processes sharing one consultation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from signaling.peer import CallPeer, SignalClient
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import on_today, staff_session, states, waiting_until
from tests.signaling.servers import ServerProcess
from tests.signaling.test_call import chat_worst_case


class Servers:
    """Makes server processes on the test's database; stops them all at the end."""

    def __init__(self, db_url: str, data_dir: Path) -> None:
        self.db_url = db_url
        self.data_dir = data_dir
        self.made: list[ServerProcess] = []

    def make(self, after: ServerProcess | None = None) -> ServerProcess:
        """A server process; on the port (the listening socket) of ``after`` when given."""
        s = ServerProcess(self.db_url, SECRET_KEY, self.data_dir,
                          after.listener if after is not None else None)
        self.made.append(s)
        return s


@pytest.fixture
async def servers(db_url: str, tmp_path: Path) -> AsyncIterator[Servers]:
    made = Servers(db_url, tmp_path)
    yield made
    for s in made.made:
        s.stop()


async def _patient(url: str, token: str) -> SignalClient:
    c = await SignalClient.connect(url)
    w = await c.hello(credential=token)
    assert w["type"] == "welcome", w
    return c


async def _staff(url: str, session: str, room: str | None = None) -> SignalClient:
    c = await SignalClient.connect(url, cookies={"casa_session": session})
    w = await c.hello(**({"room": room} if room else {}))
    assert w["type"] == "welcome", w
    return c


async def test_server_killed_mid_call_both_peers_resume(servers, visits, gp, db_url):
    visit = await visits(gp.id)
    session = await staff_session(db_url, gp.id)
    first = servers.make()
    await first.start()
    patient = await _patient(first.ws, visit.token)
    doctor = await _staff(first.ws, session, visit.room_id)
    pid = patient.welcome["peer_id"]
    p_peer, d_peer = CallPeer(patient), CallPeer(doctor)
    p_peer.start()
    d_peer.start()
    await doctor.send("admit", peer=pid)
    peers = [p_peer, d_peer]
    try:
        await p_peer.wait_frames(d_peer.peer_id, 3, 20)
        await d_peer.wait_frames(pid, 3, 20)
        first.kill()
        await p_peer.next_event("closed", 5)
        await d_peer.next_event("closed", 5)
        second = servers.make(after=first)
        await second.start()
        patient2 = await _patient(second.ws, visit.token)
        doctor2 = await _staff(second.ws, session, visit.room_id)
        for c in (patient2, doctor2):
            assert c.welcome["resumed"] is True
            assert c.welcome["state"] == "in_call"
        assert patient2.welcome["peer_id"] == pid
        p2, d2 = CallPeer(patient2), CallPeer(doctor2)
        peers += [p2, d2]
        p2.start()
        d2.start()
        await p2.wait_frames(d2.peer_id, 5, 25)
        await d2.wait_frames(pid, 5, 25)
    finally:
        for p in peers:
            await p.close()


async def test_two_processes_share_one_consultation(servers, visits, gp, db_url, conn):
    visit = await visits(gp.id, starts_in=on_today())
    session = await staff_session(db_url, gp.id)
    a, b = servers.make(), servers.make()
    await asyncio.gather(a.start(), b.start())
    dashboard = await _staff(b.ws, session)
    assert (await dashboard.expect("waiting_list", 3))["entries"] == []
    patient = await _patient(a.ws, visit.token)
    pid = patient.welcome["peer_id"]
    entries = (await dashboard.expect("waiting_list", 3))["entries"]
    assert [e["peer_id"] for e in entries] == [pid]
    doctor = await _staff(b.ws, session, visit.room_id)
    assert [e["peer_id"] for e in (await doctor.expect("waiting_list", 3))["entries"]] == [pid]
    p_peer, d_peer = CallPeer(patient), CallPeer(doctor)
    p_peer.start()
    d_peer.start()
    try:
        await doctor.send("admit", peer=pid)
        await p_peer.next_event("admitted", 3)
        await p_peer.wait_frames(d_peer.peer_id, 5, 25)
        await d_peer.wait_frames(pid, 5, 25)
        relays_before = await conn.fetchval("SELECT last_value FROM signaling_relay_id_seq")
        await patient.send("chat", text="ciao da A")
        chat = await d_peer.next_event("chat", 3)
        assert chat["from"] == pid
        # The worst chat the server accepts crosses instances in one NOTIFY: emoji (12 bytes
        # each once escaped) up to the byte cap, a 64-emoji id, and a frame padded with
        # whitespace (the relay is re-encoded, not the client's spelling): no table holds it.
        text = chat_worst_case()
        padded = ('{"type": "chat",' + " " * 30000 + '"id": ' + json.dumps("\U0001f600" * 64)
                  + ', "text": ' + json.dumps(text) + "}")
        await patient.send_raw(padded)
        chat = await d_peer.next_event("chat", 3)
        assert chat["text"] == text and chat["from"] == pid
        # No row was ever written (rows are deleted once read, so counting them proves nothing).
        assert await conn.fetchval(
            "SELECT last_value FROM signaling_relay_id_seq") == relays_before
        await dashboard.send("ping")
        await dashboard.expect("pong", 3)
        # A relay larger than a NOTIFY payload crosses instances by reference, intact.
        big = "v=0\r\n" + "a=x-casa-padding:" + "p" * 20000 + "\r\n"
        await patient.send("offer", to=d_peer.peer_id, sdp=big)
        offer = await d_peer.next_event("offer", 3)
        assert offer["sdp"] == big and offer["from"] == pid
        await doctor.send("end")
        await p_peer.next_event("ended", 3)
        # The dashboard on the other instance now shows the consultation ended.
        await waiting_until(dashboard, lambda e: states(e) == [(pid, "ended")])
    finally:
        await p_peer.close()
        await d_peer.close()
        await patient.close()
        await dashboard.close()


async def test_served_process_accepts_its_public_origin_only(servers, visits, gp):
    visit = await visits(gp.id)
    server = servers.make()
    await server.start()
    assert server.env["CASA_PUBLIC_ORIGIN"] == server.http
    patient = await SignalClient.connect(server.ws, headers={"Origin": server.http})
    try:
        assert (await patient.hello(credential=visit.token))["type"] == "welcome"
    finally:
        await patient.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await SignalClient.connect(server.ws, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
