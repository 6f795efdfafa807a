"""Who may learn who a patient is, and who may write in a consultation (review findings 3 and
4): a clinician with nothing to do with the patient sees neither name nor notes on any records
route; a booking makes nobody a carer until the patient came (``server.consultations.care``);
notes are written only by the consultation's own clinician, nurse or invited participants."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest

from records import content
from records.access import Category
from records.errors import Denied
from server.consultations import store
from server.staff import Role
from tests.records.conftest import add_participant, api_headers, login_as, set_status_as

NOTE = {"text": "follow-up in two weeks", "summary": "Come back in two weeks."}


def _routes(patient: int, booking: int, consultation: int) -> list[str]:
    return [f"/patients/{patient}/record", f"/patients/{patient}/record.fhir.json",
            f"/patients/{patient}/record/print", f"/consultations/{booking}/notes",
            f"/records/consultations/{consultation}/panel",
            f"/api/v1/records/consultations/{booking}/notes"]


@pytest.fixture
async def mazzini(conn: Any, rec: Any, make_staff: Any, make_patient: Any,
                  make_booking: Any) -> dict[str, Any]:
    """A Mazzini patient, their GP's started consultation with a signed GP note."""
    gp = await make_staff(Role.GP, ("mazzini",))
    patient = await make_patient("mazzini")
    booking = await make_booking(patient, gp.id, started=True)
    consultation = await add_participant(conn, booking, gp.id)
    note = await rec.create(conn, gp, booking_id=booking, patient_id=patient,
                            category=Category.GP, content=content.parse(NOTE))
    await rec.sign(conn, gp, note.id)
    name: str = await conn.fetchval("SELECT given_name FROM patients WHERE id = $1", patient)
    return {"gp": gp, "patient": patient, "booking": booking, "consultation": consultation,
            "note": note, "name": name}


async def test_gp_of_another_centre_sees_no_patient_on_any_records_route(
        client, db_url, make_staff, mazzini):
    outsider = await make_staff(Role.GP, ("gratosoglio",))
    await login_as(client, outsider, db_url)
    h = {"Accept": "application/json"}
    for url in _routes(mazzini["patient"], mazzini["booking"], mazzini["consultation"]):
        resp = await client.get(url, headers=h if url.startswith("/api/") else None)
        body = await resp.text()
        assert resp.status in (403, 404), (url, resp.status)
        assert mazzini["name"] not in body and "Paziente" not in body, url
        assert "follow-up" not in body, url
    # An unknown patient or booking is refused the same way: ids cannot be probed.
    for url in _routes(mazzini["patient"] + 999, mazzini["booking"] + 999,
                       mazzini["consultation"] + 999):
        assert (await client.get(url)).status in (403, 404), url


async def test_the_patients_own_gp_still_opens_every_records_route(client, db_url, mazzini):
    await login_as(client, mazzini["gp"], db_url)
    for url in _routes(mazzini["patient"], mazzini["booking"], mazzini["consultation"]):
        resp = await client.get(url)
        assert resp.status == 200, (url, resp.status)
    page = await (await client.get(f"/patients/{mazzini['patient']}/record")).text()
    assert mazzini["name"] in page and "follow-up" in page


async def test_own_booking_opens_nothing_until_the_desk_checks_the_patient_in(
        client, conn, db_url, make_staff, make_booking, mazzini):
    visiting = await make_staff(Role.GP, ("gratosoglio",))
    future = await make_booking(mazzini["patient"], visiting.id)
    await login_as(client, visiting, db_url)
    h = await api_headers(client)
    for url in (f"/patients/{mazzini['patient']}/record", f"/consultations/{future}/notes",
                f"/api/v1/records/notes/{mazzini['note'].id}"):
        resp = await client.get(url)
        assert resp.status == 403, url
        assert mazzini["name"] not in await resp.text(), url
    # Nor can a note be started there, which would make the visitor an author (a carer).
    resp = await client.post(f"/api/v1/records/consultations/{future}/notes", headers=h,
                             json={"category": "gp", "content": NOTE})
    assert resp.status == 403
    # Marking her own booking arrived makes her no carer.
    await set_status_as(conn, future, "arrived", visiting.id)
    assert (await client.get(f"/api/v1/records/notes/{mazzini['note'].id}")).status == 403
    # Checked in by the centre's desk: the patient came, the visitor is caring.
    other = await make_booking(mazzini["patient"], visiting.id)
    await make_booking.check_in(conn, other)
    assert (await client.get(f"/api/v1/records/notes/{mazzini['note'].id}")).status == 200
    assert (await client.get(f"/consultations/{future}/notes")).status == 200
    resp = await client.post(f"/api/v1/records/consultations/{future}/notes", headers=h,
                             json={"category": "gp", "content": NOTE})
    assert resp.status == 201, await resp.text()


async def test_future_booking_gives_no_read_and_no_break_glass(conn, rec, make_staff,
                                                               make_booking, mazzini):
    visiting = await make_staff(Role.GP, ("gratosoglio",))
    psy = await make_staff(Role.PSYCHOLOGIST, ("mazzini",))
    psy_booking = await make_booking(mazzini["patient"], psy.id, "psych_session", started=True)
    restricted = await rec.create(conn, psy, booking_id=psy_booking,
                                  patient_id=mazzini["patient"],
                                  category=Category.PSYCHOLOGICAL, content=content.parse(NOTE))
    await rec.sign(conn, psy, restricted.id)
    booking = await make_booking(mazzini["patient"], visiting.id)
    with pytest.raises(Denied):
        await rec.read(conn, visiting, mazzini["note"].id)
    with pytest.raises(Denied):
        await rec.break_glass(conn, visiting, restricted.id, "patient unconscious in ER")
    assert await rec.history(conn, visiting, mazzini["patient"]) == []
    # The same booking once its start time has passed: time is no fact of care.
    await conn.execute("UPDATE bookings SET during = tstzrange(now() - interval '5 minutes',"
                       " now() + interval '15 minutes') WHERE id = $1", booking)
    with pytest.raises(Denied):
        await rec.read(conn, visiting, mazzini["note"].id)
    # The patient joins the consultation with her own link (what signalling records).
    consultation = await add_participant(conn, booking, visiting.id)
    await store.record_event(conn, consultation, "arrived")
    assert (await rec.read(conn, visiting, mazzini["note"].id)).readable


