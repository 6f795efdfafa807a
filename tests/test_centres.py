"""The centres table is brought in line with the data file at every start, by every instance."""

from __future__ import annotations

import asyncio

import asyncpg

from server import centres


async def test_instances_starting_together_load_the_centres_once(db_url: str) -> None:
    # Two instances (or an instance and a test fixture) starting at the same moment both
    # insert the five centres. The upsert arbitrates on the id only, so without one writer at a
    # time the second one's insert met the first's uncommitted name and failed the start.
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=1) for _ in range(8)]
    try:
        for _ in range(20):
            async with pools[0].acquire() as conn:
                await conn.execute("DELETE FROM centres")
            await asyncio.gather(*(centres.ensure_loaded(p) for p in pools))
            assert len(await centres.list_all(pools[0])) == len(centres.load_data())
    finally:
        for p in pools:
            await p.close()


async def test_a_plain_connection_syncs_alongside_a_start(db_url: str) -> None:
    conns = [await asyncpg.connect(db_url) for _ in range(8)]
    try:
        for _ in range(40):
            await conns[0].execute("DELETE FROM centres")
            await asyncio.gather(*(centres.sync(c, centres.load_data()) for c in conns))
            assert len(await centres.list_all(conns[0])) == len(centres.load_data())
    finally:
        for c in conns:
            await c.close()
