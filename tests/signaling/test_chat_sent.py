"""The sender of a chat line is told what became of it (docs/protocol.md, "Chat"): real
aiohttp WebSocket clients of the real server, on one instance and across two."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from signaling.client import SignalClient
from tests.signaling.conftest import Clients, two_instances, waiting_until

LINE = "riga-di-chat-7f3a"


async def frames_until_pong(client: SignalClient, within: float = 3.0) -> list[dict[str, Any]]:
    """Every frame the client gets before the answer to a ping sent now: the server answers
    in order, so whatever a chat caused on this socket is among them."""
    await client.send("ping", id="fence")
    seen: list[dict[str, Any]] = []
    while True:
        m = await client.recv(within)
        if m["type"] == "pong" and m.get("id") == "fence":
            return seen
        seen.append(m)


async def in_call(clients: Clients, visit: Any, gp: Any,
                  doctor_clients: Clients | None = None) -> tuple[SignalClient, SignalClient]:
    patient = await clients.patient(visit)
    doctor = await (doctor_clients or clients).staff(gp.id, visit.room_id)
    pid = patient.welcome["peer_id"]
    await waiting_until(doctor, lambda e: any(x["peer_id"] == pid for x in e))
    await doctor.send("admit", peer=pid)
    await patient.expect("admitted", 5)
    return patient, doctor


async def test_sender_gets_chat_sent_with_its_id_and_never_its_own_line(
        clients, visits, gp, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    visit = await visits(gp.id)
    patient, doctor = await in_call(clients, visit, gp)
    await patient.send("chat", id="m-4b1e", text=LINE)
    relayed = await doctor.expect("chat", 3)
    assert (relayed["text"], relayed["id"], relayed["from"]) == (
        LINE, "m-4b1e", patient.welcome["peer_id"])
    mine = await frames_until_pong(patient)
    # One answer, no echo of the line, no text in the answer; the same time as the others'.
    assert mine == [{"type": "chat_sent", "id": "m-4b1e", "at": relayed["at"],
                     "delivered": 1}]
    # The doctor's own line: the doctor is answered, the patient gets the line.
    await doctor.send("chat", id="m-77", text="Buongiorno")
    assert (await patient.expect("chat", 3))["text"] == "Buongiorno"
    sent = await doctor.expect("chat_sent", 3)
    assert (sent["id"], sent["delivered"]) == ("m-77", 1)
    assert not [m for m in await frames_until_pong(doctor) if m["type"] == "chat"]
    # A retry is the same line again: relayed again with the same id (receivers show it
    # once), answered again.
    await patient.send("chat", id="m-4b1e", text=LINE)
    again = await doctor.expect("chat", 3)
    assert (again["id"], again["text"]) == ("m-4b1e", LINE)
    assert (await patient.expect("chat_sent", 3))["id"] == "m-4b1e"
    # Neither the line nor its id reaches the log.
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert LINE not in logged and "m-4b1e" not in logged


async def test_nobody_else_in_the_call_means_delivered_zero(clients, visits, gp):
    visit = await visits(gp.id)
    patient, doctor = await in_call(clients, visit, gp)
    # The patient's connection drops: their place is kept for the grace, but nobody is there
    # to read the doctor's line, and it is not kept for later.
    await patient.close()
    await doctor.expect("peer_away", 5)
    await doctor.send("chat", id="m-alone", text="Mi sente?")
    sent = await doctor.expect("chat_sent", 3)
    assert (sent["id"], sent["delivered"]) == ("m-alone", 0)


async def test_a_refused_line_is_answered_by_an_error_with_its_id(clients, visits, gp):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    # Still in the waiting room: not in the call, so the line goes nowhere.
    await patient.send("chat", id="m-early", text="Ci sono")
    err = await patient.expect("error", 3)
    assert (err["code"], err["id"], err["fatal"]) == ("not_in_call", "m-early", False)
    assert not [m for m in await frames_until_pong(patient) if m["type"] == "chat_sent"]


async def test_a_line_to_another_instance_counts_as_delivered(config, aiohttp_client, db_url,
                                                              visits, gp):
    visit = await visits(gp.id)
    a, b = await two_instances(config, aiohttp_client, db_url)
    try:
        patient, doctor = await in_call(a, visit, gp, doctor_clients=b)
        await patient.send("chat", id="m-far", text=LINE)
        relayed = await doctor.expect("chat", 5)
        sent = await patient.expect("chat_sent", 3)
        assert (sent["id"], sent["delivered"], sent["at"]) == ("m-far", 1, relayed["at"])
    finally:
        await a.close()
        await b.close()
