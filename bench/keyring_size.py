"""Keyring size and cost for two ways of keying erasure, at a given number of notes.

- per note: one sealed key per note in the keyring (erase any single note exactly);
- patient + day (Casa's): one key per patient and one per UTC day, every data key wrapped
  under a key derived from the two.

For each: entries, file size, time to write it (temp file, fsync, rename, scrub of the old
file) and to read it back (what every instance does after each change), and how often it
changes (per note written, or per new patient and per day).

    python -m bench.keyring_size [--notes 100000] [--patients 20000] [--years 10]

Bounded: builds the keyrings in a temporary directory and stops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from records import keyring
from records.keyring import Keyring

ROUNDS = 5  # each timing is the median of this many


def _ring(path: Path, entries: list[str]) -> Keyring:
    ring = keyring.generate(path)
    for entry_id in entries:
        ring.add_sealed(entry_id, os.urandom(32))
    return ring


def _measure(label: str, path: Path, entries: list[str], changes: str) -> None:
    ring = _ring(path, entries)
    writes, reads = [], []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        keyring.save(ring, path)
        writes.append(time.perf_counter() - t)
        t = time.perf_counter()
        keyring.load(path)
        reads.append(time.perf_counter() - t)
    size = path.stat().st_size
    print(f"{label}: {len(entries)} entries, {size / 1e6:.1f} MB, "
          f"write {statistics.median(writes) * 1000:.0f} ms, "
          f"read {statistics.median(reads) * 1000:.0f} ms; rewritten {changes}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--years", type=int, default=10)
    args = parser.parse_args()
    days = round(args.years * 365.25)
    with tempfile.TemporaryDirectory(prefix="casa-bench-keyring-") as tmp:
        per_note = [f"p{n}-{os.urandom(6).hex()}" for n in range(args.notes)]
        _measure(f"per note ({args.notes} notes)", Path(tmp) / "per-note.json", per_note,
                 "for every note written")
        pairs = [f"p{n}-{os.urandom(6).hex()}" for n in range(args.patients)]
        pairs += [f"d{20160101 + n:08d}-{os.urandom(6).hex()}" for n in range(days)]
        _measure(f"patient + day ({args.patients} patients, {days} days)",
                 Path(tmp) / "pairs.json", pairs, "for a new patient's first note, once a day")


if __name__ == "__main__":
    main()
