"""What crosses between instances: ids and states, never a patient's name, and large relays
only encrypted. Two full apps in this process share one database, as two instances would."""

from __future__ import annotations

import asyncio
import json

import asyncpg

from server import patients
from signaling import bus
from signaling.peer import CallPeer
from tests.signaling.conftest import on_today, states, two_instances, waiting_until

# Unusual enough never to occur by chance in an id, a timestamp or a ciphertext's base64.
GIVEN = "Zenobia-Quirinella"
FAMILY = "Wolkenstein-Trapani"


class Tap:
    """Every payload on the bus's channel, heard on a raw connection of the test's own."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.conn: asyncpg.Connection | None = None

    async def start(self, db_url: str) -> None:
        self.conn = await asyncpg.connect(db_url)
        await self.conn.add_listener(bus.CHANNEL, self._heard)

    def _heard(self, _c: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.append(payload)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


async def rename_patient(db_url: str, patient_id: int) -> str:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("UPDATE patients SET given_name = $1, family_name = $2 WHERE id = $3",
                           GIVEN, FAMILY, patient_id)
        p = await patients.get(conn, patient_id)
        assert p is not None
        return p.full_name
    finally:
        await conn.close()


async def test_patient_name_never_crosses_the_bus_but_shows_on_the_other_dashboard(
        config, aiohttp_client, db_url, visits, gp):
    visit = await visits(gp.id, starts_in=on_today())
    full_name = await rename_patient(db_url, visit.patient_id)
    a, b = await two_instances(config, aiohttp_client, db_url)
    tap = Tap()
    await tap.start(db_url)
    try:
        dashboard = await b.staff(gp.id)
        assert await waiting_until(dashboard, lambda e: e == []) == []
        patient = await a.patient(visit)
        pid = patient.welcome["peer_id"]
        [entry] = await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
        assert entry["name"] == full_name
        # The clinician opens the room on the other instance and admits; the patient leaves.
        doctor = await b.staff(gp.id, visit.room_id)
        await doctor.send("admit", peer=pid)
        await patient.expect("admitted", 5)
        await waiting_until(dashboard, lambda e: states(e) == [(pid, "in_call")])
        await patient.send("leave")
        [entry] = await waiting_until(dashboard, lambda e: states(e) == [(pid, "left")])
        assert entry["name"] == full_name
        await asyncio.sleep(0)   # let the tap's last notifications be delivered
        assert len(tap.payloads) >= 4
        for payload in tap.payloads:
            for secret in (GIVEN, FAMILY, GIVEN.lower(), FAMILY.upper()):
                assert secret not in payload
            assert "Test gp" not in payload   # no staff name either
        # Only ids: every member event has no name, no waiting list.
        events = [json.loads(p) for p in tap.payloads]
        assert all("name" not in e and "waiting" not in e for e in events)
    finally:
        await tap.close()
        await a.close()
        await b.close()


async def test_guest_label_stays_in_the_database(config, aiohttp_client, db_url, visits, gp):
    visit = await visits(gp.id)
    a, b = await two_instances(config, aiohttp_client, db_url)
    tap = Tap()
    await tap.start(db_url)
    try:
        patient = await a.patient(visit)
        doctor = await a.staff(gp.id, visit.room_id)
        await doctor.send("admit", peer=patient.welcome["peer_id"])
        await patient.expect("admitted", 5)
        await doctor.send("invite", guest=True, label="Interprete Quintiliana")
        link = (await doctor.expect("invited", 5))["link"]
        guest = await b.raw()
        welcome = await guest.hello(credential=link.split("#guest=")[1])
        assert welcome["type"] == "welcome", welcome
        # The clinician on the other instance sees the label, looked up from the database.
        joined = await doctor.expect("peer_joined", 5)
        while joined["peer"]["role"] != "guest":
            joined = await doctor.expect("peer_joined", 5)
        assert joined["peer"]["name"] == "Interprete Quintiliana"
        assert tap.payloads, "the tap heard nothing: the check below would prove nothing"
        assert not any("Quintiliana" in p for p in tap.payloads)
    finally:
        await tap.close()
        await a.close()
        await b.close()


async def test_a_call_across_two_instances_still_relays_media(
        config, aiohttp_client, db_url, visits, gp):
    visit = await visits(gp.id)
    a, b = await two_instances(config, aiohttp_client, db_url)
    peers: list[CallPeer] = []
    try:
        patient = await a.patient(visit)
        doctor = await b.staff(gp.id, visit.room_id)
        p_peer, d_peer = CallPeer(patient), CallPeer(doctor)
        peers = [p_peer, d_peer]
        for p in peers:
            p.start()
        await doctor.send("admit", peer=patient.welcome["peer_id"])
        await p_peer.wait_frames(d_peer.peer_id, 3, 25)
        await d_peer.wait_frames(p_peer.peer_id, 3, 25)
    finally:
        for p in peers:
            await p.close()
        await a.close()
        await b.close()
