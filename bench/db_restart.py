"""How long Casa is without its embedded PostgreSQL after the postmaster is killed.

Starts ``casa serve`` on a fresh embedded server, then ROUNDS times: kill -9 the postmaster and
poll /healthz every 50 ms until it answers 200 from a new postmaster. Prints each round and the
median and worst. Bounded: each round gives up after 40 s.

    PYTHONPATH=$PWD python -m bench.db_restart --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import aiohttp

from tests.casa_process import CasaProcess, stop_postgres
from tests.test_embedded import kill_postgres_and_wait

# Let the pool settle between rounds, as a real outage comes after normal use.
PAUSE_BETWEEN_ROUNDS_S = 1.0


async def main(rounds: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="casa-bench-restart-"))
    os.chmod(data_dir, 0o755)  # noqa: S103 - embedded PostgreSQL runs as its own user
    casa = CasaProcess(data_dir)
    try:
        await asyncio.to_thread(casa.start)
        times = []
        async with aiohttp.ClientSession() as session:
            for n in range(1, rounds + 1):
                await asyncio.sleep(PAUSE_BETWEEN_ROUNDS_S)
                back, seen = await kill_postgres_and_wait(casa, session)
                times.append(back)
                print(f"round {n}: back after {back:.2f} s ({len(seen)} health checks said "
                      f"{sorted(set(s for s in seen))})")
        print(f"median {statistics.median(times):.2f} s, worst {max(times):.2f} s "
              f"over {rounds} kills")
        casa.stop()
    finally:
        casa.kill()
        stop_postgres(data_dir / "pgdata")
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
