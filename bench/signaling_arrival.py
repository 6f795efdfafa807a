"""Benchmark 5: simultaneous arrivals. 2,500 consultations (each its own patient and clinician)
whose patient and clinician all open their sockets at the same moment on one Casa instance,
each saying ``hello`` as soon as its socket is open (``--together S``: once the other's is
open too, waiting at most S seconds, which under a storm can cost the first its server's 2 s
hello timeout); each clinician admits their patient as soon as a ``waiting_list`` shows them
waiting (and again, as a person would click again, if a list a second or more later still
does). Reports the time until every pair is in the call (patient ``admitted``, clinician
``peer_joined``), hello -> ``welcome`` and admit -> ``admitted`` percentiles, every error
frame by code and every close without one. Gives up after 120 s and reports what completed.

Casa runs on core 0 (behind a trusted proxy address, so every socket has its own client
address as behind a load balancer), the clients on core 1, PostgreSQL (embedded) unpinned.

    python -m bench.signaling_arrival [--pairs 2500] [--within 120] [--together 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import signaling_seed
from bench.signaling_load import (
    CLIENT_CORE,
    RawWs,
    Server,
    Visitor,
    admit,
    client_address,
    clinician_headers,
    clinician_hello,
    error_code,
    patient_hello,
    percentile,
    pin,
    raise_fd_limit,
    stop_on_sigterm,
)

# A clinician still seeing their patient waiting this long after admitting clicks again.
READMIT_AFTER_S = 1.0


class Arrival:
    """One consultation's two sockets and what happened to them."""

    def __init__(self, visit: Visitor, log: Counter[str]) -> None:
        self.visit = visit
        self.log = log   # shared: error codes, closes, re-admits
        self.hello_sent: dict[str, float] = {}
        self.welcome_ms: dict[str, float] = {}
        self.admit_sent: float | None = None
        self.last_admit = 0.0
        self.admitted_ms: float | None = None
        self.patient_in = False
        self.clinician_sees = False
        self.done_at: float | None = None
        self.sockets: dict[str, RawWs] = {}

    def on_text(self, role: str, ws: RawWs, data: bytes) -> None:
        now = time.perf_counter()
        m = json.loads(data)
        kind = m.get("type")
        code = error_code(m)
        if code is not None:
            self.log[f"{role}: error {code}"] += 1
        elif kind == "welcome":
            self.welcome_ms[role] = (now - self.hello_sent[role]) * 1000
            if role == "patient" and m.get("state") == "in_call":
                self.patient_in = True
        elif kind == "admitted":
            self.patient_in = True
            if self.admit_sent is not None and self.admitted_ms is None:
                self.admitted_ms = (now - self.admit_sent) * 1000
        elif kind == "peer_joined" and role == "clinician":
            self.clinician_sees = True
        elif kind == "waiting_list" and role == "clinician":
            self._maybe_admit(ws, m, now)
        if self.done_at is None and self.patient_in and self.clinician_sees:
            self.done_at = now

    def _maybe_admit(self, ws: RawWs, m: dict[str, Any], now: float) -> None:
        waiting = [e["peer_id"] for e in m.get("entries", []) if e.get("state") == "waiting"]
        if not waiting or self.patient_in:
            return
        if self.admit_sent is None:
            self.admit_sent = now
        elif now - self.last_admit < READMIT_AFTER_S:
            return
        else:
            self.log["clinician: admit sent again"] += 1
        self.last_admit = now
        ws.send(admit(waiting[0]))

    async def run(self, port: int, together: float) -> None:
        """Open both sockets at once; each says hello as soon as it is open or, with
        ``together``, once both are (waiting at most that long for the other)."""
        loop = asyncio.get_running_loop()
        opened = {"patient": loop.create_future(), "clinician": loop.create_future()}

        async def arrive(role: str, headers: str, hello: bytes, other: str) -> None:
            try:
                _t, ws = await loop.create_connection(
                    lambda: RawWs("/ws", lambda w, d: self.on_text(role, w, d), headers),
                    "127.0.0.1", port)
                self.sockets[role] = ws
                if not await ws.open:
                    raise ConnectionError("upgrade refused")
            except (ConnectionError, OSError) as exc:
                self.log[f"{role}: not connected ({exc})"] += 1
                opened[role].set_result(None)
                return
            opened[role].set_result(None)
            if together:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(opened[other]), together)
            self.hello_sent[role] = time.perf_counter()
            ws.send(hello)

        await asyncio.gather(
            arrive("patient", client_address(), patient_hello(self.visit), "clinician"),
            arrive("clinician", clinician_headers(self.visit), clinician_hello(self.visit),
                   "patient"))


