"""After the join window closes, a consultation under way keeps its people: a patient who
arrived (waiting or admitted) and whose connection dropped comes back until the consultation
ends. Time is moved by moving the window into the past, never by sleeping."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.config import Config
from server.consultations import store
from tests.conftest import SECRET_KEY
from tests.pg import serving_url


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Config:
    """With a TURN server configured (never reached here), so welcomes carry credentials."""
    return Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                  turn_secret="late-return-turn-secret",
                  turn_urls=("turn:127.0.0.1:3478?transport=udp",))

CLOSE_WINDOW = """
UPDATE consultations SET join_opens_at = now() - $2::interval - interval '2 hours',
    join_closes_at = now() - $2::interval - interval '1 second' WHERE id = $1
"""
EXPIRE_CREDENTIALS = """
UPDATE patient_credentials SET valid_from = now() - interval '2 hours',
    valid_until = now() - interval '1 second' WHERE consultation_id = $1
"""


async def _window_closes(conn: asyncpg.Connection, consultation_id: int,
                         ago: timedelta = timedelta(0)) -> None:
    """The join window (and so every credential's validity) ended ``ago`` before now."""
    await conn.execute(CLOSE_WINDOW, consultation_id, ago)
    await conn.execute(EXPIRE_CREDENTIALS, consultation_id)


async def test_a_waiting_patient_comes_back_after_the_window(clients: Any, visits: Any, gp: Any,
                                                             conn: asyncpg.Connection) -> None:
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    assert patient.welcome["state"] == "waiting"
    await patient.close()
    await _window_closes(conn, visit.consultation_id)
    again = await clients.patient(visit)
    assert again.welcome["state"] == "waiting"


async def test_an_admitted_patient_comes_back_into_the_call(clients: Any, visits: Any, gp: Any,
                                                            conn: asyncpg.Connection) -> None:
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    doctor = await clients.staff(gp.id, visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.expect("admitted", 2)
    await patient.close()
    await doctor.close()
    await _window_closes(conn, visit.consultation_id)
    back = await clients.patient(visit)
    assert back.welcome["state"] == "in_call"
    assert back.welcome["resumed"] is True
    # The clinician's own reconnection is not refused either.
    await clients.staff(gp.id, visit.room_id)


async def test_never_arrived_ended_or_long_over_is_still_too_late(
        clients: Any, visits: Any, gp: Any, conn: asyncpg.Connection) -> None:
    never = await visits(gp.id, minutes=5, starts_in=timedelta(minutes=1))
    await _window_closes(conn, never.consultation_id)
    c = await clients.raw()
    assert (await c.hello(credential=never.token))["code"] == "too_late"

    ended = await visits(gp.id, minutes=5, starts_in=timedelta(minutes=6))
    patient = await clients.patient(ended)
    await patient.close()
    await store.record_event(conn, ended.consultation_id, "ended")
    await _window_closes(conn, ended.consultation_id)
    c = await clients.raw()
    assert (await c.hello(credential=ended.token))["code"] in ("too_late", "consultation_ended")

    forgotten = await visits(gp.id, minutes=5, starts_in=timedelta(minutes=11))
    patient = await clients.patient(forgotten)
    await patient.close()
    await _window_closes(conn, forgotten.consultation_id,
                         ago=store.RETURN_AFTER_WINDOW + timedelta(minutes=1))
    c = await clients.raw()
    assert (await c.hello(credential=forgotten.token))["code"] == "too_late"


async def test_the_page_opens_again_after_the_window_once_arrived(
        client: Any, visits: Any, gp: Any, conn: asyncpg.Connection) -> None:
    """A reload after the window: the consultation's page, not "the time is over"; the cookie
    the join link set lasts as long as the server would take it."""
    visit = await visits(gp.id)
    joined = await client.get(f"/join/{visit.token}")
    assert joined.status == 200 and f'data-room="{visit.room_id}"' in await joined.text()
    [cookie] = [m for m in client.session.cookie_jar if m.key == "casa_patient"]
    assert int(cookie["max-age"]) > store.RETURN_AFTER_WINDOW.total_seconds()
    await _window_closes(conn, visit.consultation_id)
    over = await client.get(f"/consultation/{visit.room_id}")
    assert 'data-role="patient"' not in await over.text()   # never arrived: nothing opens
    await store.record_event(conn, visit.consultation_id, "arrived")
    back = await client.get(f"/consultation/{visit.room_id}")
    page = await back.text()
    assert back.status == 200 and 'data-role="patient"' in page, page[:300]
    await store.record_event(conn, visit.consultation_id, "ended")
    ended = await client.get(f"/consultation/{visit.room_id}")
    # Ended and past the window: the credential opens nothing any more.
    assert 'data-role="patient"' not in await ended.text()


async def test_relay_credentials_for_a_late_return_are_valid(clients: Any, visits: Any, gp: Any,
                                                             conn: asyncpg.Connection) -> None:
    """Inside the window relay credentials end with it; a patient back after it gets
    credentials that have not already expired."""
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    await patient.close()
    await _window_closes(conn, visit.consultation_id)
    back = await clients.patient(visit)
    [relay] = [ice for ice in back.welcome["ice_servers"] if "username" in ice]
    assert int(relay["username"].split(":")[0]) > time.time() + 600
