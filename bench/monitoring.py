"""Tele-monitoring: readings ingested per second through HTTP (``submitReading``, sealed by
records, audited, checked against the patient's limits), and the nurse's worklist query with
5,000 patients in a plan and a year of daily readings each (1,825,000 readings).

    python -m bench.monitoring [--patients 5000] [--days 365] [--readings 2000]
                               [--concurrency 16] [--runs 200]

Uses DATABASE_URL (a server where it may create a scratch database) or an embedded PostgreSQL
in a temporary directory. The year of readings is written by SQL (generate_series): their
ciphertexts are random bytes of a sealed reading's size, which the worklist never opens. The
ingestion goes through the full app in a child process, as ``casa serve`` runs it. Prints one
line per number.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

from bench.bookings_load import serve, wait_healthy
from bench.scratch import scratch_database
from records import keyring
from server import centres, db, dbroles
from server import staff as staff_store
from server.auth import passwords
from server.bookings import tokens
from server.monitoring import alerts
from server.staff import Role
from tests.processes import listener, port_of

# Every patient at San Siro, where the nurse works: she cares for all 5,000 (the worst case for
# her worklist, which checks care per alert).
PATIENTS = """
INSERT INTO patients (given_name, family_name, date_of_birth, language, home_centre_id)
SELECT 'P' || i, 'Bench', date '1940-01-01' + i % 15000, 'it', 'san-siro'
FROM generate_series(1, $1) i
"""
PLANS = """
INSERT INTO monitoring_plans (patient_id, created_by, conditions, measurements, every_hours,
                              tolerance_hours, thresholds, starts_at, ends_at)
SELECT p.id, $1, ARRAY['hypertension'], ARRAY['blood_pressure'], 24, 12,
       '{"systolic": {"low": 90, "high": 160}, "diastolic": {"low": 50, "high": 100}}',
       now() - make_interval(days => $2), now() + interval '30 days'
FROM patients p
"""
# One blood pressure a day per patient for a year; one in thirty out of range.
READINGS = """
INSERT INTO monitoring_readings (plan_id, patient_id, measurement, measured_at, received_at,
                                 source, out_of_range, ciphertext, wrapped_key, kek_id)
SELECT pl.id, pl.patient_id, 'blood_pressure',
       now() - make_interval(days => d, mins => (pl.id % 600)::int),
       now() - make_interval(days => d, mins => (pl.id % 600)::int),
       'home', (pl.id + d) % 30 = 0,
       decode(repeat(md5(pl.id::text || '.' || d), 3), 'hex'),
       decode(repeat(md5(d::text || '.' || pl.id), 2), 'hex') || '\\x0102'::bytea,
       'p' || pl.patient_id || '-000000'
FROM monitoring_plans pl, generate_series(1, $1) d
"""
# Each reading out of range raised its alert; the nurse has worked through all but the last
# week's (those are still on her worklist, about 1,200).
ALERTS = """
INSERT INTO monitoring_alerts (plan_id, patient_id, kind, measurement, reading_id, raised_at,
                               state, state_by, state_at)
SELECT r.plan_id, r.patient_id, 'out_of_range', r.measurement, r.id, r.received_at,
       CASE WHEN r.received_at > now() - interval '7 days' THEN 'open' ELSE 'acknowledged' END,
       CASE WHEN r.received_at > now() - interval '7 days' THEN NULL ELSE $1::bigint END,
       CASE WHEN r.received_at > now() - interval '7 days' THEN NULL
            ELSE r.received_at + interval '2 hours' END
