"""An anonymous host opening sockets it never says hello on: past a few per address it is
refused before the upgrade (HTTP 429), and counted; other addresses, and the sockets that say
hello, go on. Real loopback addresses: 127.0.0.1 and 127.0.0.2 are two hosts to the server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from server.keys import METRICS
from signaling.keys import ENGINE
from signaling.pending import MAX_PER_ADDRESS

Session = Callable[[str], aiohttp.ClientSession]


@pytest.fixture
async def from_address() -> AsyncIterator[Session]:
    """Client sessions whose connections leave from a given loopback address."""
    made: list[aiohttp.ClientSession] = []

    def make(address: str) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=0)
        made.append(aiohttp.ClientSession(connector=connector))
        return made[-1]

    yield make
    for s in made:
        await s.close()


def _refused(client: Any) -> float:
    value = client.server.app[METRICS].get_sample_value(
        "casa_signaling_unauthenticated_refused_total")
    return value or 0.0


async def _open(session: aiohttp.ClientSession, url: str, n: int
                ) -> list[aiohttp.ClientWebSocketResponse]:
    return [await session.ws_connect(url, heartbeat=None) for _ in range(n)]


async def test_sockets_without_hello_are_capped_per_address(
        client, ws_url, visits, gp, from_address):
    # The cap is under test, not the hello timeout: no socket may time out meanwhile.
    client.server.app[ENGINE].hello_timeout_s = 3600.0
    visit = await visits(gp.id)
    attacker = from_address("127.0.0.1")
    held = await _open(attacker, ws_url, MAX_PER_ADDRESS)
    try:
        for _ in range(20):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await attacker.ws_connect(ws_url, heartbeat=None)
            assert refused.value.status == 429
        assert _refused(client) == 20
        # Another address is not affected: it connects and is welcomed.
        other = await from_address("127.0.0.2").ws_connect(ws_url, heartbeat=None)
        await other.send_json({"type": "hello", "version": 1, "credential": visit.token})
        assert (await other.receive_json(timeout=5))["type"] == "welcome"
        # A socket that says hello no longer counts: its address may open one more.
        await held[0].send_json({"type": "hello", "version": 1, "credential": visit.token})
        assert (await held[0].receive_json(timeout=5))["type"] == "welcome"
        held.append(await attacker.ws_connect(ws_url, heartbeat=None))
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await attacker.ws_connect(ws_url, heartbeat=None)
        assert _refused(client) == 21
    finally:
        for ws in held:
            await ws.close()


async def test_sockets_timed_out_without_hello_free_their_address(
        client, ws_url, from_address):
    # No time to wait: every socket is past its hello time as soon as it opens. Were the
    # timed-out sockets still counted, the last open below would be refused.
    client.server.app[ENGINE].hello_timeout_s = 0.0
    attacker = from_address("127.0.0.1")
    held = await _open(attacker, ws_url, MAX_PER_ADDRESS)
    # Each is told hello_required and closed (4002); reading answers the close at once.
    for ws in held:
        with contextlib.suppress(TimeoutError):
            while not ws.closed:
                await ws.receive(timeout=5)
        assert ws.close_code == 4002
    await asyncio.sleep(0.05)   # the server's handlers run their clean-up
    again = await attacker.ws_connect(ws_url, heartbeat=None)
    await again.close()
    assert _refused(client) == 0
