"""The care rule's cost: ``server.consultations.care.caring_for`` (records) and the bookings
scope on a seeded register, a codice fiscale search with its audit row, and the per-staff quota
under concurrency (it must count exactly).

    python -m bench.care_rule [--patients 5000] [--bookings 40000] [--calls 2000]

Uses DATABASE_URL (a server where it may create a scratch database) or an embedded
PostgreSQL in a temporary directory. Prints one line per number.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta

import asyncpg

from bench.scratch import scratch_pool
from server import centres, staff_quota
from server.bookings.access import search_patients
from server.consultations import care
from server.staff import Role, Staff

CF = "RSSMRA50A01F205Z"
SEED = """
INSERT INTO patients (given_name, family_name, date_of_birth, language, home_centre_id)
SELECT 'P' || i, 'Bench', date '1950-01-01' + i % 9000, 'it',
       (ARRAY['san-siro', 'mazzini', 'gratosoglio'])[1 + i % 3]
FROM generate_series(1, $1) i
"""
SEED_BOOKINGS = """
INSERT INTO bookings (centre_id, service_code, mode, patient_id, clinician_id, during)
SELECT 'san-siro', 'gp_visit', 'in_person', $4::bigint + (i * 7919) % $3,
       ($2::bigint[])[1 + i % cardinality($2::bigint[])],
       tstzrange(now() + make_interval(hours => i), now() + make_interval(hours => i, mins => 20))
FROM generate_series(1, $1) i
"""
CHECK_IN = """
UPDATE bookings SET status = 'checked-in' WHERE id % 3 = 0
"""


async def _staff(conn: asyncpg.Connection, role: Role, n: int, centre: str) -> list[int]:
    return [await conn.fetchval(
        "INSERT INTO staff (email, full_name, role, password_hash, language) VALUES "
        "($1, 'Bench', $2::staff_role, 'x', 'it') RETURNING id", f"{role}{i}{centre}@b.example",
        role.value) for i in range(n)]


async def _seed(pool: asyncpg.Pool, patients: int, bookings: int) -> tuple[list[int], int]:
    async with pool.acquire() as conn, conn.transaction():
        await centres.sync(conn, centres.load_data())
        gps = await _staff(conn, Role.GP, 50, "s")
        for g in gps:
            await conn.execute("INSERT INTO staff_centres VALUES ($1, 'san-siro')", g)
        desk = (await _staff(conn, Role.COORDINATOR, 1, "d"))[0]
        await conn.execute("INSERT INTO staff_centres VALUES ($1, 'san-siro')", desk)
        await conn.execute(SEED, patients)
        await conn.execute("UPDATE patients SET codice_fiscale = $1 WHERE id = "
                           "(SELECT max(id) FROM patients)", CF)
        first = await conn.fetchval("SELECT min(id) FROM patients")
        await conn.execute(SEED_BOOKINGS, bookings, gps, patients, first)
        await care.name_status_actor(conn, care.status_actor(desk))
        await conn.execute(CHECK_IN)
        await conn.execute("ANALYZE")
    outsider = await pool.fetchval(
        "INSERT INTO staff (email, full_name, role, password_hash, language) VALUES "
        "('out@b.example', 'Out', 'gp', 'x', 'it') RETURNING id")
    await pool.execute("INSERT INTO staff_centres VALUES ($1, 'molise-calvairate')", outsider)
    return gps, int(outsider)


async def _time(calls: int, fn: object) -> float:
    """Median microseconds of ``calls`` sequential awaits of ``fn()``."""
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples)


async def main(args: argparse.Namespace) -> None:
    async with scratch_pool("care") as (pool, _files):
        gps, outsider = await _seed(pool, args.patients, args.bookings)
        pids = [r["id"] for r in await pool.fetch("SELECT id FROM patients ORDER BY id")]
        print(f"seeded {len(pids)} patients, {args.bookings} bookings, "
              f"{await pool.fetchval('SELECT count(*) FROM booking_status_changes')} check-ins")
        k = iter(range(10**9))

        async def one_pair() -> None:
            i = next(k)
            await care.caring_for(pool, gps[i % len(gps)], pids[(i * 31) % len(pids)])

        async def stranger() -> None:
            i = next(k)
            await care.caring_for(pool, outsider, pids[(i * 31) % len(pids)])

        print(f"caring_for, clinician of the centre: median {await _time(args.calls, one_pair):.0f}"
              f" us ({args.calls} calls)")
        print(f"caring_for, clinician of no booking: median {await _time(args.calls, stranger):.0f}"
              f" us ({args.calls} calls)")
        user = Staff(outsider, "out@b.example", "Out", Role.GP, "it", False,
                     ("molise-calvairate",))

        async def cf_search() -> None:
            await search_patients(pool, user, CF, 20)

        async def name_search() -> None:
            await search_patients(pool, user, "P12", 20)

        print(f"search by codice fiscale (quota + audit row): median "
              f"{await _time(25, cf_search):.0f} us (25 calls)")
        print(f"search by name (scope = care rule per row): median "
              f"{await _time(50, name_search):.0f} us (50 calls)")
        racers = 300
        counts = await asyncio.gather(*(staff_quota.take(pool, gps[0], "bench", timedelta(
            hours=1)) for _ in range(racers)))
        exact = sorted(counts) == list(range(1, racers + 1))
        print(f"quota under {racers} concurrent takes: counts 1..{max(counts)}, "
              f"distinct {len(set(counts))} (exact: {exact})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--bookings", type=int, default=40000)
    parser.add_argument("--calls", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
