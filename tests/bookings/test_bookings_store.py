"""Bookings in the database: no double booking, the FHIR status lifecycle, rescheduling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from server.bookings import bookings
from server.consultations import status, store
from tests.bookings.conftest import WINDOW, World, future


async def test_clinician_cannot_be_double_booked(world: World):
    first = await world.book(future(hh=10), minutes=30)
    with pytest.raises(bookings.Clash) as err:
        await world.book(future(hh=10, mm=20), patient=world.patient2)
    assert err.value.what == "clinician" and err.value.other_booking_id == first.id


async def test_patient_cannot_be_in_two_places(world: World):
    first = await world.book(future(hh=10))
    with pytest.raises(bookings.Clash) as err:
        await world.book(future(hh=10, mm=5), clinician=world.gp2)
    assert err.value.what == "patient" and err.value.other_booking_id == first.id


async def test_kiosk_holds_one_booking_at_a_time(world: World):
    await world.book(future(hh=10), mode="kiosk_video", kiosk=world.kiosk)
    with pytest.raises(bookings.Clash) as err:
        await world.book(future(hh=10), mode="kiosk_video", kiosk=world.kiosk,
                         clinician=world.gp2, patient=world.patient2)
    assert err.value.what == "kiosk"
    other = await world.book(future(hh=10), mode="kiosk_video", kiosk=world.kiosk2,
                             clinician=world.gp2, patient=world.patient2)
    assert other.kiosk_id == world.kiosk2


async def test_back_to_back_bookings_do_not_clash(world: World):
    await world.book(future(hh=10), minutes=20)
    nxt = await world.book(future(hh=10, mm=20), minutes=20, patient=world.patient2)
    assert nxt.starts_at == future(hh=10, mm=20)


async def test_cancelled_booking_frees_its_time(world: World):
    first = await world.book(future(hh=10))
    async with world.conn.transaction():
        await bookings.set_status(world.conn, first.id, "cancelled", reason="patient called")
    again = await world.book(future(hh=10))
    assert again.id != first.id


async def test_constraint_holds_even_without_the_python_code(world: World):
    await world.book(future(hh=10))
    with pytest.raises(asyncpg.ExclusionViolationError):
        await world.conn.execute(
            "INSERT INTO bookings (centre_id, service_code, mode, patient_id, clinician_id,"
            " during) VALUES ('san-siro', 'gp_visit', 'in_person', $1, $2, tstzrange($3, $4))",
            world.patient2, world.gp, future(hh=10, mm=5), future(hh=10, mm=15))


ALLOWED = sorted((o, n) for o, targets in status.TRANSITIONS.items() for n in targets)


async def _force_status(world: World, booking_id: int, value: str) -> None:
    # Put a booking in any starting status, past the trigger, to test one change from it.
    await world.conn.execute("ALTER TABLE bookings DISABLE TRIGGER bookings_guard_update")
    await world.conn.execute("UPDATE bookings SET status = $2 WHERE id = $1", booking_id, value)
    await world.conn.execute("ALTER TABLE bookings ENABLE TRIGGER bookings_guard_update")


async def test_every_allowed_status_change(world: World):
    b = await world.book(future())
    for old, new in ALLOWED:
        await _force_status(world, b.id, old)
        async with world.conn.transaction():
            moved = await bookings.set_status(world.conn, b.id, new)
        assert moved.status == new, (old, new)


FORBIDDEN = [(o, n) for o in status.STATUSES for n in status.STATUSES
             if o != n and not status.allowed(o, n)]


async def test_forbidden_status_changes_refused_by_python_and_database(world: World):
    b = await world.book(future())
    for old, new in FORBIDDEN:
        await _force_status(world, b.id, old)
        with pytest.raises(bookings.BadTransition):
            async with world.conn.transaction():
                await bookings.set_status(world.conn, b.id, new)
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await world.conn.execute("UPDATE bookings SET status = $2 WHERE id = $1", b.id, new)
        # The transition trigger refused it, not some other check on the row.
        assert refused.value.constraint_name == "bookings_status_transition", (old, new)


async def test_python_and_database_agree_on_transitions(world: World):
    rows = await world.conn.fetch("SELECT from_status, to_status FROM booking_status_transitions")
    in_db = {(r["from_status"], r["to_status"]) for r in rows}
    in_py = {(o, n) for o, targets in status.TRANSITIONS.items() for n in targets}
    assert in_db == in_py


async def test_reschedule_moves_the_join_window_and_respects_clashes(world: World):
    b = await world.book(future(hh=10))
    await world.book(future(hh=12), patient=world.patient2)
    async with world.conn.transaction():
        moved = await bookings.reschedule(world.conn, b.id, future(hh=11), None, window=WINDOW)
    assert moved.starts_at == future(hh=11) and moved.ends_at == future(hh=11, mm=20)
    c = await store.get_by_booking(world.conn, b.id)
    assert c is not None and c.join_opens_at == future(hh=10, mm=45)
    with pytest.raises(bookings.Clash) as err:
        async with world.conn.transaction():
            await bookings.reschedule(world.conn, b.id, future(hh=12, mm=10), None,
                                      window=WINDOW)
    assert err.value.what == "clinician"
    # Moving a booking onto its own old time never clashes with itself.
    async with world.conn.transaction():
        again = await bookings.reschedule(world.conn, b.id, future(hh=11, mm=5), None,
                                          window=WINDOW)
    assert again.starts_at == future(hh=11, mm=5)


async def test_arrived_booking_cannot_be_rescheduled(world: World):
    b = await world.book(future())
    async with world.conn.transaction():
        await bookings.set_status(world.conn, b.id, "arrived")
    with pytest.raises(bookings.BadTransition):
        async with world.conn.transaction():
            await bookings.reschedule(world.conn, b.id, future(hh=15), None, window=WINDOW)
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await world.conn.execute("UPDATE bookings SET during = tstzrange($2, $3) WHERE id = $1",
                                 b.id, future(hh=15), future(hh=16))
    assert refused.value.constraint_name == "bookings_reschedule_status"


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"service_code": "vaccination"}, "mode"),
    ({"mode": "teleport"}, "mode"),
    ({"clinician": "psychologist"}, "clinician_id"),
    ({"centre": "mazzini"}, "clinician_id"),
    ({"mode": "kiosk_video"}, "kiosk_id"),
    ({"kiosk": "kiosk"}, "kiosk_id"),
    ({"minutes": 1}, "ends_at"),
    ({"minutes": 600}, "ends_at"),
    ({"patient": 999999}, "patient_id"),
    ({"nurse": "nurse"}, "nurse_id"),
]


async def test_invalid_bookings_are_refused_with_the_field(world: World):
    for change, field in INVALID:
        kw: dict[str, Any] = {"service": change.get("service_code", "gp_visit"),
                              "mode": change.get("mode", "home_video"),
                              "centre": change.get("centre", "san-siro")}
        if change.get("clinician") == "psychologist":
            kw["clinician"] = world.psychologist
        if change.get("kiosk"):
            kw["kiosk"] = world.kiosk
        if "minutes" in change:
            kw["minutes"] = change["minutes"]
        if "patient" in change:
            kw["patient"] = change["patient"]
        if change.get("nurse"):
            kw["nurse"] = world.nurse
        with pytest.raises(bookings.Invalid) as err:
            await world.book(future(), **kw)
        assert field in err.value.problems, change


async def test_naive_time_and_unknown_service_refused(world: World):
    with pytest.raises(bookings.Invalid):
        await world.book(future().replace(tzinfo=None))
    with pytest.raises(bookings.Invalid):
        await world.book(future(), service="astrology")


async def test_booking_writes_need_a_transaction(world: World):
    with pytest.raises(RuntimeError):
        await bookings.lock_parties(world.conn, 1, 2, None)
    assert timedelta(0) < WINDOW.open_before


async def test_a_real_deadlock_is_retried_not_raised(world: World, db_url: str):
    import asyncio

    await world.conn.execute("CREATE TABLE pair (id int PRIMARY KEY, n int NOT NULL)")
    await world.conn.execute("INSERT INTO pair VALUES (1, 0), (2, 0)")
    pool = await asyncpg.create_pool(db_url, min_size=2, max_size=2)
    attempts: list[int] = []

    def worker(first: int, second: int) -> Any:
        async def work(conn: asyncpg.Connection) -> None:
            attempts.append(first)
            await conn.execute("UPDATE pair SET n = n + 1 WHERE id = $1", first)
            await asyncio.sleep(0.2)  # both hold their first row: one of them must yield
            await conn.execute("UPDATE pair SET n = n + 1 WHERE id = $1", second)
        return work

    try:
        await asyncio.wait_for(asyncio.gather(bookings.with_retry(pool, worker(1, 2)),
                                              bookings.with_retry(pool, worker(2, 1))), 30)
    finally:
        await pool.close()
    assert len(attempts) == 3, "exactly one deadlock, retried once"
    assert await world.conn.fetchval("SELECT sum(n) FROM pair") == 4


async def test_waitlisted_booking_cannot_be_booked_onto_taken_time(world: World):
    waiting = await world.book(future(hh=10))
    await _force_status(world, waiting.id, "waitlist")
    await world.book(future(hh=10), patient=world.patient2)
    with pytest.raises(bookings.Clash) as err:
        async with world.conn.transaction():
            await bookings.set_status(world.conn, waiting.id, "booked")
    assert err.value.what == "clinician"