async def test_gp_cannot_write_in_a_psychologists_consultation(
        client, db_url, make_staff, make_booking, mazzini):
    psy = await make_staff(Role.PSYCHOLOGIST, ("mazzini",))
    session = await make_booking(mazzini["patient"], psy.id, "violence_support", started=True)
    # The patient's own GP: caring for the patient, but not on this consultation.
    await login_as(client, mazzini["gp"], db_url)
    h = await api_headers(client)
    for category in ("gp", "psychiatric"):
        resp = await client.post(f"/api/v1/records/consultations/{session}/notes", headers=h,
                                 json={"category": category, "content": NOTE})
        assert resp.status == 403, (category, await resp.text())
    assert (await client.get(f"/consultations/{session}/notes")).status == 403
    # The psychologist writes there.
    await login_as(client, psy, db_url)
    h = await api_headers(client)
    resp = await client.post(f"/api/v1/records/consultations/{session}/notes", headers=h,
                             json={"category": "violence_support", "content": NOTE})
    assert resp.status == 201, await resp.text()


async def test_the_consultations_clinician_nurse_and_participant_write_there(
        conn, rec, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("gratosoglio",))  # not the patient's centre
    nurse = await make_staff(Role.NURSE, ("gratosoglio",))
    invited = await make_staff(Role.GP, ("giambellino-lorenteggio",))
    bystander = await make_staff(Role.GP, ("giambellino-lorenteggio",))
    patient = await make_patient("mazzini")
    booking = await make_booking(patient, gp.id, started=True, nurse_id=nurse.id)
    await add_participant(conn, booking, invited.id)
    for who, category in ((gp, Category.GP), (nurse, Category.NURSE), (invited, Category.GP)):
        note = await rec.create(conn, who, booking_id=booking, patient_id=patient,
                                category=category, content=content.parse(NOTE))
        assert note.author_id == who.id
    with pytest.raises(Denied):
        await rec.create(conn, bystander, booking_id=booking, patient_id=patient,
                         category=Category.GP, content=content.parse(NOTE))
    # A cancelled consultation takes no more notes, even from its clinician.
    other = await make_booking(patient, gp.id)
    await set_status_as(conn, other, "cancelled", None)
    with pytest.raises(Denied):
        await rec.create(conn, gp, booking_id=other, patient_id=patient,
                         category=Category.GP, content=content.parse(NOTE))


async def test_participant_of_a_future_consultation_is_not_yet_caring(
        conn, rec, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("mazzini",))
    invited = await make_staff(Role.GP, ("gratosoglio",))
    patient = await make_patient("mazzini")
    booking = await make_booking(patient, gp.id)
    await add_participant(conn, booking, invited.id)
    with pytest.raises(Denied):
        await rec.create(conn, invited, booking_id=booking, patient_id=patient,
                         category=Category.GP, content=content.parse(NOTE))
    # Checked in by the desk: the patient came.
    await make_booking.check_in(conn, booking)
    await rec.create(conn, invited, booking_id=booking, patient_id=patient,
                     category=Category.GP, content=content.parse(NOTE))


async def test_a_check_in_by_the_bookings_own_clinician_makes_no_participant_caring(
        conn, rec, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("mazzini",))
    invited = await make_staff(Role.GP, ("gratosoglio",))
    patient = await make_patient("mazzini")
    booking = await make_booking(patient, gp.id)
    await add_participant(conn, booking, invited.id)
    await set_status_as(conn, booking, "checked-in", gp.id)
    with pytest.raises(Denied):
        await rec.create(conn, invited, booking_id=booking, patient_id=patient,
                         category=Category.GP, content=content.parse(NOTE))


async def test_unknown_and_forbidden_call_panels_answer_alike(client, conn, db_url, make_staff,
                                                              mazzini):
    """A curious colleague probing consultation ids on the call panel learns nothing: an id
    that does not exist and one she has no business with get the same status, the same page
    and (within noise) the same time."""
    outsider = await make_staff(Role.GP, ("gratosoglio",))
    await login_as(client, outsider, db_url)
    unknown = int(await conn.fetchval("SELECT max(id) FROM consultations")) + 1000
    forbidden = mazzini["consultation"]

    async def probe(cid: int) -> tuple[int, str, float]:
        t0 = time.perf_counter()
        resp = await client.get(f"/records/consultations/{cid}/panel",
                                headers={"Accept": "text/html"})
        body = await resp.text()
        # The page echoes its own path (the language form's "next"): the id is all that differs.
        return resp.status, body.replace(f"/{cid}/", "/ID/"), time.perf_counter() - t0

    times: dict[int, list[float]] = {unknown: [], forbidden: []}
    answers = set()
    for _ in range(15):
        for cid in (unknown, forbidden):
            status, body, took = await probe(cid)
            answers.add((status, body))
            times[cid].append(took)
    assert len(answers) == 1, "unknown and forbidden consultations answer differently"
    ((status, body),) = answers
    assert status == 403 and 'data-error-code="note_forbidden"' in body
    assert mazzini["name"] not in body
    slow, fast = sorted(statistics.median(t) for t in times.values())[::-1]
    assert slow <= 2 * fast + 0.005, times
