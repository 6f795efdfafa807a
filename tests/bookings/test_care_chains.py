"""A curious colleague of another centre tries every way to become "caring" for a stranger
(issue 9, item 1): booking her in the past, a minute ahead and waiting, marking her own
booking arrived, checking in, rescheduling, referring, break-glass, the bearer-token API.
None of it opens a note, the record, the FHIR export or the patient's contacts; only facts
she cannot create alone do (a check-in by the centre's desk, the patient's own join, a
referral by a clinician already caring). Everything runs through HTTP on the real app."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from records import content, keyring
from records.access import Category
from records.crypto import Envelope
from records.service import Records
from server import staff as staff_store
from server.bookings import tokens
from server.bookings.access import CF_SEARCHES_PER_WINDOW
from server.config import Config
from server.consultations import store
from server.staff import Role
from tests.bookings.conftest import Api, add_patient, open_hours
from tests.conftest import csrf_token, login, post_refused
from tests.factories import Factories

CF = "KVLLNO61B43Z138X"
NOTE = {"text": "pressione alta, controllo", "summary": "Torni tra un mese."}
WAIT = 60


@pytest.fixture(autouse=True)
def ring(config: Config) -> keyring.Keyring:
    """Records need a keyring where the app looks for it, written before the app starts."""
    path: Path = config.keyring_path
    path.parent.mkdir(parents=True, exist_ok=True)
    r = keyring.generate(path)
    keyring.save(r, path)
    return keyring.load(path)


@pytest.fixture
async def stranger(api: Api, ring: keyring.Keyring) -> dict[str, Any]:
    """A San Siro patient with a GP note, a nurse's note and a psychologist's restricted note,
    each written by a clinician of her home centre in a consultation the desk checked in."""
    w = api.world
    conn = w.conn
    pid = await add_patient(conn, "Olena", date(1961, 2, 3))
    await conn.execute("UPDATE patients SET codice_fiscale = $2 WHERE id = $1", pid, CF)
    rec = Records(Envelope(ring))
    notes = {}
    for hours, (who, service, category) in enumerate((
            (w.gp, "gp_visit", Category.GP), (w.nurse, "nurse_visit", Category.NURSE),
            (w.psychologist, "psych_session", Category.PSYCHOLOGICAL)), start=2):
        b = await w.book(datetime.now(UTC) + timedelta(days=hours), service=service,
                         clinician=who, patient=pid, mode="in_person")
        user = await staff_store.get(conn, who)
        assert user is not None
        async with conn.transaction():
            note = await rec.create(conn, user, booking_id=b.id, patient_id=pid,
                                    category=category, content=content.parse(NOTE))
            await rec.sign(conn, user, note.id)
        notes[category.value] = note.id
    return {"patient": pid, "notes": notes}


async def curious(api: Api, make_staff: Any, centre: str = "mazzini") -> dict[str, Any]:
    """A GP of another centre, signed in (session) and with a bearer token."""
    gp = await make_staff(Role.GP, (centre,))
    assert (await login(api.client, gp.email)).status == 303
    session = {"X-CSRF-Token": await csrf_token(api.client, "/home"),
               "Accept": "application/json"}
    _, token = await tokens.create(api.world.conn, gp.id, "curious")
    return {"staff": gp, "session": session, "bearer": {"Authorization": f"Bearer {token}"}}


async def pick_by_codice_fiscale(api: Api, pid: int) -> str:
    """The booking form's search by full codice fiscale offers the stranger with a pick."""
    html = await (await api.client.get(f"/bookings/patients?q={CF}")).text()
    found = re.search(rf"patient={pid}&amp;pick=([0-9a-f]{{32}})", html)
    assert found, "the search by codice fiscale offers the patient for booking"
    return found.group(1)


def body(pid: int, gp: int, starts: datetime, pick: str | None = None,
         **over: Any) -> dict[str, Any]:
    out = {"centre_id": "mazzini", "service_code": "gp_visit", "mode": "home_video",
           "patient_id": pid, "clinician_id": gp, "starts_at": starts.isoformat()}
    if pick:
        out["patient_pick"] = pick
    return out | over


