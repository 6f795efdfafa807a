"""A flooding client is throttled, then disconnected, while another consultation's messages
still flow; every frame counts, whatever its type, and a binary frame closes at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from typing import Any

import aiohttp
import pytest

from server.staff import Role
from signaling import ws as ws_module


async def _round_trips(sender: Any, receiver: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        await sender.send("chat", text=f"m{i}")
        m = await receiver.expect("chat", 2)
        assert m["text"] == f"m{i}"
        out.append(time.perf_counter() - started)
    return out


async def _other_call(clients: Any, visits: Any, make_staff: Any) -> tuple[Any, Any]:
    """Another consultation, admitted: its patient and clinician."""
    other = await make_staff(Role.GP)
    b = await visits(other.id)
    pb = await clients.patient(b)
    db_ = await clients.staff(other.id, b.room_id)
    await db_.send("admit", peer=pb.welcome["peer_id"])
    await pb.expect("admitted", 2)
    return pb, db_


async def _unharmed(pb: Any, db_: Any, baseline: list[float]) -> None:
    during = await _round_trips(pb, db_, 30)
    assert statistics.median(during) < max(0.05, 10 * statistics.median(baseline))
    assert max(during) < 1.0


async def _until_closed(ws: aiohttp.ClientWebSocketResponse, within: float
                        ) -> tuple[list[str], int, int | None]:
    """Error codes and pongs received until the server closes the socket."""
    codes: list[str] = []
    pongs = 0
    deadline = time.monotonic() + within
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if msg.type == aiohttp.WSMsgType.TEXT:
            m = json.loads(msg.data)
            if m.get("type") == "error":
                codes.append(m["code"])
        elif msg.type == aiohttp.WSMsgType.PONG:
            pongs += 1
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                          aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
            return codes, pongs, ws.close_code


@pytest.mark.serial  # round trips timed during a flood: alone, after the parallel run (Makefile)
async def test_a_binary_frame_closes_the_socket_and_a_flood_of_them_harms_no_one(
        clients, visits, gp, make_staff):
    a = await visits(gp.id)
    flooder = await clients.patient(a)
    pb, db_ = await _other_call(clients, visits, make_staff)
    baseline = await _round_trips(pb, db_, 30)

    async def flood() -> int:
        sent = 0
        with contextlib.suppress(Exception):   # the server closes us: that is the point
            while sent < 100_000:
                await flooder.ws.send_bytes(b"\x00" * 16)
                sent += 1
                if sent % 200 == 0:
                    await asyncio.sleep(0)
        return sent

    task = asyncio.create_task(flood())
    await asyncio.sleep(0.1)
    await _unharmed(pb, db_, baseline)
    codes, _pongs, close_code = await _until_closed(flooder.ws, 5)
    task.cancel()
    # One answer, for the first frame, and closed. The close frame (1003) may not be read:
    # the flooder's next write meets the reset of a socket closed with its flood unread.
    assert codes == ["binary_frame"]
    assert close_code in (1003, 1006)


async def test_binary_frames_close_the_socket_after_the_first(clients, visits, gp):
    patient = await clients.patient(await visits(gp.id))
    for _ in range(3):
        await patient.ws.send_bytes(b"\x00\x01")
    codes, _pongs, close_code = await _until_closed(patient.ws, 3)
    assert (codes, close_code) == (["binary_frame"], 1003)


async def test_a_binary_frame_before_hello_closes_the_socket(clients):
    c = await clients.raw()
    await c.ws.send_bytes(b"\x01\x02")
    codes, _pongs, close_code = await _until_closed(c.ws, 3)
    assert (codes, close_code) == (["binary_frame"], 1003)


@pytest.mark.serial  # a delay measured: alone, after the parallel run (Makefile)
async def test_a_ping_flood_counts_against_the_budget_and_is_disconnected(
        clients, visits, gp, make_staff, ws_url):
    a = await visits(gp.id)
    pb, db_ = await _other_call(clients, visits, make_staff)
    baseline = await _round_trips(pb, db_, 30)
    # Our own socket, so that pongs reach us instead of being swallowed by autoping.
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(ws_url, autoping=False, heartbeat=None)
        await ws.send_str(json.dumps({"type": "hello", "version": 1, "credential": a.token}))
        assert json.loads(await ws.receive_str(timeout=5))["type"] == "welcome"
        pings = 20_000

        async def flood() -> None:
            with contextlib.suppress(Exception):
                for i in range(pings):
                    await ws.ping(b"p")
                    if i % 200 == 0:
                        await asyncio.sleep(0)

        task = asyncio.create_task(flood())
        started = time.monotonic()
        received = asyncio.create_task(_until_closed(ws, 10))
        await asyncio.sleep(0.3)
        await _unharmed(pb, db_, baseline)
        codes, pongs, close_code = await received
        task.cancel()
    assert close_code == 4008 and codes[0] == "rate_limited" and codes[-1] == "flooding"
    # Answered no faster than the budget allows: the burst, then the rate while throttled.
    assert pongs <= ws_module.RATE_BURST + ws_module.RATE_PER_S * (ws_module.FLOOD_LIMIT_S + 1)
    assert time.monotonic() - started < 8


@pytest.mark.serial  # delays measured during a flood: alone, after the parallel run (Makefile)
async def test_flooder_is_throttled_then_disconnected(clients, visits, gp, make_staff):
    other = await make_staff(Role.GP)
    a = await visits(gp.id)
    b = await visits(other.id)
    flooder = await clients.patient(a)
    da = await clients.staff(gp.id, a.room_id)
    pb = await clients.patient(b)
    db_ = await clients.staff(other.id, b.room_id)
    await da.send("admit", peer=flooder.welcome["peer_id"])
    await db_.send("admit", peer=pb.welcome["peer_id"])
    await flooder.expect("admitted", 2)
    await pb.expect("admitted", 2)
    baseline = await _round_trips(pb, db_, 30)

    frame = json.dumps({"type": "chat", "text": "spam " * 20})

    async def flood() -> int:
        sent = 0
        with contextlib.suppress(Exception):   # the server closes us: that is the point
            while sent < 200_000:
                await flooder.ws.send_str(frame)
                sent += 1
                if sent % 200 == 0:
                    await asyncio.sleep(0)
        return sent

    task = asyncio.create_task(flood())
    await asyncio.sleep(0.3)
    during = await _round_trips(pb, db_, 30)
    codes = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 8:
            m = await flooder.recv(8)
            if m.get("type") == "error":
                codes.append(m["code"])
                if m["code"] == "flooding":
                    break
    except ConnectionError:
        pass
    task.cancel()
    assert codes[:1] == ["rate_limited"]
    assert codes[-1] == "flooding"
    assert time.monotonic() - started < 6
    # The other consultation never slowed to a crawl.
    assert statistics.median(during) < max(0.05, 10 * statistics.median(baseline))
    assert max(during) < 1.0
