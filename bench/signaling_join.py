"""Benchmark 2: (a) a patient's join to the first remote video frame, two aiortc peers on
loopback through a Casa server process (median of 20); (b) a patient's ``hello`` to the
clinician's dashboard showing them, with 1,000 other peers connected (p50/p99 of 200).

    python -m bench.signaling_join [--calls 20] [--hellos 200] [--idle 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import time
from typing import Any

import asyncpg

from bench import signaling_seed
from bench.signaling_load import (
    CLIENT_CORE,
    RawWs,
    Server,
    make_pairs,
    percentile,
    pin,
    raise_fd_limit,
    stop_on_sigterm,
)
from bench.signaling_seed import make_clinician, make_visit
from signaling.peer import CallPeer, SignalClient


async def join_to_first_frame(ws: str, session: str, room: str, token: str) -> float:
    doctor = await SignalClient.connect(ws, cookies={"casa_session": session})
    await doctor.hello(room=room)
    d_peer = CallPeer(doctor)
    d_peer.start()

    async def admit_when_waiting() -> None:
        while True:
            m = await d_peer.next_event("waiting_list", 10)
            if m["entries"]:
                await doctor.send("admit", peer=m["entries"][0]["peer_id"])
                return

    admitter = asyncio.create_task(admit_when_waiting())
    started = time.monotonic()
    patient = await SignalClient.connect(ws)
    await patient.hello(credential=token)
    p_peer = CallPeer(patient)
    p_peer.start()
    try:
        while d_peer.peer_id not in p_peer.first_frame:
            if time.monotonic() - started > 20:
                raise TimeoutError("no video")
            await asyncio.sleep(0.005)
        took = p_peer.first_frame[d_peer.peer_id] - started
        await doctor.send("end")
        return took
    finally:
        admitter.cancel()
        await p_peer.close()
        await d_peer.close()


def _idle_client(port: int, peers: int, ctl: Any, out: Any) -> None:
    pin(CLIENT_CORE)
    raise_fd_limit()

    async def hold() -> None:
        def ignore(ws: RawWs, data: bytes) -> None:
            pass

        conns = [ws for a, b, *_ in await make_pairs("casa", port, peers // 2, ignore)
                 for ws in (a, b)]
        out.put(len(conns))
        await asyncio.to_thread(ctl.get)
        for ws in conns:
            if ws.transport is not None:
                ws.transport.close()

    asyncio.run(hold())


async def hello_to_dashboard(ws: str, session: str, visits: list[tuple[str, str]],
                             n: int) -> list[float]:
    dash = await SignalClient.connect(ws, cookies={"casa_session": session})
    await dash.hello()
    await dash.expect("waiting_list", 5)
    out: list[float] = []
    patients_ = [await SignalClient.connect(ws) for _ in visits]
    try:
        for i in range(n):
            k = i % len(visits)
            patient = patients_[k]
            if patient.ws.closed:
                patient = patients_[k] = await SignalClient.connect(ws)
            started = time.perf_counter()
            await patient.send("hello", version=1, credential=visits[k][1])
            while True:
                m = await dash.expect("waiting_list", 5)
                if any(e["room"] == visits[k][0] and e["state"] == "waiting"
                       for e in m["entries"]):
                    break
            out.append((time.perf_counter() - started) * 1000)
            await patient.expect("welcome", 5)
            await patient.send("leave")
            while True:   # the dashboard sees them go before the next round
                m = await dash.expect("waiting_list", 5)
                if not any(e["room"] == visits[k][0] and e["state"] == "waiting"
                           for e in m["entries"]):
                    break
            patients_[k] = await SignalClient.connect(ws)
            await patient.close()
    finally:
        for p in patients_:
            await p.close()
        await dash.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--hellos", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    args = parser.parse_args()
    stop_on_sigterm()
    raise_fd_limit()
    async with signaling_seed.database() as database:
        conn = await asyncpg.connect(database.dsn)
        gp_id, session = await make_clinician(conn, 0, database.password_hash)
        calls = [await make_visit(conn, gp_id, i) for i in range(args.calls)]
        dash_visits = [await make_visit(conn, gp_id, 100 + i) for i in range(5)]
        await conn.close()
        server = Server("casa", database.serving_dsn, behind_proxy=True)
        try:
            await server.wait_ready()
            ws = f"ws://127.0.0.1:{server.port}/ws"
            joins = [await join_to_first_frame(ws, session, room, token)
                     for room, token in calls]
            ctx = mp.get_context("spawn")
            ctl, out = ctx.Queue(), ctx.Queue()
            p = ctx.Process(target=_idle_client, args=(server.port, args.idle, ctl, out))
            p.start()
            idle = await asyncio.to_thread(out.get, True, 300)
            lat = await hello_to_dashboard(ws, session, dash_visits, args.hellos)
            ctl.put("done")
            await asyncio.to_thread(p.join, 30)
        finally:
            server.stop()
    print(f"join -> first remote video frame ({len(joins)} calls): median "
          f"{statistics.median(joins) * 1000:.0f} ms, max {max(joins) * 1000:.0f} ms")
    print(f"patient hello -> dashboard ({len(lat)} samples, {idle} idle peers connected): "
          f"p50 {percentile(lat, 50):.1f} ms, p99 {percentile(lat, 99):.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