async def locked_out(api: Api, who: dict[str, Any], s: dict[str, Any],
                     booking_id: int) -> None:
    """Nothing about the stranger opens to ``who``, by session or bearer token."""
    pid, notes = s["patient"], s["notes"]
    h = who["session"]
    gets = [f"/api/v1/records/consultations/{booking_id}/notes", f"/patients/{pid}/record",
            f"/patients/{pid}/record.fhir.json", f"/patients/{pid}/record/print",
            f"/consultations/{booking_id}/notes"]
    gets += [f"/api/v1/records/notes/{n}" for n in notes.values()]
    for url in gets:
        resp = await api.client.get(url, headers=h)
        text = await resp.text()
        assert resp.status == 403, (url, resp.status)
        assert "Olena" not in text and "pressione" not in text, url
    for headers in (h, who["bearer"]):
        resp = await api.client.get(f"/api/v1/patients/{pid}", headers=headers)
        assert resp.status == 404, "contacts stay hidden"
        assert "1234567" not in await resp.text()
    assert (await api.client.get(f"/bookings/patients/{pid}")).status == 404
    resp = await api.client.post(f"/api/v1/records/notes/{notes['psychological']}/break-glass",
                                 headers=h, json={"reason": "patient unconscious in the ER"})
    assert resp.status == 403
    resp = await api.client.post(f"/api/v1/records/consultations/{booking_id}/notes", headers=h,
                                 json={"category": "gp", "content": NOTE})
    assert resp.status == 403, "writing a note would make her an author, hence a carer"
    colleague = api.world.gp2
    resp = await api.client.post(f"/api/v1/records/patients/{pid}/referrals", headers=h,
                                 json={"staff_id": colleague})
    assert resp.status == 403


async def reads_gp_note(api: Api, who: dict[str, Any], s: dict[str, Any]) -> bool:
    resp = await api.client.get(f"/api/v1/records/notes/{s['notes']['gp']}",
                                headers=who["session"])
    return bool(resp.status == 200)


