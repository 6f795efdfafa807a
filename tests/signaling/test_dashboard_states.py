"""The dashboard's view of a patient: waiting, in the call, away (within the grace), left,
ended; and a full refresh after the server's bus connection is cut."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from server.consultations import store
from signaling import bus, events
from signaling.envelope import Envelope
from signaling.keys import ENGINE
from signaling.presence import Member
from signaling.states import Place, Role
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import on_today, states, two_instances, waiting_until

BACK_IN_GRACE = """
UPDATE signaling_participants SET last_seen_at = now() - interval '1 minute'
WHERE peer_id = $1
"""


async def test_dashboard_follows_the_patient_through_every_state(clients, visits, gp):
    visit = await visits(gp.id, starts_in=on_today())
    dashboard = await clients.staff(gp.id)
    assert await waiting_until(dashboard, lambda e: True) == []
    patient = await clients.patient(visit)
    pid = patient.welcome["peer_id"]
    [entry] = await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
    assert entry["connected"] is True and entry["room"] == visit.room_id
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("admit", peer=pid)
    await patient.expect("admitted", 5)
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "in_call")])
    # The clinician in the room still gets waiting lists of whom they can admit: nobody.
    assert await waiting_until(doctor, lambda e: e == []) == []
    # The patient's phone loses the connection: away, their place in the call kept.
    await patient.close()
    [entry] = await waiting_until(dashboard, lambda e: states(e) == [(pid, "away")])
    assert entry["place"] == "in_call" and entry["connected"] is False
    # Back within the grace: in the call again, no new admit.
    patient = await clients.patient(visit)
    assert patient.welcome["resumed"] is True
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "in_call")])
    await doctor.send("send_back", peer=pid)
    await patient.expect("sent_back", 5)
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
    await patient.send("leave")
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "left")])
    # Coming back after leaving: waiting again.
    patient = await clients.patient(visit)
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
    await doctor.send("end")
    await patient.expect("ended", 5)
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "ended")])


async def test_a_patient_who_does_not_come_back_is_shown_left(clients, visits, gp, client,
                                                               db_url):
    visit = await visits(gp.id, starts_in=on_today())
    dashboard = await clients.staff(gp.id)
    patient = await clients.patient(visit)
    pid = patient.welcome["peer_id"]
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
    await patient.close()
    [entry] = await waiting_until(dashboard, lambda e: states(e) == [(pid, "away")])
    assert entry["place"] == "waiting"
    # The 30 s grace, without waiting 30 s: the row's drop is moved a minute back and the
    # grace's end runs as its timer would.
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(BACK_IN_GRACE, pid)
        c = await store.get(conn, visit.consultation_id)
    finally:
        await conn.close()
    assert c is not None
    departures = client.server.app[ENGINE].departures
    member = Member(pid, "patient", Role.PATIENT, Place.WAITING, None, c.starts_at, {})
    await departures.expire(c, member)
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "left")])
    # A dashboard opened now reads the same from the database.
    fresh = await clients.staff(gp.id)
    assert states(await waiting_until(fresh, lambda e: True)) == [(pid, "left")]


async def test_a_dashboard_opened_late_sees_an_ended_consultation(clients, visits, gp):
    visit = await visits(gp.id, starts_in=on_today())
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("end")
    await doctor.expect("ended", 5)
    dashboard = await clients.staff(gp.id)
    [entry] = await waiting_until(dashboard, lambda e: True)
    # Nobody came: the entry says ended, with no patient peer.
    assert (entry["state"], entry["peer_id"], entry["since"]) == ("ended", None, None)


async def _listener_pid(app: object, within: float = 10.0) -> int:
    bus = app[ENGINE].bus  # type: ignore[index]
    deadline = time.monotonic() + within
    while bus._listener is None or bus._listener.is_closed() or not bus.connected.is_set():
        assert time.monotonic() < deadline, "the bus did not connect"
        await asyncio.sleep(0.05)
    pid: int = bus._listener.get_server_pid()
    return pid


async def test_dashboard_is_refreshed_after_the_bus_reconnects(
        config, aiohttp_client, db_url, visits, gp):
    visit = await visits(gp.id, starts_in=on_today())
    a, b = await two_instances(config, aiohttp_client, db_url)
    try:
        dashboard = await b.staff(gp.id)
        patient = await a.patient(visit)
        pid = patient.welcome["peer_id"]
        await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
        # A's events stop reaching B (as when B's listening connection is down): the admit
        # goes unheard there.
        outbox_a = a.app[ENGINE].outbox
        publish = outbox_a.publish
        outbox_a.publish = lambda *_args, **_kw: None
        doctor = await a.staff(gp.id, visit.room_id)
        await doctor.send("admit", peer=pid)
        await patient.expect("admitted", 5)
        outbox_a.publish = publish
        await dashboard.send("ping")
        await dashboard.expect("pong", 5)
        assert all(states(m["entries"]) == [(pid, "waiting")] for m in dashboard.backlog
                   if m.get("type") == "waiting_list")
        # B's listening connection is killed by the database; its bus reconnects and B sends
        # its dashboards a full refresh read from the database.
        old = await _listener_pid(b.app)
        conn = await asyncpg.connect(db_url)
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", old)
        finally:
            await conn.close()
        deadline = time.monotonic() + 15
        while True:
            m = await dashboard.expect("waiting_list", max(0.1, deadline - time.monotonic()))
            if m.get("refresh"):
                break
        assert states(m["entries"]) == [(pid, "in_call")]
        assert await _listener_pid(b.app) != old
    finally:
        await a.close()
        await b.close()


async def test_a_cancelled_consultation_is_not_on_the_live_dashboard(clients, visits, gp, db_url):
    # Two bookings of today (Rome), not overlapping, whatever the hour of the run.
    kept = await visits(gp.id, starts_in=on_today(-25, 30))
    cancelled = await visits(gp.id, starts_in=on_today(5, -60))
    doctor = await clients.staff(gp.id, kept.room_id)
    await doctor.send("end")
    await doctor.expect("ended", 5)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = $1",
                           cancelled.booking_id)
    finally:
        await conn.close()
    dashboard = await clients.staff(gp.id)
    entries = await waiting_until(dashboard, lambda e: True)
    # The ended one is listed (ended); the cancelled one, which the page leaves out, is not.
    assert [(e["room"], e["state"]) for e in entries] == [(kept.room_id, "ended")]


async def test_an_invited_colleague_follows_the_patient_on_another_instance(
        config, aiohttp_client, db_url, visits, gp, make_staff):
    from server.staff import Role

    colleague = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    visit = await visits(gp.id, starts_in=on_today())
    a, b = await two_instances(config, aiohttp_client, db_url)
    try:
        board = await b.staff(colleague.id)
        assert await waiting_until(board, lambda e: True) == []
        patient = await b.patient(visit)
        pid = patient.welcome["peer_id"]
        doctor = await a.staff(gp.id, visit.room_id)
        await doctor.send("invite", staff_id=colleague.id, id="i1")
        assert (await doctor.expect("invited", 5))["staff_id"] == colleague.id
        await waiting_until(board, lambda e: states(e) == [(pid, "waiting")])
        # A change made on B itself (where the patient is) reaches the new colleague too.
        await patient.send("leave")
        await waiting_until(board, lambda e: states(e) == [(pid, "left")])
    finally:
        await a.close()
        await b.close()


async def test_an_instance_that_lost_events_makes_the_others_refresh(clients, visits, gp,
                                                                      db_url):
    visit = await visits(gp.id, starts_in=on_today())
    dashboard = await clients.staff(gp.id)
    patient = await clients.patient(visit)
    pid = patient.welcome["peer_id"]
    await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
    # What an instance whose publishing connection failed for good sends once it is back.
    conn = await asyncpg.connect(db_url)
    try:
        sealer = Envelope(SECRET_KEY, bus.CHANNEL, "i_another_instance")
        await conn.execute("SELECT pg_notify($1, $2)", bus.CHANNEL,
                           sealer.seal(events.encode(events.Resync())))
    finally:
        await conn.close()
    deadline = time.monotonic() + 10
    while True:
        m = await dashboard.expect("waiting_list", max(0.1, deadline - time.monotonic()))
        if m.get("refresh"):
            break
    assert states(m["entries"]) == [(pid, "waiting")]
