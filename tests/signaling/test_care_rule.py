"""One rule for who may see a patient (``server.consultations.care``), and bookings, records and
signalling all answer by it: a clinician of another centre is refused by each of them for the
same patient whose own clinician each of them lets in."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from records import access as records_access
from records import keyring
from server.bookings import access as bookings_access
from server.bookings import views as bookings_views
from server.calls import views as call_views
from server.consultations import care, store
from server.staff import Role
from signaling import actions, auth
from tests.signaling.conftest import staff_session


@pytest.fixture(autouse=True)
def ring(tmp_path: Path) -> None:
    """Records need their keyring (where the ``config`` fixture looks) before the app starts."""
    path = tmp_path / "keyring.json"
    keyring.save(keyring.generate(path), path)


async def _as(client: Any, db_url: str, staff_id: int) -> dict[str, str]:
    client.session.cookie_jar.clear()
    cookies = {"casa_session": await staff_session(db_url, staff_id)}
    client.session.cookie_jar.update_cookies(cookies)
    return cookies


async def test_a_clinician_of_another_centre_is_refused_by_all_three(
        client, clients, visits, gp, make_staff, conn):
    visit = await visits(gp.id)          # a San Siro video consultation, open now
    # The patient comes in with her own link: her GP now cares for her (the rule's "yes").
    await clients.patient(visit)
    arrived = await conn.fetchval("SELECT first_arrived_at FROM consultations WHERE id = $1",
                                  visit.consultation_id)
    assert arrived is not None
    outsider = await make_staff(Role.GP, centres=("gratosoglio",))
    json = {"Accept": "application/json"}

    for person, allowed in ((gp, True), (outsider, False)):
        cookies = await _as(client, clients.db_url, person.id)
        # Bookings: the patient's identity.
        resp = await client.get(f"/api/v1/patients/{visit.patient_id}", headers=json)
        assert resp.status == (200 if allowed else 404), (person.id, await resp.text())
        # Records: the patient's record.
        resp = await client.get(f"/patients/{visit.patient_id}/record")
        assert resp.status == (200 if allowed else 403), (person.id, resp.status)
        # Signalling: the consultation's room.
        socket = await clients.raw(cookies=cookies)
        reply = await socket.hello(room=visit.room_id)
        if allowed:
            assert reply["type"] == "welcome", reply
            # Nor may the patient's GP bring the outsider in: she would come to care.
            await socket.send("invite", staff_id=outsider.id, id="in")
            err = await socket.expect("error", 2)
            assert (err["code"], err["id"]) == ("not_allowed", "in")
        else:
            assert reply["code"] == "room_not_found", reply

    assert not await care.caring_for(conn, outsider.id, visit.patient_id)
    assert await care.caring_for(conn, gp.id, visit.patient_id)


def test_the_rule_is_the_same_sql_and_the_same_functions_everywhere():
    # Bookings' identity scope is the core's scope, which contains the core's care rule.
    assert bookings_access.SCOPE == care.scope_sql("$2", "$3", "$4", "p.id")
    assert care.caring_sql("$2", "p.id") in bookings_access.SCOPE
    assert "care.in_scope(" in inspect.getsource(bookings_access.may_see_patient)
    # Records read notes by the same care rule and the same "on the booking".
    assert records_access.caring_for is care.caring_for
    assert records_access.on_booking is care.on_booking
    assert care.caring_sql("$1", "$2") in records_access.MAY_OPEN
    # "On a booking" is one SQL fragment: in the care rule, in records' check before a note
    # is written, and in the day lists of bookings' pages and of the dashboard.
    assert care.on_booking_sql("$1", "$2") in care.ON_BOOKING
    assert care.on_booking_sql("$1", "care_b.id") in care.caring_sql("$1", "$2")
    assert care.staff_on_sql("$1", "b.id") in bookings_views.FOR_STAFF
    assert care.staff_on_sql("$1", "b.id") in store.LIST_FOR_STAFF_BETWEEN
    # Signalling lets into a room those on the consultation, invites by the core's rule.
    assert vars(auth)["staff_on"] is care.staff_on is vars(actions)["staff_on"]
    assert "care.may_be_added(" in inspect.getsource(actions.Actions.invite)
    # The call page shows names to the staff on the consultation, by the same rule.
    assert "care.staff_on(" in inspect.getsource(call_views)
    # Nobody outside the core spells the rule's tables out.
    root = Path(__file__).resolve().parents[2]
    for package in ("server", "signaling", "records", "web"):
        for path in (root / package).rglob("*.py"):
            if (root / "server" / "consultations") in path.parents:
                continue
            text = path.read_text()
            assert "care_referrals" not in text, path
            assert "consultation_participants" not in text, path


async def test_a_loaded_consultation_has_the_staff_the_sql_says(conn, visits, gp, make_staff):
    nurse = await make_staff(Role.NURSE)
    colleague = await make_staff(Role.GP)
    visit = await visits(gp.id, mode="kiosk_video", nurse_id=nurse.id)
    await store.add_participant(conn, visit.consultation_id, colleague.id)
    c = await store.get(conn, visit.consultation_id)
    assert c is not None
    assert set(care.staff_on(c)) == {gp.id, nurse.id, colleague.id}
    for staff_id in (gp.id, nurse.id, colleague.id):
        assert await care.on_booking(conn, staff_id, visit.booking_id)
    outsider = await make_staff(Role.GP, centres=("gratosoglio",))
    assert outsider.id not in care.staff_on(c)
    assert not await care.on_booking(conn, outsider.id, visit.booking_id)