async def test_chain_a_a_booking_in_the_past_is_refused_and_time_opens_nothing(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    x = await curious(api, make_staff)
    pid, me = stranger["patient"], x["staff"].id
    pick = await pick_by_codice_fiscale(api, pid)
    now = datetime.now(UTC)
    for headers in (x["session"], x["bearer"]):
        resp = await api.client.post("/api/v1/bookings", headers=headers,
                                     json=body(pid, me, now - timedelta(hours=1), pick))
        assert resp.status == 422, await resp.text()
        assert "starts_at" in (await resp.json())["error"]["details"]["fields"]
    # Only a coordinator gives a reason for the past.
    resp = await api.client.post("/api/v1/bookings", headers=x["session"], json=body(
        pid, me, now - timedelta(hours=1), pick, past_reason="visit registered late"))
    assert resp.status == 403
    # One minute ahead, then time moves on: the start has passed, and nothing opens.
    resp = await api.client.post("/api/v1/bookings", headers=x["session"],
                                 json=body(pid, me, now + timedelta(minutes=1), pick))
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["id"]
    await api.world.conn.execute(
        "UPDATE bookings SET during = tstzrange(now() - interval '10 minutes',"
        " now() + interval '10 minutes') WHERE id = $1", booking)
    await locked_out(api, x, stranger, booking)
    # Rescheduling her own booking into the past is refused as well.
    resp = await api.client.post(f"/api/v1/bookings/{booking}/reschedule",
                                 headers=x["session"],
                                 json={"starts_at": (now - timedelta(days=1)).isoformat()})
    assert resp.status == 422


async def test_chain_b_marking_her_own_booking_arrived_opens_nothing(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    x = await curious(api, make_staff)
    pid, me = stranger["patient"], x["staff"].id
    pick = await pick_by_codice_fiscale(api, pid)
    start = datetime.now(UTC) + timedelta(minutes=30)
    resp = await api.client.post("/api/v1/bookings", headers=x["session"],
                                 json=body(pid, me, start, pick))
    assert resp.status == 201, await resp.text()
    booking = (await resp.json())["id"]
    resp = await api.client.post(f"/api/v1/bookings/{booking}/status", headers=x["session"],
                                 json={"status": "arrived"})
    assert resp.status == 200, await resp.text()
    await locked_out(api, x, stranger, booking)
    # Checked in and fulfilled by herself, through the bearer API: still nothing.
    resp = await api.client.post("/api/v1/bookings", headers=x["bearer"],
                                 json=body(pid, me, start + timedelta(hours=2), pick))
    second = (await resp.json())["id"]
    for state in ("checked-in", "fulfilled"):
        resp = await api.client.post(f"/api/v1/bookings/{second}/status", headers=x["bearer"],
                                     json={"status": state})
        assert resp.status == 200, await resp.text()
    await locked_out(api, x, stranger, second)
    # Rescheduled to start now: time is no fact of care.
    resp = await api.client.post("/api/v1/bookings", headers=x["session"],
                                 json=body(pid, me, start + timedelta(hours=5), pick))
    third = (await resp.json())["id"]
    await open_hours(api.world.conn, me, "mazzini")
    resp = await api.client.post(f"/api/v1/bookings/{third}/reschedule", headers=x["session"],
                                 json={"starts_at": datetime.now(UTC).isoformat()})
    assert resp.status == 200, await resp.text()
    await locked_out(api, x, stranger, third)


async def test_the_desk_checking_the_patient_in_makes_her_a_carer(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    x = await curious(api, make_staff)
    pid, me = stranger["patient"], x["staff"].id
    pick = await pick_by_codice_fiscale(api, pid)
    resp = await api.client.post("/api/v1/bookings", headers=x["session"], json=body(
        pid, me, datetime.now(UTC) + timedelta(minutes=20), pick, mode="in_person"))
    booking = (await resp.json())["id"]
    # A coordinator of another centre cannot even see that booking.
    resp = await api.client.post(f"/api/v1/bookings/{booking}/status", headers=api.coordinator,
                                 json={"status": "checked-in"})
    assert resp.status == 404
    assert not await reads_gp_note(api, x, stranger)
    desk = await make_staff(Role.COORDINATOR, ("mazzini",))
    _, token = await tokens.create(api.world.conn, desk.id, "desk")
    resp = await api.client.post(f"/api/v1/bookings/{booking}/status", json={
        "status": "checked-in"}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    who = await api.world.conn.fetchrow(
        "SELECT by_kind, by_staff_id FROM booking_status_changes WHERE booking_id = $1"
        " AND to_status = 'checked-in'", booking)
    assert dict(who) == {"by_kind": "staff", "by_staff_id": desk.id}
    assert await reads_gp_note(api, x, stranger)
    assert (await api.client.get(f"/patients/{pid}/record")).status == 200
    assert (await api.client.get(f"/api/v1/patients/{pid}", headers=x["bearer"])).status == 200
    # The restricted note still needs break-glass, which she may now ask for.
    resp = await api.client.post(
        f"/api/v1/records/notes/{stranger['notes']['psychological']}/break-glass",
        headers=x["session"], json={"reason": "patient unconscious in the ER"})
    assert resp.status == 200, await resp.text()


async def test_the_patients_own_join_makes_her_a_carer(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    x = await curious(api, make_staff)
    pid, me = stranger["patient"], x["staff"].id
    pick = await pick_by_codice_fiscale(api, pid)
    resp = await api.client.post("/api/v1/bookings", headers=x["session"], json=body(
        pid, me, datetime.now(UTC) + timedelta(minutes=5), pick))
    booking = (await resp.json())["id"]
    cid = (await resp.json())["consultation"]["id"]
    # She joins her own consultation (as signalling records it): no patient, no care.
    await store.record_event(api.world.conn, cid, "participant_joined", staff_id=me)
    assert not await reads_gp_note(api, x, stranger)
    await locked_out(api, x, stranger, booking)
    # What signalling records when the patient joins with her own link or code.
    await store.record_event(api.world.conn, cid, "arrived")
    assert await reads_gp_note(api, x, stranger)


async def test_a_referral_by_a_carer_makes_a_colleague_a_carer(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    x = await curious(api, make_staff)
    pid = stranger["patient"]
    assert not await reads_gp_note(api, x, stranger)
    gp = await staff_store.get(api.world.conn, api.world.gp)
    assert gp is not None
    assert (await login(api.client, gp.email)).status == 303
    h = {"X-CSRF-Token": await csrf_token(api.client, "/home"), "Accept": "application/json"}
    resp = await api.client.post(f"/api/v1/records/patients/{pid}/referrals", headers=h,
                                 json={"staff_id": x["staff"].id})
    assert resp.status == 201, await resp.text()
    row = await api.world.conn.fetchrow(
        "SELECT actor_staff_id, detail->>'to_staff_id' AS to FROM audit_log"
        " WHERE action = 'referral' AND patient_id = $1", pid)
    assert row["actor_staff_id"] == gp.id and row["to"] == str(x["staff"].id)
    assert (await login(api.client, x["staff"].email)).status == 303
    x["session"]["X-CSRF-Token"] = await csrf_token(api.client, "/home")
    assert await reads_gp_note(api, x, stranger)


async def test_a_coordinator_books_in_the_past_only_with_a_reason(api: Api):
    w = api.world
    past = datetime.now(UTC) - timedelta(days=1)
    plain = {"centre_id": "san-siro", "service_code": "gp_visit", "mode": "in_person",
             "patient_id": w.patient, "clinician_id": w.gp, "starts_at": past.isoformat()}
    assert (await api.post("/api/v1/bookings", plain)).status == 422
    short = await api.post("/api/v1/bookings", plain | {"past_reason": "late"})
    assert short.status == 422
    resp = await api.post("/api/v1/bookings",
                          plain | {"past_reason": "visit while the system was down"})
    assert resp.status == 201, await resp.text()
    row = await w.conn.fetchrow("SELECT staff_id, reason FROM booking_past_reasons"
                                " WHERE booking_id = $1", (await resp.json())["id"])
    assert dict(row) == {"staff_id": w.coordinator, "reason": "visit while the system was down"}


async def test_codice_fiscale_searches_are_audited_and_limited_atomically(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    x = await curious(api, make_staff)
    tries = CF_SEARCHES_PER_WINDOW + 10
    answers = await asyncio.wait_for(asyncio.gather(*(
        api.client.get("/api/v1/patients", params={"q": CF}, headers=x["bearer"])
        for _ in range(tries))), WAIT)
    statuses = sorted(r.status for r in answers)
    assert statuses == [200] * CF_SEARCHES_PER_WINDOW + [429] * 10
    rows = await api.world.conn.fetch(
        "SELECT patient_id, detail FROM audit_log WHERE action = 'patient_search'"
        " AND actor_staff_id = $1", x["staff"].id)
    assert len(rows) == CF_SEARCHES_PER_WINDOW
    assert {r["patient_id"] for r in rows} == {stranger["patient"]}
    # A name search is not limited (it finds only her own patients).
    assert (await api.client.get("/api/v1/patients", params={"q": "Olena"},
                                 headers=x["bearer"])).status == 200


async def test_refusals_on_clinical_routes_are_audited_and_bounded(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    from records.refusals import REFUSALS_PER_WINDOW

    x = await curious(api, make_staff)
    guesses = [stranger["patient"] + i for i in range(REFUSALS_PER_WINDOW + 15)]
    answers = await asyncio.wait_for(asyncio.gather(*(
        api.client.get(f"/patients/{g}/record", headers=x["session"]) for g in guesses)), WAIT)
    assert {r.status for r in answers} == {403}
    rows = await api.world.conn.fetch(
        "SELECT action, patient_id, detail FROM audit_log WHERE actor_staff_id = $1",
        x["staff"].id)
    refused = [r for r in rows if r["action"] == "refused"]
    assert len(refused) == REFUSALS_PER_WINDOW
    assert [r["action"] for r in rows].count("refusals_capped") == 1
    assert {r["patient_id"] for r in refused} <= set(guesses)
    used = await api.world.conn.fetchval(
        "SELECT used FROM staff_quotas WHERE staff_id = $1 AND kind = 'refusal_audit'",
        x["staff"].id)
    assert used == len(guesses)


async def test_request_log_lines_carry_the_staff_id_and_never_the_name(
        api: Api, make_staff: Any, caplog: pytest.LogCaptureFixture):
    from server.logs import JsonFormatter

    x = await curious(api, make_staff)
    caplog.set_level(logging.INFO, logger="casa.http")
    await api.client.get("/api/v1/centres", headers=x["session"])
    await api.client.get("/api/v1/centres", headers=x["bearer"])
    lines = [r for r in caplog.records if r.name == "casa.http" and r.getMessage() == "request"]
    assert [getattr(r, "staff_id", None) for r in lines[-2:]] == [x["staff"].id] * 2
    text = "\n".join(JsonFormatter().format(r) for r in lines)
    assert x["staff"].email not in text and x["staff"].full_name not in text


async def test_an_invitation_into_a_consultation_the_patient_never_joined_opens_nothing(
        api: Api, make_staff: Any, stranger: dict[str, Any], factories: Factories):
    x = await curious(api, make_staff)
    friend = await make_staff(Role.GP, ("mazzini",))
    pid = stranger["patient"]
    # Her colleague books the stranger and invites her into the consultation.
    b = await factories.booking(pid, friend.id, datetime.now(UTC) + timedelta(minutes=10),
                                centre="mazzini", created_by=friend.id)
    c = await store.get_by_booking(api.world.conn, b.id)
    assert c is not None
    await store.add_participant(api.world.conn, c.id, x["staff"].id)
    await store.record_event(api.world.conn, c.id, "participant_joined",
                                     staff_id=x["staff"].id)
    await locked_out(api, x, stranger, b.id)
    # The patient joins with her own link: everyone on the consultation now cares.
    await store.record_event(api.world.conn, c.id, "arrived")
    assert await reads_gp_note(api, x, stranger)


async def test_the_booking_page_neither_moves_her_booking_into_the_past_nor_makes_care(
        api: Api, make_staff: Any, stranger: dict[str, Any]):
    x = await curious(api, make_staff)
    pid, me = stranger["patient"], x["staff"].id
    pick = await pick_by_codice_fiscale(api, pid)
    resp = await api.client.post("/api/v1/bookings", headers=x["session"], json=body(
        pid, me, datetime.now(UTC) + timedelta(hours=2), pick, mode="in_person"))
    booking = (await resp.json())["id"]
    page = f"/bookings/{booking}"
    token = await csrf_token(api.client, page)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    refused = await post_refused(api.client, page, {"csrf_token": token,
                                                    "action": "reschedule",
                                                    "starts_at": yesterday})
    assert refused.status == 422
    for action in ("checked-in", "fulfilled"):
        resp = await api.client.post(page, data={"csrf_token": token, "action": action},
                                     allow_redirects=False)
        assert resp.status == 303, action
    await locked_out(api, x, stranger, booking)
