"""Bookings under load: ``python -m bench.bookings_load [--attempts 20000]``.

(a) a storm of 500 concurrent requests for one slot through the HTTP API: successes (must be
    1), deadlocks reaching a client (must be 0), p50/p99 latency;
(b) mixed load: N attempts over many slots at concurrency 20, through the HTTP API and through
    the bookings module directly, in the same run: attempts/s and p99 for both, and overlaps
    found afterwards by SQL (must be 0).

The server runs in a child process (its own core), the client in this one; PostgreSQL is an
embedded server in a temporary directory, or DATABASE_URL's server (a fresh database on it).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import socket
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.scratch import scratch_database
from server import centres, db, dbroles
from server import staff as staff_store
from server.auth import passwords
from server.bookings import bookings, tokens, workflow
from server.bookings import context as bookings_context
from server.bookings.bookings import NewBooking
from server.config import Config
from server.serving import LISTEN_BACKLOG
from server.staff import Role
from tests.processes import listener, port_of

SECRET = "bench-secret-key-" + "x" * 40
CLINICIANS = 40
PATIENTS = 4000
SLOTS_PER_DAY = 24  # 20-minute slots, 09:00-17:00
DAYS = 20
CONCURRENCY = 20
STORM = 500
OVERLAPS = """
SELECT count(*) FROM bookings a JOIN bookings b ON a.id < b.id AND a.during && b.during
 AND (a.clinician_id = b.clinician_id OR a.patient_id = b.patient_id
      OR a.kiosk_id = b.kiosk_id)
WHERE a.status NOT IN ('cancelled', 'noshow', 'entered-in-error', 'waitlist')
  AND b.status NOT IN ('cancelled', 'noshow', 'entered-in-error', 'waitlist')
"""
DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


def serve(url: str, sock: socket.socket, data_dir: str, backlog: int = LISTEN_BACKLOG) -> None:
    """Child process: the full Casa app on ``sock`` (bound on 127.0.0.1 by the parent, so no
    other process can take the port first), quiet logs. ``backlog`` is the listen queue;
    ``casa serve`` uses LISTEN_BACKLOG (1,024; aiohttp's default is 128)."""
    from aiohttp import web

    from server import logs
    from server.app import create_app

    logs.configure("WARNING")
    config = Config(secret_key=SECRET, data_dir=Path(data_dir),
                    database_url=db.with_user(url, dbroles.SERVING_ROLE))
    web.run_app(create_app(config), sock=sock, print=None, access_log=None, backlog=backlog)


async def prepare(url: str) -> tuple[str, list[int], list[int]]:
    """Staff, patients and a bearer token; returns (token, clinician ids, patient ids)."""
    conn = await asyncpg.connect(url)
    try:
        await db.prepare(conn, dbroles.SERVING_ROLE)
        await centres.sync(conn, centres.load_data())
        pw = passwords.hash_password("bench-password-123")
        everywhere = tuple(c.id for c in centres.load_data())
        coordinator = await staff_store.create(
            conn, email="coord@bench.example", full_name="Bench coordinator",
            role=Role.COORDINATOR, password="", password_hash=pw, centres=everywhere)
        clinicians = [await staff_store.create(
            conn, email=f"gp{i}@bench.example", full_name=f"GP {i}", role=Role.GP, password="",
            password_hash=pw, centres=("san-siro",)) for i in range(CLINICIANS)]
        await conn.executemany(
            # San Siro's patients: the coordinator may book them (createBooking is scoped).
            "INSERT INTO patients (given_name, family_name, date_of_birth, phone, email,"
            " home_centre_id) VALUES ($1, $2, $3, $4, $5, 'san-siro')",
            [(f"P{i}", "Bench", date(1950, 1, 1) + timedelta(days=i), "+39 333 0000000",
              f"p{i}@bench.example") for i in range(PATIENTS)])
        patients = [r["id"] for r in await conn.fetch("SELECT id FROM patients ORDER BY id")]
        _, token = await tokens.create(conn, coordinator, "bench")
        return token, clinicians, patients
    finally:
        await conn.close()


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listen queue was full (Linux):
    each costs its client a SYN retransmission, one second or more."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split(), values.split(), strict=False))
            return int(table.get("ListenOverflows", 0))
    return None


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000 if ordered else 0.0


def slot_start(first_day: date, k: int) -> datetime:
    day = first_day + timedelta(days=k // SLOTS_PER_DAY)
    return datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(
        minutes=20 * (k % SLOTS_PER_DAY))


async def storm(base: str, token: str, clinician: int, patients: list[int],
                slot: int = 0) -> dict[str, Any]:
    starts = slot_start(date.today() + timedelta(days=200), slot)
    headers = {"Authorization": f"Bearer {token}"}
    results: list[tuple[int, str, float]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=STORM)) as session:
        async def one(i: int) -> None:
            body = {"centre_id": "san-siro", "service_code": "gp_visit", "mode": "home_video",
                    "patient_id": patients[i], "clinician_id": clinician,
                    "starts_at": starts.isoformat()}
            t0 = time.perf_counter()
            async with session.post(f"{base}/api/v1/bookings", json=body,
                                    headers=headers) as resp:
                data = await resp.json()
                code = data.get("error", {}).get("code", "") if resp.status >= 400 else ""
                results.append((resp.status, code, time.perf_counter() - t0))

        overflows = listen_overflows()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(STORM)))
        wall = time.perf_counter() - t0
        after = listen_overflows()
    lat = [r[2] for r in results]
    return {"successes": sum(1 for r in results if r[0] == 201),
            "conflicts_409": sum(1 for r in results if r[0] == 409),
            "server_errors": sum(1 for r in results if r[0] >= 500),
            "deadlocks_to_client": sum(1 for r in results if "deadlock" in r[1]
                                       or r[0] >= 500),
            "p50_ms": round(pct(lat, 0.5), 1), "p99_ms": round(pct(lat, 0.99), 1),
            "wall_s": round(wall, 2),
            # Machine-wide: other programs' overflows in the same second would count too.
            "listen_overflows": None if overflows is None or after is None
            else after - overflows}


