"""How long a page of a large record takes, and the whole record's export, through the records
layer (access checks, decryption, audit), with the patient's notes loaded by COPY.

    python -m bench.records_record_page [--notes 5000] [--rounds 5]

Uses DATABASE_URL (a server where it may create a scratch database) or an embedded
PostgreSQL in a temporary directory. Prints one line per number.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bench.records_bench import bulk_notes, setup_people
from bench.scratch import scratch_pool
from records import keyring
from records.crypto import Envelope
from records.service import RECORD_PAGE, Records

# The cursor of a page in the middle of the record (what its "older notes" links lead to).
MIDDLE = ("SELECT id FROM notes WHERE patient_id = $1 ORDER BY created_at DESC, id DESC"
          " OFFSET $2 LIMIT 1")


async def main(args: argparse.Namespace) -> None:
    async with scratch_pool("page") as (pool, tmp_dir):
        ring = keyring.load_or_create(tmp_dir / "keyring.json")
        rec = Records(Envelope(ring))
        gp, patient, booking = await setup_people(pool)
        load_s = await bulk_notes(pool, ring, gp.id, patient, booking, args.notes)
        print(f"{args.notes} notes loaded (seal + COPY) in {load_s:.1f} s")
        first: list[float] = []
        deep: list[float] = []
        export: list[float] = []
        for _ in range(args.rounds):
            async with pool.acquire() as conn, conn.transaction():
                t0 = time.perf_counter()
                await rec.record_page(conn, gp, patient)
                first.append(time.perf_counter() - t0)
                middle = await conn.fetchval(MIDDLE, patient, args.notes // 2)
                t0 = time.perf_counter()
                await rec.record_page(conn, gp, patient, before=middle)
                deep.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                views = await rec.export(conn, gp, patient, "fhir")
                export.append(time.perf_counter() - t0)
                assert len(views) == args.notes
        print(f"record page of {RECORD_PAGE} notes, newest: median "
              f"{statistics.median(first) * 1000:.0f} ms; from the middle of the record: "
              f"{statistics.median(deep) * 1000:.0f} ms ({args.rounds} rounds)")
        print(f"whole record for export ({args.notes} notes, decrypted and audited): median "
              f"{statistics.median(export):.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
