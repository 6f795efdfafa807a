"""Who is told what: staff names in sensitive consultations, and who may be invited."""

from __future__ import annotations

from typing import Any

from server.staff import Role


async def _admitted(clients: Any, visit: Any, staff_id: int) -> tuple[Any, Any, dict[str, Any]]:
    patient = await clients.patient(visit)
    doctor = await clients.staff(staff_id, visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    admitted = await patient.expect("admitted", 2)
    return patient, doctor, admitted


async def test_sensitive_consultation_hides_staff_names_from_patient_and_guest(
        clients, visits, gp, make_staff):
    visit = await visits(gp.id, service="psychiatric_followup")
    patient, doctor, admitted = await _admitted(clients, visit, gp.id)
    [peer] = admitted["peers"]
    assert peer["role"] == "clinician" and peer["name"] is None
    # a guest (interpreter) is told the role only too
    await doctor.send("invite", guest=True, label="Interprete")
    token = (await doctor.expect("invited", 2))["link"].split("#guest=")[1]
    guest = await clients.raw()
    welcome = await guest.hello(credential=token)
    # A sensitive consultation's guest waits to be admitted, like the patient; once in, the
    # peers it is told of carry roles, not names.
    assert welcome["state"] == "waiting" and welcome["peers"] == []
    await doctor.send("admit", peer=welcome["peer_id"])
    names = {p["role"]: p["name"] for p in (await guest.expect("admitted", 2))["peers"]}
    assert names == {"clinician": None, "patient": ""}
    assert (await patient.expect("peer_joined", 2))["peer"]["name"] == "Interprete"
    # a second clinician entering: the patient and the guest get peer_joined without a name
    colleague = await make_staff(Role.NURSE)
    await doctor.send("invite", staff_id=colleague.id)
    await doctor.expect("invited", 2)
    third = await clients.staff(colleague.id, visit.room_id)
    # staff still see every name
    assert gp.full_name in {p["name"] for p in third.welcome["peers"]}
    for viewer in (patient, guest):
        joined = (await viewer.expect("peer_joined", 2))["peer"]
        assert joined["role"] == "clinician" and joined["name"] is None
    # a patient resuming gets welcome.peers without names
    await patient.close()
    again = await clients.patient(visit)
    assert again.welcome["resumed"] is True
    assert [p["name"] for p in again.welcome["peers"] if p["role"] == "clinician"] == [None,
                                                                                         None]
    assert "Test nurse" not in str(again.welcome) and gp.full_name not in str(again.welcome)


async def test_ordinary_consultation_names_the_clinician(clients, visits, gp):
    visit = await visits(gp.id)
    _patient, _doctor, admitted = await _admitted(clients, visit, gp.id)
    [peer] = admitted["peers"]
    assert peer["name"] == gp.full_name


async def test_invite_accepts_clinical_staff_of_the_centre(clients, visits, gp, make_staff):
    nurse = await make_staff(Role.NURSE, centres=("san-siro", "mazzini"))
    visit = await visits(gp.id)
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("invite", staff_id=nurse.id, id="ok")
    assert (await doctor.expect("invited", 2))["staff_id"] == nurse.id


async def test_invite_refuses_other_centres_coordinators_and_unknown_staff(clients, visits, gp,
                                                                           make_staff, conn):
    elsewhere = await make_staff(Role.PSYCHOLOGIST, centres=("mazzini",))
    coordinator = await make_staff(Role.COORDINATOR)
    admin = await make_staff(Role.ADMIN)
    gone = await make_staff(Role.GP)
    await conn.execute("UPDATE staff SET active = false WHERE id = $1", gone.id)
    visit = await visits(gp.id)
    doctor = await clients.staff(gp.id, visit.room_id)
    for staff_id in (elsewhere.id, coordinator.id, admin.id, gone.id, 999_999):
        await doctor.send("invite", staff_id=staff_id, id=f"i{staff_id}")
        err = await doctor.expect("error", 2)
        assert (err["code"], err["fatal"], err["id"]) == ("not_allowed", False, f"i{staff_id}")
    await doctor.send("ping")
    await doctor.expect("pong", 2)
    added = await conn.fetchval("SELECT count(*) FROM consultation_participants "
                                "WHERE consultation_id = $1", visit.consultation_id)
    assert added == 0