async def one_at_a_time(base: str, token: str, clinician: int, patients: list[int],
                        n: int) -> dict[str, Any]:
    """``n`` refused attempts at the (already booked) first storm slot, one after another over
    one kept-alive connection: what one refused attempt costs end to end, without queueing."""
    starts = slot_start(date.today() + timedelta(days=200), 0)
    headers = {"Authorization": f"Bearer {token}"}
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            body = {"centre_id": "san-siro", "service_code": "gp_visit", "mode": "home_video",
                    "patient_id": patients[i % len(patients)], "clinician_id": clinician,
                    "starts_at": starts.isoformat()}
            t0 = time.perf_counter()
            async with session.post(f"{base}/api/v1/bookings", json=body,
                                    headers=headers) as resp:
                await resp.read()
                statuses[resp.status] += 1
            lat.append(time.perf_counter() - t0)
    return {"attempts": n, "statuses": dict(statuses), "mean_ms": round(sum(lat) / n * 1000, 2),
            "p50_ms": round(pct(lat, 0.5), 2), "p99_ms": round(pct(lat, 0.99), 2)}


def random_booking(rng: random.Random, clinicians: list[int], patients: list[int],
                   first_day: date) -> dict[str, Any]:
    return {"centre_id": "san-siro", "service_code": "gp_visit", "mode": "home_video",
            "patient_id": rng.choice(patients), "clinician_id": rng.choice(clinicians),
            "starts_at": slot_start(first_day, rng.randrange(SLOTS_PER_DAY * DAYS)).isoformat()}


async def mixed_http(base: str, token: str, clinicians: list[int], patients: list[int],
                     attempts: int, first_day: date) -> dict[str, Any]:
    rng = random.Random(1)
    bodies = [random_booking(rng, clinicians, patients, first_day) for _ in range(attempts)]
    headers = {"Authorization": f"Bearer {token}"}
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    queue = iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as s:
        async def worker() -> None:
            for body in queue:
                t0 = time.perf_counter()
                async with s.post(f"{base}/api/v1/bookings", json=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] += 1
                lat.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        wall = time.perf_counter() - t0
    return {"attempts": attempts, "per_s": round(attempts / wall), "p50_ms":
            round(pct(lat, 0.5), 1), "p99_ms": round(pct(lat, 0.99), 1),
            "booked": statuses[201], "conflicts_409": statuses[409],
            "other": {k: v for k, v in statuses.items() if k not in (201, 409)}}


