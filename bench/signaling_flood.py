"""Benchmark 4: one client floods as fast as it can while 500 peers exchange normal traffic;
the others' p99 latency with and without the flood (Casa server on core 0, clients on core 1).
The flood is of chat messages, binary frames or WebSocket pings (``--frames``): every frame
pays from the same budget, and a binary frame closes the socket.

    python -m bench.signaling_flood [--peers 500] [--rate 5000] [--seconds 6]
                                    [--frames text|binary|ping]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
from typing import Any

from bench.signaling_load import (
    CLIENT_CORE,
    RawWs,
    Server,
    casa_pair,
    frame,
    frame_control,
    pin,
    raise_fd_limit,
)
from bench.signaling_relay import run_client


def _flood_frame(kind: str) -> bytes:
    """One frame of the flood, as a client sends it (masked with the all-zero key)."""
    if kind == "binary":
        data = b"\x00" * 180
        return bytes([0x82, 0x80 | 126]) + len(data).to_bytes(2, "big") + b"\x00" * 4 + data
    if kind == "ping":
        return frame_control(0x9, b"flood")
    return frame(json.dumps({"type": "chat", "text": "flood " * 30}))


def _flooder(port: int, kind: str, stop: Any, out: Any) -> None:
    pin(CLIENT_CORE)
    os.nice(5)   # the flooder is "elsewhere on the internet": do not starve the measuring client

    async def flood() -> dict[str, int]:
        sent = disconnects = 0
        while not stop.is_set():
            def ignore(ws: RawWs, data: bytes) -> None:
                pass

            a, b, _pa, pb = await casa_pair(port, ignore)
            # Pre-encoded frames written in 64 KiB chunks whenever the socket takes them:
            # as fast as the server reads, at almost no CPU cost here (a remote flooder's CPU
            # is not ours to share).
            chunk = _flood_frame(kind) * 256
            while not a.closed and not stop.is_set():
                t = a.transport
                if t is not None and t.get_write_buffer_size() < 256 * 1024:
                    t.write(chunk)
                    sent += 256
                await asyncio.sleep(0.001)
            disconnects += a.closed
            for ws in (a, b):
                if ws.transport is not None:
                    ws.transport.close()
            del pb
        return {"sent": sent, "disconnects": disconnects}

    out.put(asyncio.run(flood()))


def _normal_traffic(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """The well-behaved peers' open loop (probe rooms), its latency and the server's CPU."""
    result: dict[str, Any] = run_client("casa", server, args.peers, args.seconds, args.rate,
                                        closed_loop=False)["open"]
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=5000.0, help="normal messages/s in all")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--frames", choices=("text", "binary", "ping"), default="text")
    args = parser.parse_args()
    raise_fd_limit()
    server = Server("casa", behind_proxy=True)
    try:
        await server.wait_ready()
        base1 = await asyncio.to_thread(_normal_traffic, server, args)
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        stop = ctx.Event()
        flooder = ctx.Process(target=_flooder, args=(server.port, args.frames, stop, q))
        flooder.start()
        await asyncio.sleep(1.0)
        flooded = await asyncio.to_thread(_normal_traffic, server, args)
        stop.set()
        flood = await asyncio.to_thread(q.get, True, 60)
        flooder.join(10)
        base2 = await asyncio.to_thread(_normal_traffic, server, args)
    finally:
        server.stop()
    base_p99 = (base1["p99_ms"] + base2["p99_ms"]) / 2
    print(f"{args.peers} peers, {args.rate:.0f} msg/s of normal traffic; "
          f"flood of {args.frames} frames")
    print(f"without flood: p50 {base1['p50_ms']:.2f} / {base2['p50_ms']:.2f} ms, "
          f"p99 {base1['p99_ms']:.2f} / {base2['p99_ms']:.2f} ms (before / after)")
    print(f"with flood:    p50 {flooded['p50_ms']:.2f} ms, p99 {flooded['p99_ms']:.2f} ms "
          f"(p99 {flooded['p99_ms'] / base_p99 - 1:+.0%})")
    base_cpu = (base1["server_cpu"] + base2["server_cpu"]) / 2
    print(f"server CPU share: {base1['server_cpu']:.1%} / {base2['server_cpu']:.1%} without, "
          f"{flooded['server_cpu']:.1%} with the flood ({flooded['server_cpu'] - base_cpu:+.1%}"
          " of a core: the flood's whole cost to everyone else)")
    how = ("closed with 'binary_frame' (1003) at the first" if args.frames == "binary"
           else "throttled, then closed with 'flooding'")
    print(f"flooder: {flood['sent']} frames written, disconnected {flood['disconnects']} "
          f"times (each time: {how})")


if __name__ == "__main__":
    asyncio.run(main())
