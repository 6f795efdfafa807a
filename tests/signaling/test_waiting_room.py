"""The waiting room: arrival, the clinician's view, admit, notices, send back, the window."""

from __future__ import annotations

from datetime import timedelta

from server.consultations import store
from tests.signaling.conftest import on_today


async def test_patient_waits_and_clinician_sees_them_at_once(clients, visits, gp):
    visit = await visits(gp.id, starts_in=on_today())
    dashboard = await clients.staff(gp.id)
    first = await dashboard.expect("waiting_list", 2)
    assert first["entries"] == []
    patient = await clients.patient(visit)
    assert patient.welcome["state"] == "waiting"
    assert patient.welcome["resumed"] is False
    update = await dashboard.expect("waiting_list", 2)
    [entry] = update["entries"]
    assert entry["room"] == visit.room_id
    assert entry["from"] == "home"
    assert entry["nurse_present"] is False
    assert entry["language"] == "it"
    assert entry["name"].startswith("Ada Rossi")
    assert entry["peer_id"] == patient.welcome["peer_id"]


async def test_clinician_admits_and_both_are_in_the_call(clients, visits, gp, conn):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    assert doctor.welcome["state"] == "in_call"
    waiting = await doctor.expect("waiting_list", 2)
    pid = patient.welcome["peer_id"]
    assert [e["peer_id"] for e in waiting["entries"]] == [pid]
    await doctor.send("admit", peer=pid, id="a1")
    admitted = await patient.expect("admitted", 2)
    assert [p["peer_id"] for p in admitted["peers"]] == [doctor.welcome["peer_id"]]
    assert admitted["peers"][0]["name"] == "Test gp"
    joined = await doctor.expect("peer_joined", 2)
    assert joined["peer"]["peer_id"] == pid
    c = await store.get(conn, visit.consultation_id)
    assert c is not None
    assert c.state == "in_call"
    assert c.booking_status == "arrived"


async def test_notice_reaches_the_waiting_patient_translated(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit, lang="en")
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("notice", peer=patient.welcome["peer_id"], code="few_minutes", minutes=5)
    notice = await patient.expect("notice", 2)
    assert notice["code"] == "few_minutes"
    assert notice["minutes"] == 5
    assert "5 minutes" in notice["text"]


async def test_notice_in_italian_for_an_italian_patient(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit, lang="it")
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("notice", peer=patient.welcome["peer_id"], code="running_late")
    notice = await patient.expect("notice", 2)
    assert "ritardo" in notice["text"]


async def test_send_back_and_admit_again(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    pid = patient.welcome["peer_id"]
    await doctor.send("admit", peer=pid)
    await patient.expect("admitted", 2)
    await doctor.send("send_back", peer=pid)
    await patient.expect("sent_back", 2)
    left = await doctor.expect("peer_left", 2)
    assert left["reason"] == "sent_back"
    await patient.send("chat", text="hello?")
    err = await patient.expect("error", 2)
    assert err["code"] == "not_in_call"
    await doctor.send("admit", peer=pid)
    await patient.expect("admitted", 2)


async def test_too_early_patient_is_told_when_to_come_back(clients, visits, gp):
    visit = await visits(gp.id, starts_in=timedelta(hours=3))
    c = await clients.raw()
    reply = await c.hello(credential=visit.token)
    assert reply["type"] == "error"
    assert reply["code"] == "too_early"
    assert reply["fatal"] is True
    assert "opens_at" in reply["details"]


async def test_too_late_patient_is_refused(clients, visits, gp):
    visit = await visits(gp.id, starts_in=timedelta(hours=-3))
    c = await clients.raw()
    reply = await c.hello(credential=visit.token)
    assert reply["code"] == "too_late"


async def test_kiosk_patient_shows_kiosk_and_nurse(clients, visits, gp, make_staff):
    from server.staff import Role

    nurse = await make_staff(Role.NURSE)
    visit = await visits(gp.id, mode="kiosk_video", nurse_id=nurse.id, starts_in=on_today())
    dashboard = await clients.staff(gp.id)
    await dashboard.expect("waiting_list", 2)
    await clients.patient(visit)
    [entry] = (await dashboard.expect("waiting_list", 2))["entries"]
    assert entry["from"] == "kiosk"
    assert entry["kiosk_id"] is not None
    assert entry["nurse_present"] is True