async def mixed_direct(url: str, clinicians: list[int], patients: list[int], attempts: int,
                       first_day: date, data_dir: str) -> dict[str, Any]:
    """The same load through server.bookings.workflow, no HTTP, own pool of the same size."""
    from aiohttp import web

    from server.keys import CONFIG, POOL
    from server.pages import setup as pages_setup

    app = web.Application()
    app[CONFIG] = Config(secret_key=SECRET, data_dir=Path(data_dir),
                         database_url=db.with_user(url, dbroles.SERVING_ROLE))
    pages_setup(app)
    pool = await db.create_pool(db.with_user(url, dbroles.SERVING_ROLE))
    app[POOL] = pool
    ctx = bookings_context.of_app(app, "http://127.0.0.1")
    rng = random.Random(2)
    items = [random_booking(rng, clinicians, patients, first_day) for _ in range(attempts)]
    lat: list[float] = []
    outcome: Counter[str] = Counter()
    queue = iter(items)

    async def worker() -> None:
        for body in queue:
            nb = NewBooking(centre_id="san-siro", service_code="gp_visit", mode="home_video",
                            patient_id=body["patient_id"], clinician_id=body["clinician_id"],
                            starts_at=datetime.fromisoformat(body["starts_at"]))
            t0 = time.perf_counter()
            try:
                await workflow.book(ctx, nb, created_by=None)
                outcome["booked"] += 1
            except bookings.Clash:
                outcome["clash"] += 1
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - t0
    await pool.close()
    return {"attempts": attempts, "per_s": round(attempts / wall),
            "p50_ms": round(pct(lat, 0.5), 1), "p99_ms": round(pct(lat, 0.99), 1),
            "booked": outcome["booked"], "conflicts": outcome["clash"]}


async def wait_healthy(base: str, within_s: float = 20.0) -> None:
    """Until the server at ``base`` answers /healthz with 200 (or ``within_s`` passes)."""
    async with aiohttp.ClientSession() as s:
        for _ in range(int(within_s * 10)):
            try:
                async with s.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def main_async(url: str, data_dir: str, attempts: int, storms: int,
                     storm_only: bool, backlog: int = LISTEN_BACKLOG) -> None:
    token, clinicians, patients = await prepare(url)
    sock = listener()
    port = port_of(sock)
    ctx = multiprocessing.get_context("spawn")
    # multiprocessing hands the socket itself to the child.
    server = ctx.Process(target=serve, args=(url, sock, data_dir, backlog),
                         daemon=True)
    server.start()
    sock.close()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base)
        conn = await asyncpg.connect(url)
        deadlocks_before = await conn.fetchval(DEADLOCKS)
        print("(a) storm, 500 concurrent requests for one slot (HTTP):")
        # Each storm uses its own clinician and slot, so every storm starts from a free slot.
        for k in range(storms):
            print("   ", await storm(base, token, clinicians[k % CLINICIANS], patients, k))
        print("(a2) refused attempts one at a time (HTTP, one kept-alive connection):")
        print("   ", await one_at_a_time(base, token, clinicians[0], patients, 500))
        if storm_only:
            await conn.close()
            return
        print(f"(b) mixed load, {attempts} attempts, concurrency {CONCURRENCY}:")
        http = await mixed_http(base, token, clinicians, patients, attempts,
                                date.today() + timedelta(days=300))
        print("    HTTP API:       ", http)
        direct = await mixed_direct(url, clinicians, patients, attempts,
                                    date.today() + timedelta(days=400), data_dir)
        print("    bookings module:", direct)
        print(f"    HTTP costs {direct['per_s'] / max(http['per_s'], 1):.2f}x in throughput")
        print("    overlaps found by SQL afterwards:", await conn.fetchval(OVERLAPS))
        print("    deadlocks detected (and retried) by PostgreSQL:",
              await conn.fetchval(DEADLOCKS) - deadlocks_before)
        await conn.close()
    finally:
        server.terminate()
        server.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=20000)
    parser.add_argument("--storms", type=int, default=1, help="storms to run one after another")
    parser.add_argument("--storm-only", action="store_true", help="skip the mixed load")
    parser.add_argument("--backlog", type=int, default=LISTEN_BACKLOG,
                        help="the server's listen queue (casa serve's: 1024; aiohttp's: 128)")
    args = parser.parse_args()
    with scratch_database("bookings") as (url, tmp):
        asyncio.run(main_async(url, tmp, args.attempts, args.storms, args.storm_only,
                               args.backlog))

if __name__ == "__main__":
    main()
