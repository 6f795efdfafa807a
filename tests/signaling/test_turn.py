"""TURN: a real coturn accepts Casa's credentials, refuses expired or forged ones, and a call
forced through the relay connects."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from server.config import Config
from signaling import turn
from signaling.peer import CallPeer
from tests.conftest import SECRET_KEY
from tests.pg import serving_url
from tests.signaling.turnserver import TURN_SECRET, coturn

__all__ = ["coturn"]   # the module-scoped fixture, used below


@pytest.fixture(autouse=True)
def _coturn_is_installed() -> None:
    if shutil.which("turnserver") is None:
        pytest.fail("Debian's coturn is not installed (apt-get install coturn)")


@pytest.fixture
def config(db_url: str, tmp_path: Path, coturn: int) -> Config:
    return Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                  turn_secret=TURN_SECRET,
                  turn_urls=(f"turn:127.0.0.1:{coturn}?transport=udp",))


async def _relay_candidates(port: int, username: str, password: str) -> int:
    server = RTCIceServer(urls=f"turn:127.0.0.1:{port}?transport=udp", username=username,
                          credential=password)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[server],
                                            iceTransportPolicy=RTCIceTransportPolicy.RELAY))
    try:
        pc.createDataChannel("probe")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), 10)
        sdp = pc.localDescription.sdp if pc.localDescription else ""
        return sdp.count("typ relay")
    finally:
        await pc.close()


async def test_coturn_accepts_casa_credentials(coturn):
    username = turn.turn_username(int(time.time()) + 600, "p_test")
    assert await _relay_candidates(coturn, username,
                                   turn.turn_password(TURN_SECRET, username)) >= 1


async def test_coturn_refuses_expired_credentials(coturn):
    username = turn.turn_username(int(time.time()) - 60, "p_test")
    assert await _relay_candidates(coturn, username,
                                   turn.turn_password(TURN_SECRET, username)) == 0


async def test_coturn_refuses_forged_credentials(coturn):
    username = turn.turn_username(int(time.time()) + 600, "p_test")
    assert await _relay_candidates(coturn, username,
                                   turn.turn_password("not-the-secret", username)) == 0


def test_credentials_never_outlive_the_join_window():
    cfg = Config(secret_key=SECRET_KEY, data_dir=Path("/tmp"), turn_secret=TURN_SECRET,
                 turn_urls=("turn:127.0.0.1:3478",), stun_urls=("stun:127.0.0.1:3478",))
    now = 1_800_000_000.0
    [stun, relay] = turn.ice_servers(cfg, "p_abc", expires_at=now + 1800, now=now)
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    expiry, peer = relay["username"].split(":")
    assert (int(expiry), peer) == (int(now + 1800), "p_abc")
    assert relay["credential"] == turn.turn_password(TURN_SECRET, relay["username"])
    [_, capped] = turn.ice_servers(cfg, "p_abc", expires_at=now + 86400, now=now)
    assert int(capped["username"].split(":")[0]) == int(now + turn.MAX_TURN_TTL_S)


async def test_call_forced_through_the_relay_connects(clients, visits, gp) -> None:
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    for c in (patient, doctor):
        [ice] = c.welcome["ice_servers"]
        assert ice["username"].endswith(":" + c.welcome["peer_id"])
        assert int(ice["username"].split(":")[0]) <= time.time() + 3 * 3600
    p_peer = CallPeer(patient, relay_only=True)
    d_peer = CallPeer(doctor, relay_only=True)
    p_peer.start()
    d_peer.start()
    try:
        await doctor.send("admit", peer=patient.welcome["peer_id"])
        await p_peer.wait_frames(d_peer.peer_id, 5, 30)
        await d_peer.wait_frames(p_peer.peer_id, 5, 30)
        pc = d_peer.pcs[p_peer.peer_id]
        from signaling.echo import candidate_type

        assert candidate_type(pc) == "relay"
    finally:
        await p_peer.close()
        await d_peer.close()


