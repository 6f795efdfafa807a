"""Benchmark 1: signalling relay throughput and latency: Casa, the PeerJS server (npm ``peer``)
and a bare aiohttp relay, in interleaved rounds.

Pairs of peers exchange offer/answer/candidate bursts at 500 and 2,000 connected peers. Casa's
pairs are consultations through the real handshake (patient's hello, clinician's hello, admit);
PeerJS's open ``/peerjs`` and wait for ``OPEN``; the bare relay's name their pair. Each server
runs on core 0; the load generator (raw-socket client, bench/signaling_load.py) on core 1, and
its CPU is reported: it must stay below its core. For every server and peer count, on the same
sockets: a closed loop (every pair keeps two bursts in flight: the server's core saturates),
then an open loop at half of Casa's saturated rate of that round (the same offered load for
all three) for latency. Each round starts every server afresh.

    python -m bench.signaling_relay [--rounds 3] [--seconds 4] [--peers 500 2000] [--json F]

Columns: closed-loop messages/s, the server's and the client's CPU (share of a core) and
messages per server CPU-second (what a whole core would carry: robust to other processes on
core 0); the open loop's rate, p50 and p99, the client's CPU; the set-up time; the load
average; sockets lost; frames that were not relays (by type or error code); pairs refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import signaling_seed
from bench.signaling_load import (
    CLIENT_CORE,
    KINDS,
    RawWs,
    Server,
    Visitor,
    burst_texts,
    error_code,
    frame,
    hang_up,
    make_pairs,
    percentile,
    pin,
    raise_fd_limit,
    stop_on_sigterm,
    timed_candidate,
)

BURST = 8
WARMUP_S = 1.0
# Bursts in flight when the closed loop stops are let through before the open loop starts.
DRAIN_S = 1.0
MARKER = b'"sdpMid":"'


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


class Traffic:
    """The client side of one server's measurement: what arrived, and the closed loop."""

    def __init__(self) -> None:
        self.received = 0
        self.bouncing = True
        self.recording = False
        self.latencies: list[float] = []
        self.bursts: dict[RawWs, bytes] = {}
        self.other: Counter[str] = Counter()   # frames that are not relays, by type or code

    def on_text(self, ws: RawWs, data: bytes) -> None:
        if b"sdpMLineIndex" not in data and b'"v=0' not in data:
            m = json.loads(data)
            self.other[error_code(m) or str(m.get("type"))] += 1
            return
        self.received += 1
        if self.recording:
            i = data.find(MARKER)
            if i >= 0 and data[i + 11:i + 12] != b'"':   # a timed candidate, not a burst's
                self.latencies.append((time.perf_counter_ns() - int(data[i + 10:i + 30])) / 1e6)
        elif self.bouncing:
            ws.state += 1
            if ws.state >= BURST:
                ws.state = 0
                ws.send(self.bursts[ws])


async def _measure(kind: str, port: int, peers: int, seconds: float, rate: float,
                   visits: list[Visitor], closed_loop: bool, window: Any) -> dict[str, Any]:
    traffic = Traffic()
    started = time.perf_counter()
    refused: Counter[str] = Counter()
    pairs = await make_pairs(kind, port, peers // 2, traffic.on_text, visits, refused)
    setup_s = time.perf_counter() - started
    conns: list[tuple[RawWs, bytes, bytes]] = []
    for a, b, pa, pb in pairs:
        for ws, to in ((a, pb), (b, pa)):
            traffic.bursts[ws] = b"".join(frame(t) for t in burst_texts(to, kind))
            ws.state = 0
            conns.append((ws, *timed_candidate(kind, to)))
    closed: dict[str, float] = {}
    if closed_loop:
        closed = await _closed_loop(traffic, seconds, window)
    rate = rate or closed["rate"] / 2
    opened = await _open_loop(traffic, conns, rate, seconds, window)
    lost = sum(1 for ws, *_ in conns if ws.closed)
    await hang_up(kind, [ws for ws, *_ in conns])
    return {"closed": closed, "open": opened, "open_rate": rate, "setup_s": setup_s,
            "lost": lost, "other": dict(traffic.other), "refused": dict(refused),
            "peers": 2 * len(pairs)}


async def _closed_loop(traffic: Traffic, seconds: float, window: Any) -> dict[str, float]:
    """Every socket keeps two bursts in flight: each burst received is answered by another."""
    for ws, data in traffic.bursts.items():
        ws.send(data)
        ws.send(data)
    await asyncio.sleep(WARMUP_S)
    window.put("start")
    n0, t0, cpu0 = traffic.received, time.perf_counter(), _cpu()
    await asyncio.sleep(seconds)
    n, t, cpu = traffic.received - n0, time.perf_counter() - t0, _cpu() - cpu0
    window.put("end")
    traffic.bouncing = False
    await asyncio.sleep(DRAIN_S)
    return {"rate": n / t, "client_cpu": cpu / t}


async def _open_loop(traffic: Traffic, conns: list[tuple[RawWs, bytes, bytes]], rate: float,
                     seconds: float, window: Any) -> dict[str, Any]:
    """Timestamped candidates at ``rate`` in all, round robin over the sockets in 2 ms ticks,
    so the server sees a steady stream rather than every peer at once."""
    tick = 0.002
    credit = 0.0
    nxt = 0
    started = last = time.perf_counter()
    cpu0 = 0.0
    while (now := time.perf_counter()) - started < WARMUP_S + seconds:
        if not traffic.recording and now - started > WARMUP_S:
            window.put("start")
            traffic.recording = True
            cpu0 = _cpu()
        credit += rate * (now - last)
        last = now
        n = int(credit)
        credit -= n
        for _ in range(n):
            ws, head, tail = conns[nxt]
            nxt = (nxt + 1) % len(conns)
            ws.send(head + str(time.perf_counter_ns()).zfill(20).encode() + tail)
        await asyncio.sleep(tick)
    window.put("end")
    cpu = (_cpu() - cpu0) / seconds
    await asyncio.sleep(0.3)
    traffic.recording = False
    lat = traffic.latencies
    return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "samples": len(lat),
            "achieved": len(lat) / seconds, "client_cpu": cpu}


