"""Benchmark 1: signalling relay throughput and latency, Casa beside a bare aiohttp relay.

Rooms of two peers exchange offer/answer/candidate bursts at 500 and 2,000 connected peers.
Each server runs on core 0; the load generator (raw-socket client, bench/signaling_load.py) on
core 1. Closed loop first (every pair keeps two bursts in flight: the server's core
saturates), then an open loop at half of Casa's saturated rate for latency.

    python -m bench.signaling_relay [--seconds 6] [--peers 500 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from typing import Any

from bench.signaling_load import (
    CLIENT_CORE,
    RawWs,
    Server,
    bare_pair,
    burst_texts,
    casa_pair,
    frame,
    percentile,
    pin,
    raise_fd_limit,
)

BURST = 8
WARMUP_S = 1.5


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _pairs(kind: str, port: int, peers: int, handler: Any) -> list[tuple[RawWs, RawWs,
                                                                             str, str]]:
    make = casa_pair if kind == "casa" else bare_pair
    out = []
    for i in range(0, peers // 2, 50):   # connect in waves: a real server is not a SYN flood
        n = min(50, peers // 2 - i)
        out += await asyncio.gather(*(make(port, handler) for _ in range(n)))
    return out


async def closed_loop(kind: str, port: int, peers: int, seconds: float,
                      window: Any) -> dict[str, Any]:
    received = [0]
    bursts: dict[RawWs, bytes] = {}

    def bounce(ws: RawWs, data: bytes) -> None:
        received[0] += 1
        ws.state += 1
        if ws.state >= BURST:
            ws.state = 0
            ws.send(bursts[ws])

    pairs = await _pairs(kind, port, peers, bounce)
    for a, b, pa, pb in pairs:
        bursts[a] = b"".join(frame(t) for t in burst_texts(pb))
        bursts[b] = b"".join(frame(t) for t in burst_texts(pa))
        a.state = b.state = 0
    for ws, data in bursts.items():
        ws.send(data)
    await asyncio.sleep(WARMUP_S)
    window.put("start")
    start_n, start_t, start_cpu = received[0], time.perf_counter(), _cpu()
    await asyncio.sleep(seconds)
    n, t, cpu = received[0] - start_n, time.perf_counter() - start_t, _cpu() - start_cpu
    window.put("end")
    closed = sum(1 for ws in bursts if ws.closed)
    for ws in bursts:
        if ws.transport is not None:
            ws.transport.close()
    return {"rate": n / t, "client_cpu": cpu / t, "closed": closed}


async def open_loop(kind: str, port: int, peers: int, rate: float,
                    seconds: float, window: Any) -> dict[str, Any]:
    """Every peer sends timestamped candidates at rate/peers per second; latency per message."""
    lat: list[float] = []
    recording = [False]
    marker = b'"sdpMid":"'

    def on_text(ws: RawWs, data: bytes) -> None:
        i = data.find(marker)
        if i < 0 or not recording[0]:
            return
        sent = int(data[i + 10:i + 30])
        lat.append((time.perf_counter_ns() - sent) / 1e6)

    pairs = await _pairs(kind, port, peers, on_text)
    conns: list[tuple[RawWs, bytes, bytes, bytes]] = []
    for a, b, pa, pb in pairs:
        for ws, to in ((a, pb), (b, pa)):
            text = ('{"type":"candidate","to":"%s","candidate":{"candidate":"candidate:1 1 udp '
                    '1677729535 203.0.113.7 46154 typ srflx","sdpMid":"%s","sdpMLineIndex":0}}')
            whole = frame(text % (to, "0" * 20))
            cut = whole.index(b"0" * 20)
            conns.append((ws, whole[:cut], whole[cut + 20:], b""))
    # Spread evenly: each tick sends rate * tick messages, one per connection, round robin,
    # so the server sees a steady stream rather than every peer at once.
    tick = 0.002
    credit = 0.0
    nxt = 0
    started = time.perf_counter()
    last = started
    while (now := time.perf_counter()) - started < WARMUP_S + seconds:
        if not recording[0] and now - started > WARMUP_S:
            window.put("start")
        recording[0] = now - started > WARMUP_S
        credit += rate * (now - last)
        last = now
        n = int(credit)
        credit -= n
        for _ in range(n):
            ws, head, tail, _x = conns[nxt]
            nxt = (nxt + 1) % len(conns)
            ws.send(head + str(time.perf_counter_ns()).zfill(20).encode() + tail)
        await asyncio.sleep(tick)
    window.put("end")
    await asyncio.sleep(0.3)
    for ws, *_ in conns:
        if ws.transport is not None:
            ws.transport.close()
    return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "samples": len(lat),
            "achieved": len(lat) / seconds}


def _client(args: tuple[str, str, int, int, float, float], out: Any) -> None:
    mode, kind, port, peers, rate, seconds = args
    pin(CLIENT_CORE)
    raise_fd_limit()
    if mode == "closed":
        out.put(asyncio.run(closed_loop(kind, port, peers, seconds, out)))
    else:
        out.put(asyncio.run(open_loop(kind, port, peers, rate, seconds, out)))


def run_client(mode: str, kind: str, port: int, peers: int, rate: float, seconds: float,
               server: Server | None = None) -> dict[str, Any]:
    """Run one load phase in a client process pinned to CLIENT_CORE; the server's CPU is
    sampled over exactly the measurement window."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_client, args=((mode, kind, port, peers, rate, seconds), q))
    p.start()
    assert q.get(timeout=seconds + 120) == "start"
    cpu0, t0 = server.cpu_seconds() if server else 0.0, time.perf_counter()
    assert q.get(timeout=seconds + 60) == "end"
    cpu = ((server.cpu_seconds() if server else 0.0) - cpu0) / (time.perf_counter() - t0)
    result: dict[str, Any] = q.get(timeout=seconds + 120)
    result["server_cpu"] = cpu
    p.join(10)
    return result


