"""Benchmark 3: server memory per idle connected peer at 5,000 peers, Casa beside a bare
aiohttp WebSocket server (each its own process; RSS measured from /proc).

    python -m bench.signaling_memory [--peers 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
from typing import Any

from bench.signaling_load import (
    CLIENT_CORE,
    RawWs,
    Server,
    bare_pair,
    casa_pair,
    pin,
    raise_fd_limit,
)

BASELINE_PEERS = 200


def _ignore(ws: RawWs, data: bytes) -> None:
    pass


async def _hold(kind: str, port: int, counts: list[int], ctl: Any, out: Any) -> None:
    make = casa_pair if kind == "casa" else bare_pair
    conns: list[RawWs] = []
    for target in counts:
        while len(conns) < target:
            n = min(50, (target - len(conns)) // 2)
            for a, b, *_ in await asyncio.gather(*(make(port, _ignore) for _ in range(n))):
                conns += [a, b]
        await asyncio.sleep(2.0)   # idle: let the server settle
        out.put(len(conns))
        await asyncio.to_thread(ctl.get)   # the parent has measured
    for ws in conns:
        if ws.transport is not None:
            ws.transport.close()


def _client(kind: str, port: int, counts: list[int], ctl: Any, out: Any) -> None:
    pin(CLIENT_CORE)
    raise_fd_limit()
    asyncio.run(_hold(kind, port, counts, ctl, out))


async def measure(kind: str, peers: int) -> dict[str, float]:
    server = Server(kind)
    try:
        await server.wait_ready()
        ctx = mp.get_context("spawn")
        ctl, out = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=_client, args=(kind, server.port,
                                              [BASELINE_PEERS, BASELINE_PEERS + peers], ctl, out))
        p.start()
        n0 = await asyncio.to_thread(out.get, True, 300)
        rss0 = server.rss_kib()
        ctl.put("ok")
        n1 = await asyncio.to_thread(out.get, True, 300)
        rss1 = server.rss_kib()
        ctl.put("ok")
        await asyncio.to_thread(p.join, 30)
        return {"peers": n1, "rss_kib": rss1, "per_peer_kib": (rss1 - rss0) / (n1 - n0)}
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=5000)
    args = parser.parse_args()
    raise_fd_limit()
    bare = await measure("bare", args.peers)
    casa = await measure("casa", args.peers)
    print(f"{'server':>6} {'peers':>6} {'RSS MiB':>8} {'KiB/peer':>9}")
    for name, r in (("bare", bare), ("casa", casa)):
        print(f"{name:>6} {r['peers']:>6.0f} {r['rss_kib'] / 1024:>8.1f} "
              f"{r['per_peer_kib']:>9.1f}")


if __name__ == "__main__":
    asyncio.run(main())
