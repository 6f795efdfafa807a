"""A flooding client is throttled, then disconnected, while another consultation's messages
still flow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from typing import Any

from server.staff import Role


async def _round_trips(sender: Any, receiver: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        await sender.send("chat", text=f"m{i}")
        m = await receiver.expect("chat", 2)
        assert m["text"] == f"m{i}"
        out.append(time.perf_counter() - started)
    return out


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
