"""A dropped connection does not end anything: the peer resumes its place within the grace."""

from __future__ import annotations

import asyncio

from signaling.keys import ENGINE
from signaling.peer import CallPeer


async def test_page_reload_resumes_the_call_without_a_new_admit(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    pid = patient.welcome["peer_id"]
    d_peer = CallPeer(doctor)
    p_peer = CallPeer(patient)
    d_peer.start()
    p_peer.start()
    await doctor.send("admit", peer=pid)
    try:
        await d_peer.wait_frames(pid, 3, 20)
        await p_peer.close()             # the page reloads: socket and peer connection gone
        away = await d_peer.next_event("peer_away", 3)
        assert away["peer_id"] == pid
        again = await clients.patient(visit)
        assert again.welcome["resumed"] is True
        assert again.welcome["state"] == "in_call"
        assert again.welcome["peer_id"] == pid
        assert [p["peer_id"] for p in again.welcome["peers"]] == [d_peer.peer_id]
        resumed = await d_peer.next_event("peer_resumed", 3)
        assert resumed["peer_id"] == pid
        p2 = CallPeer(again)
        p2.start()
        try:
            await d_peer.wait_frames(pid, 5, 20)
            await p2.wait_frames(d_peer.peer_id, 5, 20)
        finally:
            await p2.close()
    finally:
        await d_peer.close()


async def test_waiting_patient_keeps_place_and_since(clients, visits, gp):
    visit = await visits(gp.id)
    first = await clients.patient(visit)
    since = first.welcome["since"]
    await first.close()
    again = await clients.patient(visit)
    assert again.welcome["state"] == "waiting"
    assert again.welcome["resumed"] is True
    assert again.welcome["since"] == since


async def test_second_connection_replaces_the_first(clients, visits, gp):
    visit = await visits(gp.id)
    first = await clients.patient(visit)
    second = await clients.patient(visit)
    err = await first.expect("error", 2)
    assert err["code"] == "replaced"
    assert second.welcome["resumed"] is True
    await second.send("ping", id="x")
    assert (await second.expect("pong", 2))["id"] == "x"


async def test_after_the_grace_the_patient_has_left(client, clients, visits, gp, conn):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    pid = patient.welcome["peer_id"]
    await doctor.send("admit", peer=pid)
    await patient.expect("admitted", 2)
    await patient.close()
    await doctor.expect("peer_away", 3)
    # Thirty seconds pass (moved in the database rather than waited for).
    await conn.execute("UPDATE signaling_participants SET last_seen_at = now() - "
                       "interval '31 seconds' WHERE peer_id = $1", pid)
    app = client.app
    room = app[ENGINE].hub.rooms[str(visit.consultation_id)]
    assert room.consultation is not None
    await app[ENGINE].departures.expire(room.consultation, room.members[pid])
    left = await doctor.expect("peer_left", 2)
    assert left == {"type": "peer_left", "peer_id": pid, "reason": "timeout"}
    back = await clients.patient(visit)
    assert back.welcome["state"] == "waiting" and back.welcome["resumed"] is False
    await asyncio.sleep(0)


async def test_leave_is_immediate(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 2)
    await patient.send("leave")
    left = await doctor.expect("peer_left", 2)
    assert left["reason"] == "left"
