"""The echo peers cannot be hoarded: an offer whose ICE never connects (a closed tab, an
address that does not answer, or an anonymous attacker holding slots on purpose) gives its
slot back after ``ECHO_ICE_TIMEOUT_S``, and one person or one address holds only a few."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from server.config import Config
from signaling import echo

OFFER = "/api/v1/precall/offer"
# Injected into the server instead of ECHO_ICE_TIMEOUT_S, so the test takes seconds.
ICE_TIMEOUT_S = 2.0


@pytest.fixture
def config(config: Config) -> Config:
    # The test's loopback client speaks for several addresses, as a proxy would.
    return dataclasses.replace(config, trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))


async def unreachable_offer() -> str:
    """A real aiortc offer whose candidates point at an address nobody answers from
    (192.0.2.1, TEST-NET-1): the echo peer's ICE checks go nowhere, as with a tab closed right
    after sending its offer."""
    pc = RTCPeerConnection()
    pc.addTrack(AudioStreamTrack())
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return re.sub(r"(a=candidate:\S+ \d \S+ \d+ )\S+", r"\g<1>192.0.2.1", sdp)


async def patients(visits: Any, gp: Any, n: int) -> list[Any]:
    """``n`` patients of the same clinician, one after the other (no double booking)."""
    return [await visits(gp.id, starts_in=timedelta(minutes=5 + 21 * i)) for i in range(n)]


def as_from(token: str, address: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}


async def post(client: Any, sdp: str, headers: dict[str, str]) -> tuple[int, str]:
    resp = await client.post(OFFER, json={"sdp": sdp, "type": "offer"}, headers=headers)
    body = await resp.json()
    return resp.status, body["error"]["code"] if resp.status != 200 else body["id"]


@pytest.mark.serial  # slots timed against the ICE timeout: alone, after the parallel run
async def test_stuck_offers_free_their_slots_after_the_ice_timeout(client, visits, gp):
    client.server.app[echo.PEERS].limits = echo.EchoLimits(ice_timeout_s=ICE_TIMEOUT_S)
    *others, patient = await patients(visits, gp, 5)
    sdp = await unreachable_offer()
    # Four people at four addresses, each with an offer that never connects: every slot.
    for n, visit in enumerate(others):
        assert (await post(client, sdp, as_from(visit.token, f"198.51.100.{n + 1}")))[0] == 200
    assert len(client.server.app[echo.PEERS].peers) == echo.MAX_ECHO_PEERS
    started = time.monotonic()
    first = await post(client, sdp, as_from(patient.token, "203.0.113.7"))
    assert first == (429, "echo_busy")
    # The patient's page tries again; the slots come back once the ICE timeout has passed.
    status = 429
    while status != 200 and time.monotonic() - started < ICE_TIMEOUT_S + 20:
        await asyncio.sleep(0.2)
        status, _ = await post(client, sdp, as_from(patient.token, "203.0.113.7"))
    waited = time.monotonic() - started
    print(f"a patient's check waited {waited:.1f} s behind 4 offers that never connect")
    assert status == 200
    assert waited < ICE_TIMEOUT_S + 2.0, waited
    # The stuck peers were closed, not just forgotten.
    assert len(client.server.app[echo.PEERS].peers) == 1


@pytest.mark.serial  # refusals timed within 1 s: alone, after the parallel run (Makefile)
async def test_one_caller_and_one_address_hold_only_a_few(client, visits, gp):
    attacker, other, patient = await patients(visits, gp, 3)
    sdp = await unreachable_offer()
    accepted = []
    for _ in range(echo.MAX_ECHO_PEERS_PER_CALLER):
        status, peer_id = await post(client, sdp, as_from(attacker.token, "198.51.100.1"))
        assert status == 200
        accepted.append(peer_id)
    # The same link again, from the same address or another: refused at once.
    for address in ("198.51.100.1", "198.51.100.2"):
        started = time.monotonic()
        assert await post(client, sdp, as_from(attacker.token, address)) == (
            429, "too_many_checks")
        assert time.monotonic() - started < 1.0
    # Another credential from the attacker's address takes the address's last slot only.
    assert (await post(client, sdp, as_from(other.token, "198.51.100.1")))[0] == 200
    assert await post(client, sdp, as_from(other.token, "198.51.100.1")) == (
        429, "too_many_checks")
    # Someone else still finds a slot.
    assert (await post(client, sdp, as_from(patient.token, "203.0.113.7")))[0] == 200
    assert len(client.server.app[echo.PEERS].peers) == echo.MAX_ECHO_PEERS


async def test_concurrent_offers_from_one_caller_pass_the_cap_once(client, visits, gp):
    """Twenty offers raced from one link: the cap is checked and taken with no await between,
    so exactly the caller's share is accepted."""
    attacker = await visits(gp.id)
    sdp = await unreachable_offer()
    results = await asyncio.gather(*(post(client, sdp, as_from(attacker.token, "198.51.100.9"))
                                     for _ in range(20)))
    assert sorted(s for s, _ in results).count(200) == echo.MAX_ECHO_PEERS_PER_CALLER
    assert {c for s, c in results if s != 200} == {"too_many_checks"}
