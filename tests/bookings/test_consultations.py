"""The consultation contract consumed by signalling: lookups, lifecycle events, credentials."""

from __future__ import annotations

import asyncpg
import pytest

from server.consultations import store
from server.consultations.store import hash_credential
from tests.bookings.conftest import World, future


async def _issue(conn: asyncpg.Connection, cid: int, kind: str, token: str) -> None:
    c = await store.get(conn, cid)
    assert c is not None
    await conn.execute(
        "INSERT INTO patient_credentials (consultation_id, kind, token_hash, valid_from,"
        " valid_until) VALUES ($1, $2, $3, $4, $5)", cid, kind, hash_credential(token),
        c.join_opens_at, c.join_closes_at)


async def test_video_booking_has_a_consultation_with_its_join_window(world: World):
    b = await world.book(future(hh=10), service="psych_session", clinician=world.psychologist)
    c = await store.get_by_booking(world.conn, b.id)
    assert c is not None
    assert c.booking_id == b.id and c.patient_id == world.patient
    assert c.state == "scheduled" and c.booking_status == "booked"
    assert c.sensitive is True and c.service_code == "psych_session"
    assert c.mode == "home_video" and c.kiosk_id is None and c.nurse_id is None
    assert c.clinician_ids == (world.psychologist,)
    assert c.patient_language == "it"
    assert (c.starts_at - c.join_opens_at).total_seconds() == 15 * 60
    assert (c.join_closes_at - c.ends_at).total_seconds() == 30 * 60
    assert (c.ends_at - c.starts_at).total_seconds() == 50 * 60
    assert await store.get(world.conn, c.id) == c
    assert await store.get_by_room(world.conn, c.room_id) == c
    assert len(c.room_id) >= 16


async def test_in_person_booking_has_no_consultation(world: World):
    b = await world.book(future(), mode="in_person")
    assert await store.get_by_booking(world.conn, b.id) is None


async def test_unknown_room_and_id_give_none(world: World):
    assert await store.get(world.conn, 999999) is None
    assert await store.get_by_room(world.conn, "nope") is None
    assert await store.get_by_room(world.conn, "x" * 500) is None


async def test_kiosk_consultation_names_kiosk_and_nurse(world: World):
    b = await world.book(future(), mode="kiosk_video", kiosk=world.kiosk, nurse=world.nurse)
    c = await store.get_by_booking(world.conn, b.id)
    assert c is not None and c.kiosk_id == world.kiosk and c.nurse_id == world.nurse
    nurse_day = await store.list_for_clinician_day(world.conn, world.nurse,
                                                           c.starts_at.date())
    assert [x.id for x in nurse_day] == [c.id]


async def test_list_for_clinician_day_uses_rome_day_and_participants(world: World):
    morning = await world.book(future(hh=0, mm=15))  # 00:15 Rome is still "that day"
    late = await world.book(future(hh=23, mm=30), patient=world.patient2)
    other_day = await world.book(future(days=4, hh=9))
    day = future().date()
    got = [c.booking_id for c in await store.list_for_clinician_day(world.conn,
                                                                             world.gp, day)]
    assert got == [morning.id, late.id]
    assert other_day.id not in got
    c = await store.get_by_booking(world.conn, other_day.id)
    assert c is not None
    await store.add_participant(world.conn, c.id, world.gp2)
    await store.add_participant(world.conn, c.id, world.gp2)  # repeat is harmless
    c2 = await store.get(world.conn, c.id)
    assert c2 is not None and c2.clinician_ids == (world.gp, world.gp2)
    seen = await store.list_for_clinician_day(world.conn, world.gp2,
                                                      future(days=4).date())
    assert [x.id for x in seen] == [c.id]


async def test_lifecycle_events_move_state_booking_and_timestamps(world: World):
    b = await world.book(future())
    c = await store.get_by_booking(world.conn, b.id)
    assert c is not None
    await store.record_event(world.conn, c.id, "arrived")
    await store.record_event(world.conn, c.id, "arrived")  # repeat: no new row
    c1 = await store.get(world.conn, c.id)
    assert c1 is not None and c1.state == "waiting" and c1.booking_status == "arrived"
    await store.record_event(world.conn, c.id, "admitted", staff_id=world.gp)
    await store.record_event(world.conn, c.id, "participant_joined", staff_id=world.gp)
    await store.record_event(world.conn, c.id, "sent_back", staff_id=world.gp)
    c2 = await store.get(world.conn, c.id)
    assert c2 is not None and c2.state == "waiting"
    await store.record_event(world.conn, c.id, "admitted", staff_id=world.gp)
    await store.record_event(world.conn, c.id, "ended", staff_id=world.gp,
                                     detail={"reason": "done"})
    await store.record_event(world.conn, c.id, "ended", staff_id=world.gp)
    await store.record_event(world.conn, c.id, "admitted", staff_id=world.gp)
    c3 = await store.get(world.conn, c.id)
    assert c3 is not None and c3.state == "ended" and c3.booking_status == "fulfilled"
    stamps = await world.conn.fetchrow(
        "SELECT first_arrived_at, admitted_at, ended_at FROM consultations WHERE id = $1", c.id)
    assert stamps["first_arrived_at"] <= stamps["admitted_at"] <= stamps["ended_at"]
    history = [e["event"] for e in await store.events(world.conn, c.id)]
    assert history == ["arrived", "admitted", "participant_joined", "sent_back", "admitted",
                       "ended"]


async def test_end_without_the_patient_does_not_fulfil(world: World):
    b = await world.book(future())
    c = await store.get_by_booking(world.conn, b.id)
    assert c is not None
    await store.record_event(world.conn, c.id, "ended", staff_id=world.gp)
    c1 = await store.get(world.conn, c.id)
    assert c1 is not None and c1.state == "ended" and c1.booking_status == "booked"


async def test_unknown_event_and_consultation_are_refused(world: World):
    b = await world.book(future())
    c = await store.get_by_booking(world.conn, b.id)
    assert c is not None
    with pytest.raises(ValueError):
        await store.record_event(world.conn, c.id, "teleported")
    with pytest.raises(LookupError):
        await store.record_event(world.conn, 999999, "arrived")


async def test_credential_opens_only_its_own_consultation(world: World):
    a = await world.book(future(hh=9))
    b = await world.book(future(hh=11), patient=world.patient2)
    ca = await store.get_by_booking(world.conn, a.id)
    cb = await store.get_by_booking(world.conn, b.id)
    assert ca and cb
    await _issue(world.conn, ca.id, "link", "token-a" * 4)
    await _issue(world.conn, cb.id, "session", "token-b" * 4)
    got_a = await store.resolve_patient_credential(world.conn, "token-a" * 4)
    got_b = await store.resolve_patient_credential(world.conn, "token-b" * 4)
    assert got_a is not None and got_a.id == ca.id
    assert got_b is not None and got_b.id == cb.id
    for bad in ("", "token-a", "x" * 1000, "token-a" * 4 + " "):
        assert await store.resolve_patient_credential(world.conn, bad) is None
    await world.conn.execute("UPDATE patient_credentials SET revoked_at = now()")
    assert await store.resolve_patient_credential(world.conn, "token-a" * 4) is None


async def test_record_event_accepts_a_pool(world: World, db_url: str):
    b = await world.book(future())
    c = await store.get_by_booking(world.conn, b.id)
    assert c is not None
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        await store.record_event(pool, c.id, "arrived")
    finally:
        await pool.close()
    c1 = await store.get(world.conn, c.id)
    assert c1 is not None and c1.state == "waiting"
