"""Benchmark 1c: the relay hot path in process, without sockets: CPU time per relayed frame
(validation, membership checks, ``from`` stamped, handed to the socket's
``send_str``, here a no-op). The socket benchmarks (bench.signaling_relay) need a quiet
machine; this one measures only this process's CPU time (``time.process_time``), so a busy
machine disturbs it much less. It runs against whichever checkout it is started from (module
layouts before and after the split of ws.py/messages.py/rooms.py, and before and after the
msgspec wire types), for before/after runs.

    python -m bench.signaling_relay_path [--frames 200000] [--rounds 7] [--pairs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from signaling import wire

try:   # after the split of ws.py/messages.py/rooms.py
    from signaling.conn import Conn
    from signaling.handlers import relay
    from signaling.hub import Hub
    from signaling.rooms import Room
except ImportError:   # before it
    from signaling.rooms import Conn, Hub, Room  # type: ignore[attr-defined,no-redef]
    from signaling.ws import relay  # type: ignore[attr-defined]
from signaling.metrics import SignalMetrics
from signaling.presence import Member


class NullWs:
    """Stands in for the WebSocket: accepts a frame and does nothing."""

    closed = False

    async def send_str(self, _text: str) -> None:
        return None


def frames(to: str) -> list[str]:
    offer = json.dumps({"type": "offer", "to": to, "id": "o1",
                        "sdp": "v=0\r\n" + "a=x:" + "y" * 3000 + "\r\n"})
    cand = json.dumps({"type": "candidate", "to": to, "candidate": {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host generation 0",
        "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}})
    answer = json.dumps({"type": "answer", "to": to, "id": "o1",
                         "sdp": "v=0\r\n" + "a=x:" + "z" * 3000 + "\r\n"})
    return [offer, *([cand] * 6), answer]


def _target() -> Callable[[str], tuple[str, str]]:
    """The validation ``ws._loop`` applies to a relayed frame: one msgspec decode, or (in
    checkouts before it) the JSON decode and the dict fast path."""
    old = vars(wire)
    if "relay_target" in old:
        decode, relay_target = old["decode"], old["relay_target"]
        return lambda text: ((obj := decode(text))["type"], relay_target(obj))

    def parsed(text: str) -> tuple[str, str]:
        msg = wire.parse(text)
        return msg.TYPE, msg.to  # type: ignore[union-attr]
    return parsed


async def run_once(n: int, pairs: int) -> float:
    hub = Hub(SignalMetrics(CollectorRegistry()))
    now = datetime.now(UTC)
    senders = []
    for k in range(pairs):
        room = Room(f"probe-bench-{k}", None)
        hub.rooms[room.key] = room
        conns = []
        for side in ("a", "b"):
            pid = f"p_{side}{k:015d}"
            conn = Conn(NullWs())  # type: ignore[arg-type]
            conn.peer_id, conn.room, conn.kind = pid, room, "probe"
            room.local[pid] = conn
            room.members[pid] = Member(pid, "probe", "clinician", "in_call", hub.instance_id,
                                       now, {})
            hub.conns.add(conn)
            conns.append(conn)
        senders.append((conns[0], frames(conns[1].peer_id)))
    work = []
    for i in range(n):
        sender, burst = senders[(i // 8) % pairs]
        work.append((sender, burst[i % len(burst)]))
    target = _target()
    started = time.process_time()
    for sender, text in work:   # the loop of ws._loop for an accepted relay frame
        kind, to = target(text)
        await relay(hub, sender, kind, to, text)
    return (time.process_time() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pairs", type=int, default=1, help="rooms of two peers (bursts "
                        "rotate through them)")
    args = parser.parse_args()
    results = [asyncio.run(run_once(args.frames, args.pairs)) for _ in range(args.rounds)]
    print(f"relay path: {statistics.median(results):.2f} µs CPU per frame (median of "
          f"{args.rounds}), min {min(results):.2f}, max {max(results):.2f}; "
          f"{args.frames} frames per round (1 offer, 6 candidates, 1 answer), {args.pairs} "
          f"room(s) of two")


if __name__ == "__main__":
    main()
