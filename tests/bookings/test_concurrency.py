"""500 concurrent attempts at one slot through the HTTP API: exactly one booking, 499 clear
409s, no 500, no deadlock reaching a client."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from server.bookings import bookings
from tests.bookings.conftest import Api, add_patient, future

ATTEMPTS = 500
# The client keeps at most this many requests in flight: bounded, like a real proxy would.
CLIENT_CONNECTIONS = 100


async def test_storm_of_500_requests_for_one_slot_gives_one_booking(api: Api):
    world = api.world
    # Half the attempts are different patients wanting the same clinician's slot; the other
    # half the same patient with different clinicians: every constraint gets contended.
    patients = [await add_patient(world.conn, f"P{i}", email=None) for i in range(20)]
    starts = future(hh=9)
    bodies = []
    for i in range(ATTEMPTS):
        if i % 2:
            bodies.append(api.booking_body(starts, patient_id=patients[i % 20]))
        else:
            bodies.append(api.booking_body(starts, clinician_id=world.gp2,
                                           patient_id=patients[i % 20]))
    connector = aiohttp.TCPConnector(limit=CLIENT_CONNECTIONS)
    url = str(api.client.make_url("/api/v1/bookings"))
    results: list[tuple[int, str]] = []

    async with aiohttp.ClientSession(connector=connector) as session:
        async def attempt(body: dict[str, object]) -> None:
            async with session.post(url, json=body, headers=api.coordinator) as resp:
                data = await resp.json()
                code = data.get("error", {}).get("code", "") if resp.status != 201 else ""
                results.append((resp.status, code))

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(attempt(b) for b in bodies)), timeout=50)
        elapsed = time.perf_counter() - started

    statuses = Counter(s for s, _ in results)
    codes = Counter(c for _, c in results)
    # One booking for gp at 9:00 and one for gp2; and each patient at most once.
    live = await world.conn.fetch(
        "SELECT clinician_id, patient_id FROM bookings WHERE status = 'booked'")
    assert statuses[201] == len(live) == 2, (statuses, codes)
    assert statuses[409] == ATTEMPTS - 2
    assert set(codes) <= {"", "clinician_busy", "patient_busy"}
    assert statuses[500] == 0 and "internal_error" not in codes
    assert elapsed < 45


async def test_one_slot_one_winner_among_500_same_clinician(api: Api):
    world = api.world
    patients = [await add_patient(world.conn, f"Q{i}", email=None) for i in range(10)]
    body = [api.booking_body(future(hh=14), patient_id=patients[i % 10])
            for i in range(ATTEMPTS)]
    connector = aiohttp.TCPConnector(limit=CLIENT_CONNECTIONS)
    url = str(api.client.make_url("/api/v1/bookings"))
    statuses: Counter[int] = Counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        async def attempt(b: dict[str, object]) -> None:
            async with session.post(url, json=b, headers=api.coordinator) as resp:
                statuses[resp.status] += 1
                if resp.status == 409:
                    assert (await resp.json())["error"]["code"] == "clinician_busy"

        await asyncio.wait_for(asyncio.gather(*(attempt(b) for b in body)), timeout=50)
    assert statuses == Counter({201: 1, 409: ATTEMPTS - 1})
    overlaps = await world.conn.fetchval(
        "SELECT count(*) FROM bookings a JOIN bookings b ON a.id < b.id"
        " AND a.clinician_id = b.clinician_id AND a.during && b.during"
        " AND a.status = 'booked' AND b.status = 'booked'")
    assert overlaps == 0
    assert bookings.MAX_ATTEMPTS > 1
