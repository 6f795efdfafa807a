"""Benchmark 3: server memory per idle connected peer at 5,000 peers: Casa (consultations through
the real handshake, patient and clinician admitted), the PeerJS server and a bare aiohttp
WebSocket server, each its own process on core 0, in the same run; RSS from /proc, after a
baseline of 200 peers.

    python -m bench.signaling_memory [--peers 5000] [--servers casa peerjs bare]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
from collections import Counter
from typing import Any

from bench import signaling_seed
from bench.signaling_load import (
    CLIENT_CORE,
    KINDS,
    RawWs,
    Server,
    Visitor,
    hang_up,
    make_pairs,
    pin,
    raise_fd_limit,
    stop_on_sigterm,
)

BASELINE_PEERS = 200
SETTLE_S = 2.0


def _ignore(ws: RawWs, data: bytes) -> None:
    pass


async def _hold(kind: str, port: int, counts: list[int], visits: list[Visitor], ctl: Any,
                out: Any) -> None:
    conns: list[RawWs] = []
    refused: Counter[str] = Counter()
    tried = 0
    for target in counts:
        pairs = (target - tried) // 2
        for a, b, *_ in await make_pairs(kind, port, pairs, _ignore,
                                         visits[tried // 2:tried // 2 + pairs], refused):
            conns += [a, b]
        tried = target
        await asyncio.sleep(SETTLE_S)   # idle: let the server settle
        out.put((len(conns), dict(refused)))
        await asyncio.to_thread(ctl.get)   # the parent has measured
    await hang_up(kind, conns)


def _client(kind: str, port: int, counts: list[int], visits: list[Visitor], ctl: Any,
            out: Any) -> None:
    pin(CLIENT_CORE)
    raise_fd_limit()
    try:
        asyncio.run(_hold(kind, port, counts, visits, ctl, out))
    except Exception as exc:
        out.put((0, {"failed": repr(exc)}))
        raise


async def measure(kind: str, peers: int, database: signaling_seed.Database | None = None,
                  visits: list[Visitor] | None = None) -> dict[str, float]:
    server = Server(kind, database.serving_dsn if database else None, behind_proxy=True)
    try:
        await server.wait_ready()
        ctx = mp.get_context("spawn")
        ctl, out = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=_client, args=(kind, server.port,
                                              [BASELINE_PEERS, BASELINE_PEERS + peers],
                                              visits or [], ctl, out))
        p.start()
        n0, _refused = await asyncio.to_thread(out.get, True, 300)
        rss0 = server.rss_kib()
        ctl.put("ok")
        n1, refused = await asyncio.to_thread(out.get, True, 300)
        rss1 = server.rss_kib()
        load = os.getloadavg()[0]
        ctl.put("ok")
        await asyncio.to_thread(p.join, 60)
        if "failed" in refused:
            raise RuntimeError(f"load generator: {refused['failed']}")
        return {"peers": n1, "rss_kib": rss1, "per_peer_kib": (rss1 - rss0) / (n1 - n0),
                "load": load, "refused": refused}
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=5000)
    parser.add_argument("--servers", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args()
    stop_on_sigterm()
    raise_fd_limit()
    results: dict[str, dict[str, Any]] = {}
    async with signaling_seed.database() as database:
        for kind in args.servers:
            if kind == "casa":
                visits = await database.visits((BASELINE_PEERS + args.peers) // 2)
                results[kind] = await measure(kind, args.peers, database, list(visits))
            else:
                results[kind] = await measure(kind, args.peers)
    print(f"{'server':>6} {'peers':>6} {'RSS MiB':>8} {'KiB/peer':>9} {'load':>5} refused pairs")
    for name, r in results.items():
        print(f"{name:>6} {r['peers']:>6.0f} {r['rss_kib'] / 1024:>8.1f} "
              f"{r['per_peer_kib']:>9.1f} {r['load']:>5.1f} {r['refused'] or ''}")
    if "casa" in results and "peerjs" in results:
        print(f"casa/peerjs per idle peer: "
              f"{results['casa']['per_peer_kib'] / results['peerjs']['per_peer_kib']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
