"""Validation of one client frame, in process: µs per frame to turn the text of an offer
(3 KiB of SDP), a candidate and a chat into a validated message, as ``ws._loop`` does.

It measures whichever checkout is first on the path, so one run per checkout gives a
before/after pair in the same minutes:

    PYTHONPATH=/path/to/before python bench/signaling_parse.py
    PYTHONPATH=$PWD python bench/signaling_parse.py [--frames 100000] [--rounds 5]

Before msgspec, offers and candidates went through ``wire.decode`` and the fast path
``wire.relay_target`` (no message object) and a chat through ``wire.parse``; after it, every
frame goes through ``wire.parse``. Bounded: frames x rounds x 3 decodes, a few seconds."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from signaling import wire

TO = "p_" + "b" * 20
FRAMES = {
    "offer": json.dumps({"type": "offer", "to": TO, "id": "o1",
                         "sdp": "v=0\r\n" + "a=x:" + "y" * 3000 + "\r\n"}),
    "candidate": json.dumps({"type": "candidate", "to": TO, "candidate": {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host generation 0",
        "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}}),
    "chat": json.dumps({"type": "chat", "id": "c1",
                        "text": "Buongiorno dottore, la sento bene. Ha ricevuto le analisi?"}),
}


def validator(kind: str) -> tuple[str, Callable[[str], object]]:
    """The path ``ws._loop`` takes for a frame of ``kind`` in this checkout."""
    old = vars(wire)
    if "relay_target" in old and kind != "chat":
        decode, relay_target = old["decode"], old["relay_target"]

        def fast(text: str) -> object:
            target = relay_target(decode(text))
            assert target is not None
            return target
        return "decode+relay_target", fast
    return "parse", wire.parse


def per_frame(check: Callable[[str], object], text: str, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        check(text)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    path = "msgspec" if "relay_target" not in vars(wire) else "json + hand-written checks"
    print(f"{wire.__file__} ({path}); median of {args.rounds} rounds of {args.frames} frames")
    for kind, text in FRAMES.items():
        name, check = validator(kind)
        check(text)   # and fail loudly if this checkout refuses it
        times = [per_frame(check, text, args.frames) for _ in range(args.rounds)]
        print(f"{kind:>10} ({len(text):>5} chars) {name:>20}: {statistics.median(times):6.2f} "
              f"µs per frame (min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
