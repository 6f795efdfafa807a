"""The activity report's cost on a year of bookings at the five centres: the one query
(``server.reports.queries.facts``) and the counting and suppression (``figures.build``), for a
month of every centre, a month of one centre, and a whole year.

    python -m bench.reports_activity [--patients 20000] [--bookings 60000] [--runs 5]

Uses DATABASE_URL (a server where it may create a scratch database) or an embedded
PostgreSQL in a temporary directory. The rows are written by SQL, not through the booking
workflow: this measures reading them. Prints one line per number.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import date

import asyncpg

from bench.scratch import scratch_pool
from server import centres
from server.reports import queries
from server.reports.figures import Group, build
from server.reports.model import Period

CENTRES = ["gratosoglio", "san-siro", "mazzini", "molise-calvairate", "giambellino-lorenteggio"]
CLINICIANS = 50
PATIENTS = """
INSERT INTO patients (given_name, family_name, date_of_birth, language, home_centre_id)
SELECT 'P' || i, 'Bench', date '1950-01-01' + i % 9000,
       (ARRAY['it', 'it', 'ar', 'zh', 'es', 'uk', 'ro', 'bn'])[1 + i % 8],
       ($2::text[])[1 + i % 5]
FROM generate_series(1, $1) i
"""
# Clinician i % 50, one slot every 7 hours per clinician from 1 Jan 2026 (a year and a month
# for 60,000 bookings); each clinician has a kiosk of her own, so nothing overlaps.
BOOKINGS = """
INSERT INTO bookings (centre_id, service_code, mode, patient_id, clinician_id, kiosk_id,
                      during, status, created_at)
SELECT ($5::text[])[1 + (i / 7) % 5],
       (ARRAY['gp_visit', 'gp_visit', 'gp_visit', 'nurse_visit', 'psych_session'])[1 + i % 5],
       m.mode, $4::bigint + (i * 7919) % $3, ($2::bigint[])[1 + i % $6],
       CASE WHEN m.mode = 'kiosk_video' THEN ($7::bigint[])[1 + i % $6] END,
       tstzrange(t, t + interval '20 minutes'),
       (ARRAY['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled',
              'noshow', 'cancelled', 'booked'])[1 + i % 9],
       t - make_interval(days => 1 + i % 30)
FROM generate_series(0, $1 - 1) i,
     LATERAL (SELECT timestamptz '2026-01-01 08:00+01' + make_interval(hours => 7 * (i / $6))
              AS t) s,
     LATERAL (SELECT (ARRAY['home_video', 'kiosk_video', 'in_person'])[1 + (i / 3) % 3]
              AS mode) m
"""
CONSULTATIONS = """
INSERT INTO consultations (booking_id, room_id, join_opens_at, join_closes_at, state,
                           first_arrived_at, admitted_at, ended_at)
SELECT b.id, md5(b.id::text), lower(b.during) - interval '15 minutes',
       upper(b.during) + interval '30 minutes',
       CASE WHEN b.status = 'fulfilled' THEN 'ended' ELSE 'scheduled' END,
       CASE WHEN b.status = 'fulfilled' THEN lower(b.during) END,
       CASE WHEN b.status = 'fulfilled'
            THEN lower(b.during) + make_interval(mins => (b.id % 9)::int) END,
       CASE WHEN b.status = 'fulfilled'
            THEN lower(b.during) + make_interval(mins => (10 + b.id % 20)::int) END
FROM bookings b WHERE b.mode <> 'in_person'
"""
CANCELLED = """
INSERT INTO booking_status_changes (booking_id, from_status, to_status, by_kind, by_staff_id)
SELECT id, 'booked', 'cancelled', 'staff', $1 FROM bookings WHERE status = 'cancelled'
"""


async def _seed(pool: asyncpg.Pool, patients: int, bookings: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await centres.sync(conn, centres.load_data())
        staff = [await conn.fetchval(
            "INSERT INTO staff (email, full_name, role, password_hash, language) VALUES "
            "($1, 'Bench', 'gp', 'x', 'it') RETURNING id", f"gp{i}@b.example")
            for i in range(CLINICIANS)]
        kiosks = [await conn.fetchval(
            "INSERT INTO resources (centre_id, kind, name) VALUES ($1, 'kiosk', $2) "
            "RETURNING id", CENTRES[i % 5], f"K{i}") for i in range(CLINICIANS)]
        await conn.execute(PATIENTS, patients, CENTRES)
        first = await conn.fetchval("SELECT min(id) FROM patients")
        await conn.execute(BOOKINGS, bookings, staff, patients, first, CENTRES, CLINICIANS,
                           kiosks)
        await conn.execute(CONSULTATIONS)
        await conn.execute(CANCELLED, staff[0])
        await conn.execute("ANALYZE")


async def _time(runs: int, pool: asyncpg.Pool, period: Period,
                covered: list[str]) -> tuple[float, float, int]:
    """Median milliseconds of the query and of the counting, and the bookings read."""
    names = await queries.centre_names(pool)
    services = await queries.services(pool)
    q_ms, b_ms, n = [], [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        facts = await queries.facts(pool, period, tuple(covered))
        t1 = time.perf_counter()
        build(facts, period, [Group(c, names[c]) for c in covered], services, str, str)
        t2 = time.perf_counter()
        q_ms.append((t1 - t0) * 1000)
        b_ms.append((t2 - t1) * 1000)
        n = len(facts)
    return statistics.median(q_ms), statistics.median(b_ms), n


async def main(args: argparse.Namespace) -> None:
    async with scratch_pool("reports") as (pool, _files):
        t0 = time.perf_counter()
        await _seed(pool, args.patients, args.bookings)
        print(f"seeded {args.patients} patients, {args.bookings} bookings "
              f"in {time.perf_counter() - t0:.1f} s")
        cases = [("one month, five centres", Period(date(2026, 6, 1), date(2026, 6, 30)),
                  CENTRES),
                 ("one month, one centre", Period(date(2026, 6, 1), date(2026, 6, 30)),
                  ["san-siro"]),
                 ("a year, five centres", Period(date(2026, 1, 1), date(2026, 12, 31)),
                  CENTRES)]
        for label, period, covered in cases:
            q, b, n = await _time(args.runs, pool, period, covered)
            print(f"{label}: {n} bookings, query median {q:.0f} ms, "
                  f"counting and suppression median {b:.0f} ms ({args.runs} runs)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--bookings", type=int, default=60000)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