FROM monitoring_readings r WHERE r.out_of_range
"""


INDEX_NAMES = """
SELECT indexrelid::regclass::text AS n FROM pg_index
WHERE indrelid = 'monitoring_readings'::regclass AND NOT indisprimary
"""
INDEXES = """
SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index
WHERE indrelid = 'monitoring_readings'::regclass AND NOT indisprimary
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def prepare(url: str, patients: int, days: int) -> tuple[int, str]:
    conn = await asyncpg.connect(url)
    try:
        await db.prepare(conn, dbroles.SERVING_ROLE)
        await centres.sync(conn, centres.load_data())
        nurse = await staff_store.create(
            conn, email="nurse@bench.example", full_name="Bench nurse", role=Role.NURSE,
            password="", password_hash=passwords.hash_password("bench-password-123"),
            centres=("san-siro",))
        t0 = time.perf_counter()
        await conn.execute(PATIENTS, patients)
        await conn.execute(PLANS, nurse, days + 1)
        # The readings' indexes built once after the load, not row by row during it (the
        # migration's own definitions, read back from the catalogue).
        indexes = [r["def"] for r in await conn.fetch(INDEXES)]
        for name in await conn.fetch(INDEX_NAMES):
            await conn.execute(f'DROP INDEX "{name["n"]}"')
        await conn.execute(READINGS, days)
        for definition in indexes:
            await conn.execute(definition)
        await conn.execute(ALERTS, nurse)
        await conn.execute("ANALYZE")
        count = await conn.fetchval("SELECT count(*) FROM monitoring_readings")
        pending = await conn.fetchval(
            "SELECT count(*) FROM monitoring_alerts WHERE state <> 'acknowledged'")
        print(f"set-up: {patients} patients, {count:,} readings, {pending} alerts pending, "
              f"{time.perf_counter() - t0:.1f} s")
        _, token = await tokens.create(conn, nurse, "bench")
        return nurse, token
    finally:
        await conn.close()


async def worklist_times(url: str, nurse: int, runs: int) -> None:
    pool = await db.create_pool(url)
    try:
        await alerts.worklist(pool, nurse)  # warm
        took = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rows = await alerts.worklist(pool, nurse)
            took.append((time.perf_counter() - t0) * 1000)
        print(f"worklist ({len(rows)} rows shown of those pending), {runs} runs: "
              f"median {statistics.median(took):.1f} ms, p99 {pct(took, 0.99):.1f} ms, "
              f"max {max(took):.1f} ms")
        t0 = time.perf_counter()
        raised = await alerts.sweep_missed(pool, datetime.now(UTC) + timedelta(days=3))
        print(f"missed-reading check over every plan: {len(raised)} alerts raised in "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")
        version = []
        for _ in range(runs):
            t0 = time.perf_counter()
            await alerts.version(pool)
            version.append((time.perf_counter() - t0) * 1000)
        print(f"worklist poll (version), {runs} runs: p99 {pct(version, 0.99):.2f} ms")
    finally:
        await pool.close()


async def ingest(base: str, token: str, plans: list[int], n: int, concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    took: list[float] = []
    failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        while not queue.empty():
            i = queue.get_nowait()
            body = {"measurement": "blood_pressure", "source": "api",
                    "values": {"systolic": 120 + i % 50, "diastolic": 70 + i % 35}}
            t0 = time.perf_counter()
            async with session.post(f"{base}/api/v1/monitoring/plans/{plans[i % len(plans)]}"
                                    "/readings", json=body, headers=headers) as resp:
                await resp.read()
                failed += resp.status != 201
            took.append((time.perf_counter() - t0) * 1000)

    async with aiohttp.ClientSession() as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    print(f"ingestion through HTTP, {n} readings at concurrency {concurrency}: "
          f"{n / wall:.0f} readings/s, p50 {statistics.median(took):.1f} ms, "
          f"p99 {pct(took, 0.99):.1f} ms, {failed} not stored")


async def main_async(url: str, data_dir: str, args: argparse.Namespace) -> None:
    nurse, token = await prepare(url, args.patients, args.days)
    await worklist_times(url, nurse, args.runs)
    ring_path = Path(data_dir) / "keyring.json"
    keyring.save(keyring.generate(ring_path), ring_path)
    conn = await asyncpg.connect(url)
    plans = [r["id"] for r in await conn.fetch("SELECT id FROM monitoring_plans ORDER BY id "
                                               "LIMIT $1", args.writers)]
    await conn.close()
    sock = listener()
    port = port_of(sock)
    # multiprocessing hands the bound socket itself to the child: no other process can take
    # the port between choosing and serving it.
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(url, sock, data_dir), daemon=True)
    server.start()
    sock.close()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base)
        # Warm: one reading per patient first, which makes each patient's key (a keyring file
        # write each, once per patient in her life); then the steady state is measured.
        print("first reading of each patient (makes her key):", end=" ")
        await ingest(base, token, plans, len(plans), args.concurrency)
        await ingest(base, token, plans, args.readings, args.concurrency)
    finally:
        server.terminate()
        server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--readings", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--writers", type=int, default=200,
                        help="patients whose plans the ingestion writes to")
    args = parser.parse_args()
    with scratch_database("monitoring") as (url, tmp):
        asyncio.run(main_async(url, tmp, args))

if __name__ == "__main__":
    main()
