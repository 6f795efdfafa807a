"""Benchmark: Casa as docker-compose.yml runs it (tests/topology.py: Debian's PostgreSQL, two
``casa serve`` as the serving role, nginx terminating TLS with round robin, coturn), driven
through the proxy only, over wss://.

1. Arrivals: ``--pairs`` consultations arrive at once (patient's hello with the invitation
   token, the clinician's hello with the session cookie, the clinician's admit as soon as the
   patient waits). Arrivals per second (pairs in the call / time until the last), hello ->
   ``welcome`` p50 / p99 over every socket.
2. Relay: every pair in the call keeps one candidate in flight each way for ``--seconds``;
   relayed messages per second (received, both directions), and how many crossed instances.
3. Kills: ``--kills`` times, one pair in the call, the instance holding the patient's socket
   SIGKILLed; both clients reconnect at once (the browser's first retry is sooner than the
   engine's take-over, so the client's own back-off is not measured) and say hello again;
   time from the kill until every dropped socket has its ``welcome`` back in the call
   (median, max). The killed instance is started again between kills.

The clients are aiohttp, in this one process: the rates are the client's as much as the
server's; docs/benchmarks/production.md says so beside them.

    python -m bench.production [--pairs 100] [--seconds 5] [--kills 10] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import ssl
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import signaling_seed
from bench.signaling_load import percentile
from server.auth import passwords
from tests import topology
from tests.topology import Topology

SECRET_KEY = "production-bench-secret-" + "b" * 40
# Every wait is bounded: a step that does not finish in this is reported as such.
STEP_S = 60.0
# A socket dropped by a kill must be back within this, or the kill counts as not resumed.
RESUME_LIMIT_S = 30.0


def tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the topology's self-signed certificate
    return ctx


@dataclass
class Side:
    """One socket of a consultation: the patient's or the clinician's."""

    role: str
    hello: dict[str, Any]
    headers: dict[str, str]
    ws: aiohttp.ClientWebSocketResponse | None = None
    peer_id: str = ""
    welcomes: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    hello_ms: list[float] = field(default_factory=list)
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


async def open_side(session: aiohttp.ClientSession, topo: Topology, side: Side) -> None:
    """Connect through the proxy and say hello; returns once ``welcome`` came."""
    side.ws = await session.ws_connect(topo.origin.replace("https", "wss") + "/ws",
                                       ssl=tls(), headers=side.headers, heartbeat=None)
    sent = time.perf_counter()
    await side.ws.send_str(json.dumps(side.hello))
    while True:
        m = await side.ws.receive(timeout=STEP_S)
        if m.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"{side.role}: {m.type.name} before welcome")
        msg = json.loads(m.data)
        if msg["type"] == "welcome":
            side.hello_ms.append((time.perf_counter() - sent) * 1000)
            side.peer_id = msg["peer_id"]
            side.welcomes.append((time.monotonic(), msg))
            return
        if msg["type"] == "error":
            raise ConnectionError(f"{side.role}: {msg.get('code')}")


async def pump(side: Side) -> None:
    """Everything the socket receives after its welcome, into its inbox, until it closes."""
    assert side.ws is not None
    async for m in side.ws:
        if m.type == aiohttp.WSMsgType.TEXT:
            await side.inbox.put(json.loads(m.data))


async def wait_for(side: Side, kinds: set[str], check: Any = None) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(side.inbox.get(), STEP_S)
        if msg["type"] in kinds and (check is None or check(msg)):
            return msg


@dataclass
class Pair:
    patient: Side
    clinician: Side
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def client_session(n: int) -> aiohttp.ClientSession:
    """A client of its own address (127.0.x.y, all loopback): nginx passes it on as
    X-Forwarded-For, so each consultation counts against its own per-address limits, as
    patients at home do. One address for all would be refused (429) after a few dozen."""
    address = f"127.0.{1 + n // 250}.{1 + n % 250}"
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0),
                                                                limit=0))


async def arrive(session: aiohttp.ClientSession, topo: Topology, visit: signaling_seed.Visit
                 ) -> Pair:
    origin = {"Origin": topo.origin}
    pair = Pair(Side("patient", {"type": "hello", "version": 1, "credential": visit.patient_token},
                     origin),
                Side("clinician", {"type": "hello", "version": 1, "room": visit.room},
                     {**origin, "Cookie": f"casa_session={visit.clinician_session}"}))
    await asyncio.gather(open_side(session, topo, pair.patient),
                         open_side(session, topo, pair.clinician))
    pair.tasks = [asyncio.create_task(pump(pair.patient)),
                  asyncio.create_task(pump(pair.clinician))]
    assert pair.clinician.ws is not None
    if pair.patient.welcomes[-1][1]["state"] != "in_call":
        # As a clinician would: admit once her list shows the patient waiting (the patient's
        # socket may be on the other instance, whose news comes over the bus).
        await wait_for(pair.clinician, {"waiting_list"}, lambda m: any(
            e.get("peer_id") == pair.patient.peer_id and e.get("state") == "waiting"
            for e in m.get("entries", [])))
        await pair.clinician.ws.send_str(json.dumps({"type": "admit",
                                                     "peer": pair.patient.peer_id}))
        await wait_for(pair.patient, {"admitted"})
    return pair


async def arrivals(sessions: list[aiohttp.ClientSession], topo: Topology,
                   visits: list[signaling_seed.Visit]) -> tuple[list[Pair], dict[str, Any]]:
    started = time.perf_counter()
    done = await asyncio.gather(*(arrive(s, topo, v) for s, v in zip(sessions, visits,
                                                                     strict=True)),
                                return_exceptions=True)
    elapsed = time.perf_counter() - started
    pairs = [p for p in done if isinstance(p, Pair)]
    errors = [f"{type(e).__name__} {getattr(e, 'status', '')}".strip()
              for e in done if not isinstance(e, Pair)]
    hello = [ms for p in pairs for s in (p.patient, p.clinician) for ms in s.hello_ms]
    return pairs, {"pairs": len(visits), "in_call": len(pairs), "seconds": round(elapsed, 2),
                   "arrivals_per_s": round(len(pairs) / elapsed, 1),
                   "hello_welcome_p50_ms": round(percentile(hello, 50), 1),
                   "hello_welcome_p99_ms": round(percentile(hello, 99), 1),
                   "errors": dict(Counter(errors))}


async def relay(pairs: list[Pair], seconds: float) -> dict[str, Any]:
    """Each side sends a candidate to the other and sends the next when one arrives."""
    received = 0
    stop_at = time.monotonic() + seconds
    candidate = {"candidate": "candidate:1 1 udp 1677729535 203.0.113.7 46154 typ srflx",
                 "sdpMid": "0", "sdpMLineIndex": 0}

    async def loop(me: Side, other: Side) -> None:
        nonlocal received
        assert me.ws is not None
        text = json.dumps({"type": "candidate", "to": other.peer_id, "candidate": candidate})
        await me.ws.send_str(text)
        while time.monotonic() < stop_at:
            try:
                await wait_for(me, {"candidate"})
            except TimeoutError:
                return
            received += 1
            await me.ws.send_str(text)

    started = time.perf_counter()
    await asyncio.gather(*(loop(a, b) for p in pairs
                           for a, b in ((p.patient, p.clinician), (p.clinician, p.patient))))
    elapsed = time.perf_counter() - started
    return {"pairs": len(pairs), "seconds": round(elapsed, 2),
            "relayed_per_s": round(received / elapsed)}


async def socket_instance(topo: Topology, room: str, role: str) -> str | None:
    conn = await asyncpg.connect(topo.serving_url)
    try:
        found = await conn.fetchval(
            "SELECT p.instance_id FROM signaling_participants p JOIN consultations c "
            "ON c.id = p.consultation_id WHERE c.room_id = $1 AND p.role = $2 "
            "AND p.status <> 'left'", room, role)
        return str(found) if found else None
    finally:
        await conn.close()


REFUSALS: Counter[str] = Counter()


async def back_in(session: aiohttp.ClientSession, topo: Topology, side: Side,
                  killed_at: float) -> float:
    """Reconnect at once, and again on every refusal, until a welcome in the call."""
    deadline = killed_at + RESUME_LIMIT_S
    while time.monotonic() < deadline:
        try:
            await open_side(session, topo, side)
            if side.welcomes[-1][1]["state"] == "in_call":
                return side.welcomes[-1][0] - killed_at
            return float("nan")  # back, but not in the call: a new admit would be needed
        except (ConnectionError, aiohttp.ClientError, TimeoutError) as exc:
            REFUSALS[f"{side.role}: {exc}"[:80]] += 1
            await asyncio.sleep(0.05)
    return float("inf")


async def kills(session: aiohttp.ClientSession, topo: Topology, visit: signaling_seed.Visit,
                count: int) -> dict[str, Any]:
    pair = await arrive(session, topo, visit)
    times: list[float] = []
    for _ in range(count):
        by_id = {c.instance_id(): c for c in topo.instances}
        room = visit.room
        instance = await socket_instance(topo, room, "patient")
        victim = by_id[instance]
        dropped = [s for s in (pair.patient, pair.clinician)
                   if await socket_instance(topo, room, s.role) == instance]
        for t in pair.tasks:
            t.cancel()
        killed_at = time.monotonic()
        await asyncio.to_thread(topo.kill, victim)
        results = await asyncio.gather(*(back_in(session, topo, s, killed_at) for s in dropped))
        times.append(max(results))
        print(f"kill: back in {times[-1]:.2f} s", file=sys.stderr, flush=True)
        pair.tasks = [asyncio.create_task(pump(s)) for s in (pair.patient, pair.clinician)]
        await asyncio.to_thread(topo.restart, victim)
    finite = [t for t in times if t == t and t != float("inf")]
    return {"kills": count, "resumed": len(finite),
            "median_s": round(statistics.median(finite), 2) if finite else None,
            "max_s": round(max(finite), 2) if finite else None,
            "all_s": [round(t, 2) for t in times], "refusals": dict(REFUSALS),
            "proxy_errors": proxy_errors(topo)}


def proxy_errors(topo: Topology) -> dict[str, int]:
    """nginx's error log, by what went wrong (the instance's address and times left out)."""
    found: Counter[str] = Counter()
    log = topo.work / "nginx" / "logs" / "error.log"
    for line in log.read_text(errors="replace").splitlines():
        what = line.split("] ", 1)[-1].split(", client:")[0]
        found[re.sub(r"^\d+#\d+: \*\d+ ", "", what)[:90]] += 1
    return dict(found)


async def seed(topo: Topology, count: int) -> list[signaling_seed.Visit]:
    conn = await asyncpg.connect(topo.serving_url)
    hashed = passwords.hash_password("x" * 16)
    out = []
    try:
        for n in range(count):
            async with conn.transaction():
                staff_id, session = await signaling_seed.make_clinician(conn, n, hashed)
                room, token = await signaling_seed.make_visit(conn, staff_id, n, None)
            out.append(signaling_seed.Visit(room, token, session))
    finally:
        await conn.close()
    return out


async def run(args: argparse.Namespace, topo: Topology) -> dict[str, Any]:
    visits = await seed(topo, args.pairs + 1)
    out: dict[str, Any] = {}
    sessions = [client_session(n) for n in range(len(visits))]
    session = sessions[-1]
    try:
        pairs, out["arrivals"] = await arrivals(sessions[:-1], topo, visits[:-1])
        print(json.dumps(out["arrivals"]), file=sys.stderr, flush=True)
        out["relay"] = await relay(pairs, args.seconds)
        print(json.dumps(out["relay"]), file=sys.stderr, flush=True)
        for p in pairs:
            for s in (p.patient, p.clinician):
                if s.ws is not None:
                    await s.ws.close()
            for t in p.tasks:
                t.cancel()
        out["kills"] = await kills(session, topo, visits[-1], args.kills)
    finally:
        for client in sessions:
            await client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.monotonic()
    topo = topology.start(SECRET_KEY)
    try:
        out = asyncio.run(run(args, topo))
    finally:
        topo.close()
    out["total_s"] = round(time.monotonic() - started, 1)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