async def _arrive(port: int, visits: list[Visitor], within: float, together: float,
                  window: Any) -> dict[str, Any]:
    log: Counter[str] = Counter()
    arrivals = [Arrival(v, log) for v in visits]
    window.put("start")
    t0 = time.perf_counter()
    cpu0 = sum(os.times()[:2])
    runs = [asyncio.create_task(a.run(port, together)) for a in arrivals]
    while time.perf_counter() - t0 < within:
        if all(a.done_at is not None for a in arrivals):
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - t0
    client_cpu = (sum(os.times()[:2]) - cpu0) / elapsed
    window.put("end")
    for task in runs:
        task.cancel()
    for a in arrivals:
        for role, ws in a.sockets.items():
            if ws.closed and ws.close_code is not None:
                log[f"{role}: closed {ws.close_code}"] += 1
            elif ws.closed and ws.handshaken:
                log[f"{role}: connection lost without close frame"] += 1
            if ws.transport is not None:
                ws.transport.close()
    done = sorted(a.done_at - t0 for a in arrivals if a.done_at is not None)
    welcome = {role: [a.welcome_ms[role] for a in arrivals if role in a.welcome_ms]
               for role in ("patient", "clinician")}
    admitted = [a.admitted_ms for a in arrivals if a.admitted_ms is not None]
    return {"pairs": len(arrivals), "in_call": len(done), "elapsed_s": elapsed,
            "last_in_call_s": done[-1] if done else float("nan"),
            "half_in_call_s": done[len(done) // 2] if done else float("nan"),
            "welcome": {r: (len(v), percentile(v, 50), percentile(v, 99), max(v, default=0))
                        for r, v in welcome.items()},
            "admitted": (len(admitted), percentile(admitted, 50), percentile(admitted, 99),
                         max(admitted, default=0)),
            "log": dict(log), "client_cpu": client_cpu}


def _client(port: int, visits: list[Visitor], within: float, together: float, out: Any
            ) -> None:
    pin(CLIENT_CORE)
    raise_fd_limit()
    try:
        out.put(asyncio.run(_arrive(port, visits, within, together, out)))
    except Exception as exc:
        out.put(f"failed: {exc!r}")
        raise


def _measure(server: Server, visits: list[Visitor], within: float, together: float
             ) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_client, args=(server.port, visits, within, together, q))
    p.start()
    got = q.get(timeout=120)
    if got != "start":
        raise RuntimeError(f"load generator: {got}")
    cpu0, t0 = server.cpu_seconds(), time.perf_counter()
    load0 = os.getloadavg()[0]
    got = q.get(timeout=within + 60)
    if got != "end":
        raise RuntimeError(f"load generator: {got}")
    server_cpu = (server.cpu_seconds() - cpu0) / (time.perf_counter() - t0)
    result: dict[str, Any] = q.get(timeout=120)
    p.join(30)
    result.update(server_cpu=server_cpu, load=(load0, os.getloadavg()[0]),
                  guest_like_tokens=sum(v.patient_token.startswith("g_") for v in visits))
    return result


async def run(pairs: int, within: float, together: float) -> tuple[dict[str, Any], str]:
    raise_fd_limit()
    async with signaling_seed.database() as database:
        visits: list[Visitor] = list(await database.visits(pairs))
        with tempfile.NamedTemporaryFile("w+", prefix="casa-bench-log-") as log:
            server = Server("casa", database.serving_dsn, behind_proxy=True, log=Path(log.name))
            try:
                await server.wait_ready()
                result = await asyncio.to_thread(_measure, server, visits, within, together)
            finally:
                server.stop()
            text = log.read()
    return result, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2500)
    parser.add_argument("--within", type=float, default=120.0)
    parser.add_argument("--together", type=float, default=0.0,
                        help="each waits up to this many seconds for the other's socket to be "
                             "open before saying hello (default: hello as soon as open)")
    args = parser.parse_args()
    stop_on_sigterm()
    r, server_log = asyncio.run(run(args.pairs, args.within, args.together))
    print(f"{r['pairs']} consultations, patient and clinician hello together: "
          f"{r['in_call']} pairs in the call; all within {r['last_in_call_s']:.2f} s"
          if r["in_call"] == r["pairs"] else
          f"{r['pairs']} consultations: only {r['in_call']} pairs in the call after "
          f"{r['elapsed_s']:.1f} s (the last of them at {r['last_in_call_s']:.2f} s)")
    print(f"half of the pairs in the call at {r['half_in_call_s']:.2f} s; "
          f"{r['in_call'] / max(r['last_in_call_s'], 1e-9):.0f} pairs/s")
    for role, (n, p50, p99, top) in r["welcome"].items():
        print(f"{role} hello -> welcome ({n}): p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
              f"max {top:.0f} ms")
    n, p50, p99, top = r["admitted"]
    print(f"admit -> admitted ({n}): p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {top:.0f} ms")
    print("errors and closes: " + (", ".join(f"{k} x{v}" for k, v in sorted(r["log"].items()))
                                   or "none"))
    deadlocks = server_log.count("DeadlockDetected")
    lines = sum(1 for line in server_log.splitlines() if line.strip())
    print(f"server log (errors only): {lines} lines, {deadlocks} mention a deadlock")
    print(f"invitation tokens beginning with the guest prefix 'g_': {r['guest_like_tokens']}")
    print(f"server CPU {r['server_cpu']:.0%} of a core, client CPU {r['client_cpu']:.0%}; "
          f"load average {r['load'][0]:.1f} -> {r['load'][1]:.1f}")


if __name__ == "__main__":
    main()