async def measure(kind: str, peers_list: list[int], seconds: float,
                  half_rates: dict[int, float] | None) -> dict[int, dict[str, Any]]:
    server = Server(kind)
    try:
        await server.wait_ready()
        results: dict[int, dict[str, Any]] = {}
        for peers in peers_list:
            closed = await asyncio.to_thread(run_client, "closed", kind, server.port, peers, 0,
                                             seconds, server)
            rate = (half_rates or {}).get(peers) or closed["rate"] / 2
            opened = await asyncio.to_thread(run_client, "open", kind, server.port, peers, rate,
                                             seconds, server)
            results[peers] = {"closed": closed, "open": opened, "open_rate": rate}
            await asyncio.sleep(1.0)
        return results
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--peers", type=int, nargs="+", default=[500, 2000])
    args = parser.parse_args()
    raise_fd_limit()
    casa = await measure("casa", args.peers, args.seconds, None)
    # The bare relay is measured at the same offered load for latency.
    half = {p: r["open_rate"] for p, r in casa.items()}
    bare = await measure("bare", args.peers, args.seconds, half)
    # msgs per server CPU-second: what one core would carry, robust to other processes
    # taking part of core 0 (the servers are pinned there, not isolated).
    print(f"{'peers':>6} {'server':>6} {'msgs/s':>9} {'srv cpu':>8} {'msgs/cpu-s':>10} "
          f"{'cli cpu':>8} {'half-load':>9} {'p50 ms':>7} {'p99 ms':>7}")
    for peers in args.peers:
        for name, res in (("bare", bare[peers]), ("casa", casa[peers])):
            c, o = res["closed"], res["open"]
            c["per_cpu"] = c["rate"] / max(c["server_cpu"], 0.01)
            print(f"{peers:>6} {name:>6} {c['rate']:>9.0f} {c['server_cpu']:>8.0%} "
                  f"{c['per_cpu']:>10.0f} {c['client_cpu']:>8.0%} {res['open_rate']:>9.0f} "
                  f"{o['p50_ms']:>7.2f} {o['p99_ms']:>7.2f}")
        cb, cc = bare[peers]["closed"], casa[peers]["closed"]
        print(f"{peers:>6} casa/bare: {cc['rate'] / cb['rate']:.0%} of messages/s, "
              f"{cc['per_cpu'] / cb['per_cpu']:.0%} of messages per CPU-second")


if __name__ == "__main__":
    asyncio.run(main())