def _client(args: tuple[str, int, int, float, float, list[Visitor], bool], out: Any) -> None:
    kind, port, peers, seconds, rate, visits, closed_loop = args
    pin(CLIENT_CORE)
    raise_fd_limit()
    try:
        out.put(asyncio.run(_measure(kind, port, peers, seconds, rate, visits, closed_loop,
                                     out)))
    except Exception as exc:
        out.put(f"failed: {exc!r}")
        raise


def _expect(got: object, want: str) -> None:
    if got != want:
        raise RuntimeError(f"load generator: {got}")


def run_client(kind: str, server: Server, peers: int, seconds: float, rate: float = 0.0,
               visits: list[Visitor] | None = None, closed_loop: bool = True) -> dict[str, Any]:
    """One server's closed loop (unless ``closed_loop`` is false) and open loop (at ``rate``,
    or half the closed loop's) from a client process pinned to CLIENT_CORE; the server's CPU
    and the load average are sampled over exactly each measurement window. Casa's pairs are
    ``visits`` (consultations) or, without any, probe rooms."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_client, args=((kind, server.port, peers, seconds, rate,
                                           visits or [], closed_loop), q))
    p.start()
    phases = ("closed", "open") if closed_loop else ("open",)
    server_cpu: dict[str, float] = {}
    for phase in phases:
        _expect(q.get(timeout=seconds + 180), "start")
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        _expect(q.get(timeout=seconds + 60), "end")
        server_cpu[phase] = (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    result: dict[str, Any] = q.get(timeout=120)
    for phase in phases:
        result[phase]["server_cpu"] = server_cpu[phase]
    result["load"] = os.getloadavg()[0]
    p.join(10)
    return result


async def measure(kind: str, peers_list: list[int], seconds: float,
                  rates: dict[int, float], database: signaling_seed.Database | None,
                  visits: list[Visitor]) -> dict[int, dict[str, Any]]:
    server = Server(kind, database.serving_dsn if database else None, behind_proxy=True)
    try:
        await server.wait_ready()
        results: dict[int, dict[str, Any]] = {}
        for peers in peers_list:
            results[peers] = await asyncio.to_thread(
                run_client, kind, server, peers, seconds, rates.get(peers, 0.0),
                visits[:peers // 2] if kind == "casa" else [])
            await asyncio.sleep(1.0)
        return results
    finally:
        server.stop()


def report(round_: int, peers: int, res: dict[str, dict[str, Any]]) -> None:
    for kind in KINDS:
        r = res[kind]
        c, o = r["closed"], r["open"]
        print(f"{round_:>5} {peers:>6} {kind:>6} {c['rate']:>9.0f} {c['server_cpu']:>7.0%} "
              f"{c['client_cpu']:>7.0%} {c['rate'] / max(c['server_cpu'], 0.01):>8.0f} "
              f"{r['open_rate']:>9.0f} {o['p50_ms']:>7.2f} "
              f"{o['p99_ms']:>8.2f} {o['client_cpu']:>7.0%} {r['setup_s']:>6.1f} "
              f"{r['load']:>5.1f} {r['lost']:>4} {r['other'] or ''} {r['refused'] or ''}")
    casa = res["casa"]
    ratios = []
    for other in KINDS[1:]:
        r = res[other]
        per_cpu = [x["closed"]["rate"] / max(x["closed"]["server_cpu"], 0.01) for x in (casa, r)]
        ratios.append(f"casa/{other} {casa['closed']['rate'] / r['closed']['rate']:.2f} msg/s "
                      f"({per_cpu[0] / per_cpu[1]:.2f} per CPU-s), "
                      f"p99 x{casa['open']['p99_ms'] / r['open']['p99_ms']:.2f}")
    print(f"{round_:>5} {peers:>6}  " + ";  ".join(ratios), flush=True)


async def run(args: argparse.Namespace) -> list[dict[str, dict[int, dict[str, Any]]]]:
    raise_fd_limit()
    print(f"{'round':>5} {'peers':>6} {'server':>6} {'msgs/s':>9} {'srv cpu':>7} {'cli cpu':>7} "
          f"{'msg/cpus':>8} {'half-load':>9} {'p50 ms':>7} {'p99 ms':>8} {'cli cpu':>7} "
          f"{'set-up':>6} {'load':>5} {'lost':>4} other frames, refused pairs", flush=True)
    rounds = []
    async with signaling_seed.database() as database:
        visits: list[Visitor] = list(await database.visits(max(args.peers) // 2))
        for round_ in range(1, args.rounds + 1):
            res: dict[str, dict[int, dict[str, Any]]] = {}
            res["casa"] = await measure("casa", args.peers, args.seconds, {}, database, visits)
            half = {p: r["open_rate"] for p, r in res["casa"].items()}
            for kind in KINDS[1:]:
                res[kind] = await measure(kind, args.peers, args.seconds, half, None, [])
            for peers in args.peers:
                report(round_, peers, {k: res[k][peers] for k in KINDS})
            rounds.append(res)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--peers", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    stop_on_sigterm()
    rounds = asyncio.run(run(args))
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=1))


if __name__ == "__main__":
    main()
