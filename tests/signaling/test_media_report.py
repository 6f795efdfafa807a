"""``media_report`` (docs/protocol.md): a participant in the call says how its media went, and
the consultation keeps one ``media_path`` event per thing the report adds, two flags and a
role, nothing else. Real aiohttp WebSocket clients of the real server and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from tests.signaling.conftest import waiting_until
from tests.signaling.test_chat_sent import frames_until_pong, in_call


async def media_paths(conn: Any, consultation_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT detail, staff_id FROM consultation_events"
                            " WHERE consultation_id = $1 AND event = 'media_path'"
                            " ORDER BY id", consultation_id)
    return [{**json.loads(r["detail"]), "staff": r["staff_id"]} for r in rows]


async def test_each_new_fact_is_recorded_once_and_repeats_are_not(clients, visits, gp, conn):
    visit = await visits(gp.id)
    patient, doctor = await in_call(clients, visit, gp)
    # Connected, directly: recorded. The same again (a page that reconnects and finds
    # nothing new): not. The fall-back to sound only: recorded, the relay still false.
    await patient.send("media_report", relay=False, sound_only=False)
    await patient.send("media_report", relay=False, sound_only=False)
    await patient.send("media_report", relay=False, sound_only=True)
    # A later report cannot take a fact back: relay now, sound only stays true.
    await patient.send("media_report", relay=True, sound_only=False)
    await patient.send("media_report", relay=True, sound_only=True)
    await doctor.send("media_report", relay=True, sound_only=False)
    # No answer to any of them, on either side; the ping's fence says they were handled.
    assert await frames_until_pong(patient) == []
    # (The doctor's own admit is still arriving: its peer_joined and waiting list.)
    assert not [m for m in await frames_until_pong(doctor)
                if m["type"] in ("error", "media_report")]
    # Each socket's reports in its order (the two sockets' are handled side by side).
    paths = await media_paths(conn, visit.consultation_id)
    assert [p for p in paths if p["role"] == "patient"] == [
        {"relay": False, "sound_only": False, "role": "patient", "staff": None},
        {"relay": False, "sound_only": True, "role": "patient", "staff": None},
        {"relay": True, "sound_only": True, "role": "patient", "staff": None}]
    assert [p for p in paths if p["role"] != "patient"] == [
        {"relay": True, "sound_only": False, "role": "clinician", "staff": gp.id}]


async def test_waiting_or_malformed_reports_are_refused_and_cost_nothing_else(
        clients, visits, gp, conn):
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    # Still in the waiting room: not in the call, nothing recorded.
    await patient.send("media_report", id="m1", relay=True, sound_only=False)
    err = await patient.expect("error", 3)
    assert (err["code"], err["id"], err["fatal"]) == ("not_in_call", "m1", False)
    doctor = await clients.staff(gp.id, visit.room_id)
    pid = patient.welcome["peer_id"]
    await waiting_until(doctor, lambda e: any(x["peer_id"] == pid for x in e))
    await doctor.send("admit", peer=pid)
    await patient.expect("admitted", 5)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"relay": "yes", "sound_only": False}, "relay"),
        ({"relay": 1, "sound_only": False}, "relay"),
        ({"relay": True}, "sound_only"),
        ({"relay": True, "sound_only": False, "candidate": "192.0.2.7"}, "candidate"),
    ]
    for fields, field in bad:
        await patient.send("media_report", **fields)
        err = await patient.expect("error", 3)
        assert (err["code"], err["details"], err["fatal"]) == (
            "invalid_field", {"field": field}, False)
    assert await media_paths(conn, visit.consultation_id) == []
    # The socket lost nothing: a valid report after them is recorded, chat still flows.
    await patient.send("media_report", relay=True, sound_only=False)
    await patient.send("chat", text="Mi sente?")
    assert (await doctor.expect("chat", 3))["text"] == "Mi sente?"
    assert await media_paths(conn, visit.consultation_id) == [
        {"relay": True, "sound_only": False, "role": "patient", "staff": None}]
