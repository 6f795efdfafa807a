"""Coalescing identical work in flight: the storm's fast path must never change an answer.

Ordering here is deterministic: a task registers its flight before its first suspension, and
``asyncio.gather`` starts tasks in order, so the first one leads and the others follow.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.bookings import bookings, workflow
from server.bookings.keys import SLOT_FLIGHTS, TOKEN_FLIGHTS
from server.bookings.singleflight import Flights
from tests.bookings.conftest import Api, add_patient, future

WAIT = 10  # seconds: generous, the work below takes milliseconds


async def test_followers_share_the_leaders_result_and_the_key_is_then_forgotten():
    flights: Flights[str, int] = Flights()
    gate = asyncio.Event()
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    async def release() -> None:
        await asyncio.sleep(0)
        gate.set()

    results = await asyncio.wait_for(asyncio.gather(
        flights.run("k", work), flights.run("k", work), flights.run("k", work), release()),
        WAIT)
    assert list(results[:3]) == [(42, True), (42, False), (42, False)]
    assert calls == 1 and len(flights) == 0
    # Nothing is cached: the next caller does the work again.
    gate.set()
    assert await asyncio.wait_for(flights.run("k", work), WAIT) == (42, True)
    assert calls == 2


async def test_followers_get_the_leaders_exception():
    flights: Flights[str, int] = Flights()
    gate = asyncio.Event()

    async def fail() -> int:
        await gate.wait()
        raise ValueError("refused")

    async def release() -> None:
        await asyncio.sleep(0)
        gate.set()

    outcome = await asyncio.wait_for(asyncio.gather(
        flights.run("k", fail), flights.run("k", fail), release(), return_exceptions=True), WAIT)
    assert all(isinstance(o, ValueError) for o in outcome[:2])
    assert len(flights) == 0


async def test_a_cancelled_leader_leaves_its_followers_to_work_for_themselves():
    flights: Flights[str, str] = Flights()
    forever = asyncio.Event()

    async def stuck() -> str:
        await forever.wait()
        return "never"

    async def quick() -> str:
        return "own"

    leader = asyncio.create_task(flights.run("k", stuck))
    await asyncio.sleep(0)
    follower = asyncio.create_task(flights.run("k", quick))
    await asyncio.sleep(0)
    leader.cancel()
    assert await asyncio.wait_for(follower, WAIT) == ("own", True)
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert len(flights) == 0


async def test_a_cancelled_follower_does_not_disturb_the_others():
    flights: Flights[str, int] = Flights()
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        return 7

    leader = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    quitter = asyncio.create_task(flights.run("k", work))
    stayer = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    quitter.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.wait_for(leader, WAIT) == (7, True)
    assert await asyncio.wait_for(stayer, WAIT) == (7, False)
    assert quitter.cancelled()


def _ctx(api: Api) -> workflow.Context:
    return workflow.context(api.client.app, "http://127.0.0.1")


async def test_attempts_at_a_slot_being_booked_are_refused_with_the_winners_id(api: Api,
                                                                            monkeypatch):
    world = api.world
    # The database would refuse the followers too, with the same id: count the attempts that
    # reach it, so the test fails if the followers were not coalesced.
    checks = []
    real_check = bookings.check

    async def counted(conn, nb):
        checks.append(nb.patient_id)
        return await real_check(conn, nb)

    monkeypatch.setattr(bookings, "check", counted)
    others = [await add_patient(world.conn, f"S{i}", email=None) for i in range(3)]
    starts = future(hh=11)
    nbs = [bookings.NewBooking(centre_id="san-siro", service_code="gp_visit", mode="home_video",
                               patient_id=p, clinician_id=world.gp, starts_at=starts)
           for p in [world.patient, *others]]
    ctx = _ctx(api)
    outcome = await asyncio.wait_for(asyncio.gather(
        *(workflow.book(ctx, nb, created_by=None) for nb in nbs), return_exceptions=True), WAIT)
    winner = outcome[0]
    assert isinstance(winner, bookings.Booking)
    for refused in outcome[1:]:
        assert isinstance(refused, bookings.Clash)
        assert (refused.what, refused.other_booking_id) == ("clinician", winner.id)
    assert len(api.client.app[SLOT_FLIGHTS]) == 0
    assert checks == [world.patient]
    assert await world.conn.fetchval("SELECT count(*) FROM bookings") == 1


async def test_when_the_leaders_patient_is_busy_a_follower_still_books_the_slot(api: Api):
    world = api.world
    starts = future(hh=12)
    # The leader's patient is already booked at that time with another GP.
    await world.book(starts, clinician=world.gp2, patient=world.patient)
    free = await add_patient(world.conn, "Free", email=None)

    def nb(patient: int) -> bookings.NewBooking:
        return bookings.NewBooking(centre_id="san-siro", service_code="gp_visit",
                                   mode="home_video", patient_id=patient,
                                   clinician_id=world.gp, starts_at=starts)

    ctx = _ctx(api)
    leader, follower = await asyncio.wait_for(asyncio.gather(
        workflow.book(ctx, nb(world.patient), created_by=None),
        workflow.book(ctx, nb(free), created_by=None), return_exceptions=True), WAIT)
    assert isinstance(leader, bookings.Clash) and leader.what == "patient"
    assert isinstance(follower, bookings.Booking) and follower.patient_id == free


async def test_a_different_end_is_a_different_flight(api: Api):
    """Another booking can fit a shorter attempt that a longer one at the same start hits."""
    world = api.world
    starts = future(hh=15)
    from datetime import timedelta

    await world.book(starts + timedelta(minutes=30), clinician=world.gp, patient=world.patient2)
    p = await add_patient(world.conn, "Short", email=None)
    q = await add_patient(world.conn, "Long", email=None)
    ctx = _ctx(api)
    long_one, short_one = await asyncio.wait_for(asyncio.gather(
        workflow.book(ctx, bookings.NewBooking(
            centre_id="san-siro", service_code="gp_visit", mode="home_video", patient_id=q,
            clinician_id=world.gp, starts_at=starts, ends_at=starts + timedelta(minutes=60)),
            created_by=None),
        workflow.book(ctx, bookings.NewBooking(
            centre_id="san-siro", service_code="gp_visit", mode="home_video", patient_id=p,
            clinician_id=world.gp, starts_at=starts, ends_at=starts + timedelta(minutes=20)),
            created_by=None), return_exceptions=True), WAIT)
    assert isinstance(long_one, bookings.Clash) and long_one.what == "clinician"
    assert isinstance(short_one, bookings.Booking)


async def test_a_revoked_token_is_refused_by_the_next_lookup(api: Api):
    """Token lookups are shared only while in flight: nothing outlives them."""
    from server.bookings import tokens

    token_id, token = await tokens.create(api.world.conn, api.world.coordinator, "storm")
    headers = {"Authorization": f"Bearer {token}"}
    replies: list[Any] = await asyncio.wait_for(asyncio.gather(
        *(api.get("/api/v1/services", headers=headers) for _ in range(20))), WAIT)
    assert {r.status for r in replies} == {200}
    assert await tokens.revoke(api.world.conn, token_id)
    assert (await api.get("/api/v1/services", headers=headers)).status == 401
    assert len(api.client.app[TOKEN_FLIGHTS]) == 0
