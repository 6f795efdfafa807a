"""Concurrent attempts at one slot: exactly one booking, clear refusals naming the booking that
won, no 500, no deadlock reaching a client. 500 of them through the HTTP API, a few through
the workflow where the outcome of each attempt can be told apart."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from server.bookings import bookings, tokens, workflow
from server.bookings import context as bookings_context
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

        # The timeout catches a deadlock, not slowness: how fast a storm goes is no aim.
        await asyncio.wait_for(asyncio.gather(*(attempt(b) for b in bodies)), timeout=50)

    statuses = Counter(s for s, _ in results)
    codes = Counter(c for _, c in results)
    # One booking for gp at 9:00 and one for gp2; and each patient at most once.
    live = await world.conn.fetch(
        "SELECT clinician_id, patient_id FROM bookings WHERE status = 'booked'")
    assert statuses[201] == len(live) == 2, (statuses, codes)
    assert statuses[409] == ATTEMPTS - 2
    assert set(codes) <= {"", "clinician_busy", "patient_busy"}
    assert statuses[500] == 0 and "internal_error" not in codes


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


WAIT = 10  # seconds: generous, each attempt takes milliseconds; a timeout means a deadlock


def _ctx(api: Api) -> workflow.Context:
    return bookings_context.of_app(api.client.app, "http://127.0.0.1")


def _at(api: Api, patient: int, starts_at: datetime, minutes: int | None = None
        ) -> bookings.NewBooking:
    return bookings.NewBooking(
        centre_id="san-siro", service_code="gp_visit", mode="home_video", patient_id=patient,
        clinician_id=api.world.gp, starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes) if minutes else None)


async def test_attempts_at_one_slot_are_refused_with_the_winners_id(api: Api):
    world = api.world
    others = [await add_patient(world.conn, f"S{i}", email=None) for i in range(3)]
    starts = future(hh=11)
    ctx = _ctx(api)
    outcome = await asyncio.wait_for(asyncio.gather(
        *(workflow.book(ctx, _at(api, p, starts), created_by=None)
          for p in [world.patient, *others]), return_exceptions=True), WAIT)
    winners = [o for o in outcome if isinstance(o, bookings.Booking)]
    assert len(winners) == 1
    for refused in outcome:
        if refused is not winners[0]:
            assert isinstance(refused, bookings.Clash)
            assert (refused.what, refused.other_booking_id) == ("clinician", winners[0].id)
    assert await world.conn.fetchval("SELECT count(*) FROM bookings") == 1


async def test_an_attempt_refused_for_its_patient_leaves_the_slot_to_another(api: Api):
    world = api.world
    starts = future(hh=12)
    # The first attempt's patient is already booked at that time with another GP.
    await world.book(starts, clinician=world.gp2, patient=world.patient)
    free = await add_patient(world.conn, "Free", email=None)
    ctx = _ctx(api)
    busy, booked = await asyncio.wait_for(asyncio.gather(
        workflow.book(ctx, _at(api, world.patient, starts), created_by=None),
        workflow.book(ctx, _at(api, free, starts), created_by=None),
        return_exceptions=True), WAIT)
    assert isinstance(busy, bookings.Clash) and busy.what == "patient"
    assert isinstance(booked, bookings.Booking) and booked.patient_id == free


async def test_a_shorter_attempt_fits_where_a_longer_one_at_the_same_start_clashes(api: Api):
    world = api.world
    starts = future(hh=15)
    await world.book(starts + timedelta(minutes=30), clinician=world.gp, patient=world.patient2)
    short, long = (await add_patient(world.conn, "Short", email=None),
                   await add_patient(world.conn, "Long", email=None))
    ctx = _ctx(api)
    long_one, short_one = await asyncio.wait_for(asyncio.gather(
        workflow.book(ctx, _at(api, long, starts, 60), created_by=None),
        workflow.book(ctx, _at(api, short, starts, 20), created_by=None),
        return_exceptions=True), WAIT)
    assert isinstance(long_one, bookings.Clash) and long_one.what == "clinician"
    assert isinstance(short_one, bookings.Booking)


async def test_a_revoked_token_is_refused_by_the_next_request(api: Api):
    token_id, token = await tokens.create(api.world.conn, api.world.coordinator, "storm")
    headers = {"Authorization": f"Bearer {token}"}
    replies: list[Any] = await asyncio.wait_for(asyncio.gather(
        *(api.get("/api/v1/services", headers=headers) for _ in range(20))), WAIT)
    assert {r.status for r in replies} == {200}
    assert await tokens.revoke(api.world.conn, token_id)
    assert (await api.get("/api/v1/services", headers=headers)).status == 401
