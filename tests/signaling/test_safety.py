"""Safety for people at risk (docs/protocol.md, "Safety"): "is it safe to talk now?" answered
silently and seen by the clinicians only; a code word typed in the chat alerting the clinicians
only, never logged nor stored; a sensitive consultation's guest waiting to be admitted; a
revoked guest link refused and its guest removed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from server.consultations import code_word
from server.staff import Role
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import waiting_until

SENSITIVE = "violence_support"
WORD = "Girasole"


@pytest.fixture
async def psy(make_staff: Any) -> Any:
    return await make_staff(Role.PSYCHOLOGIST)


async def nothing_of(client: Any, kind: str, within: float = 0.5) -> None:
    """No message of this type reaches ``client`` within ``within`` seconds."""
    with pytest.raises(TimeoutError):
        await client.expect(kind, within)


async def test_safe_to_talk_is_answered_silently_and_shown_to_the_clinician(clients, visits,
                                                                           psy):
    visit = await visits(psy.id, service=SENSITIVE)
    patient = await clients.patient(visit)
    pid = patient.welcome["peer_id"]
    doctor = await clients.staff(psy.id, visit.room_id)
    [entry] = await waiting_until(doctor, lambda es: len(es) == 1)
    assert entry["safe"] is None and entry["role"] == "patient"
    # Nobody asked yet: the patient cannot answer.
    await patient.send("safe_answer", answer="yes", id="early")
    assert (await patient.expect("error", 2))["code"] == "not_allowed"

    await doctor.send("safe_ask", peer=pid)
    assert (await patient.expect("safe_ask", 2)) == {"type": "safe_ask"}
    await waiting_until(doctor, lambda es: es and es[0]["safe"] == "asked")
    await patient.send("safe_answer", answer="text_only")
    [entry] = await waiting_until(doctor, lambda es: es and es[0]["safe"] == "text_only")
    assert entry["peer_id"] == pid
    # The answer went to the clinician's list only: the patient got nothing back.
    await nothing_of(patient, "waiting_list")
    # Only an answer of the protocol's three.
    await patient.send("safe_answer", answer="help")
    assert (await patient.expect("error", 2))["details"] == {"field": "answer"}
    # Only a clinician asks, and only a waiting patient is asked.
    await patient.send("safe_ask", peer=pid)
    assert (await patient.expect("error", 2))["code"] == "not_allowed"
    await doctor.send("admit", peer=pid)
    await patient.expect("admitted", 2)
    await doctor.send("safe_ask", peer=pid)
    assert (await doctor.expect("error", 2))["code"] == "not_waiting"


async def test_code_word_alerts_the_clinician_only_and_is_never_logged(
        clients, visits, psy, conn, caplog):
    visit = await visits(psy.id, service=SENSITIVE)
    await code_word.set_for_booking(conn, visit.booking_id, SECRET_KEY, WORD)
    stored = await conn.fetchval("SELECT code_word_hash FROM bookings WHERE id = $1",
                                 visit.booking_id)
    assert stored is not None and WORD.lower().encode() not in stored and len(stored) == 32
    patient = await clients.patient(visit)
    doctor = await clients.staff(psy.id, visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 2)
    await doctor.send("invite", guest=True)
    token = (await doctor.expect("invited", 2))["link"].split("#guest=")[1]
    guest = await clients.raw()
    await guest.hello(credential=token)
    await doctor.send("admit", peer=guest.welcome["peer_id"])
    await guest.expect("admitted", 2)

    caplog.set_level(logging.DEBUG)
    await patient.send("chat", text="va bene, nulla di che")
    await doctor.expect("chat", 2)
    await guest.expect("chat", 2)
    await nothing_of(doctor, "safety_alert")
    line = "oggi il GIRASOLE  è fiorito"
    await patient.send("chat", text=line)
    alert = await doctor.expect("safety_alert", 2)
    assert alert["code"] == "code_word" and set(alert) == {"type", "code", "at"}
    # The line itself reaches everyone as any other; the alert reaches nobody but staff.
    assert (await guest.expect("chat", 2))["text"] == line
    await nothing_of(patient, "safety_alert")
    await nothing_of(guest, "safety_alert")
    logged = caplog.text.lower()
    assert "code word alert" in logged
    assert "girasole" not in logged and "fiorito" not in logged
    # A guest typing it raises nothing: only the patient's own word counts.
    await guest.send("chat", text=WORD)
    await doctor.expect("chat", 2)
    await nothing_of(doctor, "safety_alert")
    # The chat is not stored: the word is nowhere in the database but as its hash.
    dump = await conn.fetchval(
        "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM signaling_participants) t")
    assert "girasole" not in (dump or "").lower()


def test_code_word_is_matched_by_its_normalised_form() -> None:
    wanted = code_word.digest(SECRET_KEY, code_word.normalise("  Blue   Sky "))
    assert code_word.said_in(SECRET_KEY, wanted, "the BLUE sky, today")
    assert code_word.said_in(SECRET_KEY, wanted, "ｂｌｕｅ ｓｋｙ")
    assert not code_word.said_in(SECRET_KEY, wanted, "blue skies")
    assert not code_word.said_in("another key", wanted, "blue sky")
    assert not code_word.valid("one two three four five")


async def test_sensitive_guest_waits_for_admission(clients, visits, psy):
    visit = await visits(psy.id, service=SENSITIVE)
    doctor = await clients.staff(psy.id, visit.room_id)
    await doctor.send("invite", guest=True, label="Interprete")
    invited = await doctor.expect("invited", 2)
    assert isinstance(invited["guest_id"], int)
    guest = await clients.raw()
    welcome = await guest.hello(credential=invited["link"].split("#guest=")[1])
    assert welcome["state"] == "waiting" and welcome["peers"] == []
    gid = welcome["peer_id"]
    [entry] = await waiting_until(doctor, lambda es: len(es) == 1)
    assert entry["role"] == "guest" and entry["peer_id"] == gid and entry["name"] == "Interprete"
    # Waiting: nothing relayed to or from it yet.
    await guest.send("chat", text="hello?")
    assert (await guest.expect("error", 2))["code"] == "not_in_call"
    await doctor.send("admit", peer=gid)
    admitted = await guest.expect("admitted", 2)
    assert [p["role"] for p in admitted["peers"]] == ["clinician"]
    assert (await doctor.expect("peer_joined", 2))["peer"]["peer_id"] == gid


async def test_guest_of_an_ordinary_consultation_still_enters_directly(clients, visits, gp):
    visit = await visits(gp.id)
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("invite", guest=True)
    token = (await doctor.expect("invited", 2))["link"].split("#guest=")[1]
    guest = await clients.raw()
    assert (await guest.hello(credential=token))["state"] == "in_call"


async def test_revoked_guest_link_is_refused_and_its_guest_removed(clients, visits, psy):
    visit = await visits(psy.id, service=SENSITIVE)
    doctor = await clients.staff(psy.id, visit.room_id)
    await doctor.send("invite", guest=True)
    invited = await doctor.expect("invited", 2)
    token = invited["link"].split("#guest=")[1]
    guest = await clients.raw()
    await guest.hello(credential=token)
    await doctor.send("admit", peer=guest.welcome["peer_id"])
    await guest.expect("admitted", 2)
    await doctor.expect("peer_joined", 2)

    await doctor.send("revoke_guest", guest=invited["guest_id"])
    err = await guest.expect("error", 2)
    assert err["code"] == "guest_revoked" and err["fatal"] is True
    left = await doctor.expect("peer_left", 2)
    assert left["peer_id"] == guest.welcome["peer_id"]
    with pytest.raises(ConnectionError):
        await guest.recv(2)
    again = await clients.raw()
    assert (await again.hello(credential=token))["code"] == "unauthenticated"
    # Another consultation's link, or none: refused, nothing revoked.
    await doctor.send("revoke_guest", guest=invited["guest_id"] + 1000)
    assert (await doctor.expect("error", 2))["code"] == "unknown_peer"
