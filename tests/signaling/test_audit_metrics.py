"""Joins are audited; /metrics shows the signalling state."""

from __future__ import annotations


async def test_every_join_is_audited(clients, visits, gp, conn):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    await clients.staff(gp.id, visit.room_id)
    await patient.close()
    await clients.patient(visit)   # a resume is a join too
    rows = await conn.fetch("SELECT action, actor_kind, actor_staff_id, patient_id, booking_id, "
                            "detail FROM audit_log WHERE action = 'consultation_join' ORDER BY id")
    assert [(r["actor_kind"], r["actor_staff_id"]) for r in rows] == [
        ("patient", None), ("staff", gp.id), ("patient", None)]
    assert {r["booking_id"] for r in rows} == {visit.booking_id}
    assert {r["patient_id"] for r in rows} == {visit.patient_id}
    assert '"resumed": true' in rows[-1]["detail"].replace(":true", ": true")
    assert visit.token not in "".join(r["detail"] for r in rows)


async def test_metrics_show_peers_waiting_relays_and_errors(client, clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    text = await (await client.get("/metrics")).text()
    assert "casa_signaling_peers 2.0" in text
    assert 'casa_signaling_consultations{state="waiting"} 1.0' in text
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 2)
    await patient.send("chat", text="hi")
    await doctor.expect("chat", 2)
    await patient.send_raw("nope")
    await patient.expect("error", 2)
    text = await (await client.get("/metrics")).text()
    assert 'casa_signaling_consultations{state="in_call"} 1.0' in text
    assert "casa_signaling_messages_relayed_total 1.0" in text
    assert 'casa_signaling_errors_total{code="bad_json"} 1.0' in text
    assert "casa_signaling_hello_seconds_count 2.0" in text


async def test_own_origin_is_accepted(clients, visits, gp, ws_url):
    visit = await visits(gp.id)
    origin = ws_url.replace("ws://", "http://").removesuffix("/ws")
    c = await clients.raw(headers={"Origin": origin})
    assert (await c.hello(credential=visit.token))["type"] == "welcome"
