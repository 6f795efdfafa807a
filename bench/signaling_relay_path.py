"""Benchmark 1c: the relay hot path in process, without sockets: CPU time per relayed frame
(validation, membership checks, ``from`` stamped, queued for the target's socket, and the
socket's writer task handing it to a WebSocket that here does nothing). The socket
benchmarks (bench.signaling_relay) need a quiet machine; this one measures only this
process's CPU time (``time.process_time``), so a busy machine disturbs it much less.

    python -m bench.signaling_relay_path [--frames 200000] [--rounds 7] [--pairs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime

from aiohttp import WSMsgType
from prometheus_client import CollectorRegistry

from signaling import wire
from signaling.bus import Outbox
from signaling.conn import Conn
from signaling.handlers import relay
from signaling.hub import Hub
from signaling.metrics import SignalMetrics
from signaling.presence import Member
from signaling.rooms import Room, Socket
from signaling.states import Kind, Place, Role

# Frames relayed between two yields to the event loop (the writer tasks run then), as a
# socket's reader would hand over a read buffer's worth of frames.
BATCH = 8


class NullWs:
    """Stands in for the WebSocket: accepts a frame and does nothing."""

    closed = False

    async def send_frame(self, _data: bytes, _opcode: WSMsgType) -> None:
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


async def run_once(n: int, pairs: int) -> float:
    hub = Hub(SignalMetrics(CollectorRegistry()), Outbox())
    now = datetime.now(UTC)
    senders = []
    for k in range(pairs):
        room = Room(f"probe-bench-{k}", None)
        hub.rooms[room.key] = room
        conns: list[Socket] = []
        for side in ("a", "b"):
            pid = f"p_{side}{k:015d}"
            conn: Socket = Conn(NullWs())  # type: ignore[arg-type]
            conn.peer_id, conn.room, conn.kind = pid, room, Kind.PROBE
            room.local[pid] = conn
            room.members[pid] = Member(pid, "probe", Role.CLINICIAN, Place.IN_CALL,
                                       hub.instance_id, now, {}, 1)
            hub.conns.add(conn)
            conns.append(conn)
        senders.append((conns[0], frames(conns[1].peer_id)))
    work = []
    for i in range(n):
        sender, burst = senders[(i // 8) % pairs]
        work.append((sender, burst[i % len(burst)]))
    started = time.process_time()
    for i, (sender, text) in enumerate(work):   # ws._loop for an accepted relay frame
        msg = wire.parse(text)
        relay(hub, sender, msg, text)  # type: ignore[arg-type]
        if i % BATCH == BATCH - 1:
            await asyncio.sleep(0)
    await asyncio.sleep(0)
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
