"""Guest labels and chat refuse control characters with ``invalid_field`` naming the field
(a NUL in a label was an internal_error: PostgreSQL cannot store it); labels refuse
bidirectional formatting characters too, while chat keeps them (pages show it isolated)."""

from __future__ import annotations

from typing import Any


async def _doctor_and_patient(clients: Any, visits: Any, gp: Any) -> tuple[Any, Any]:
    visit = await visits(gp.id)
    doctor = await clients.staff(gp.id, visit.room_id)
    patient = await clients.patient(visit)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 5)
    return doctor, patient


async def test_guest_labels_with_control_or_bidi_characters_are_invalid(clients, visits, gp):
    doctor, _patient = await _doctor_and_patient(clients, visits, gp)
    for n, label in enumerate(["Inter\x00prete", "Interprete\x07", "\x1b[2J", "Ada\u202eiduS",
                               "x\u2066y", "a\nb"]):
        await doctor.send("invite", guest=True, label=label, id=f"i{n}")
        err = await doctor.expect("error", 5)
        assert (err["code"], err["details"], err["id"]) == ("invalid_field", {"field": "label"},
                                                            f"i{n}"), label
    # The socket stays open and a plain label still works.
    await doctor.send("invite", guest=True, label="Interprete arabo", id="ok")
    assert (await doctor.expect("invited", 5))["id"] == "ok"


async def test_chat_refuses_control_characters_but_keeps_lines_and_bidi(clients, visits, gp):
    doctor, patient = await _doctor_and_patient(clients, visits, gp)
    for n, text in enumerate(["ciao\x00", "ciao\x07", "\x1b[31mrosso", "a\rb", "x\x9by"]):
        await patient.send("chat", text=text, id=f"c{n}")
        err = await patient.expect("error", 5)
        assert (err["code"], err["details"]) == ("invalid_field", {"field": "text"}), text
    for text in ("riga uno\nriga due\tfine", "مرحبا \u202eciao\u202c dottore"):
        await patient.send("chat", text=text)
        assert (await doctor.expect("chat", 5))["text"] == text
