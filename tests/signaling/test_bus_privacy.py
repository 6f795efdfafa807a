"""What crosses between instances: every payload sealed, and inside the seal ids and states,
never a patient's name; a payload altered or replayed into the channel is refused. Two full
apps in this process share one database, as two instances would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec

from server import patients
from server.keys import METRICS
from signaling import bus
from signaling import events as signal_events
from signaling.envelope import Envelope
from signaling.peer import CallPeer
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import on_today, states, two_instances, waiting_until

# Unusual enough never to occur by chance in an id, a timestamp or a ciphertext's base64.
GIVEN = "Zenobia-Quirinella"
FAMILY = "Wolkenstein-Trapani"


class Tap:
    """Every payload on the bus's channel, heard on a raw connection of the test's own."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.conn: asyncpg.Connection | None = None
        self.opener = Envelope(SECRET_KEY, bus.CHANNEL, "i_the_tap")
        self._opened: list[dict[str, Any]] = []

    async def heard(self, ok: Callable[[list[dict[str, Any]]], bool], within: float = 5.0) -> None:
        """Wait until the events heard satisfy ``ok``: the tap's connection may hear a
        notification a moment after the instances do."""
        deadline = time.monotonic() + within
        while not ok(self.events()):
            assert time.monotonic() < deadline, "the tap did not hear what was published"
            await asyncio.sleep(0.01)

    def events(self) -> list[dict[str, Any]]:
        """The payloads opened with the deployment's key (every one must open, once)."""
        for payload in self.payloads[len(self._opened):]:
            opened = self.opener.open(payload)
            assert opened is not None
            self._opened.append(msgspec.to_builtins(signal_events.decode(opened[1])))
        return list(self._opened)

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
        await tap.heard(lambda events: len(events) >= 4)
        for payload in tap.payloads:
            for secret in (GIVEN, FAMILY, GIVEN.lower(), FAMILY.upper()):
                assert secret not in payload
            assert "Test gp" not in payload   # no staff name either
        # Sealed, and inside only ids: every member event has no name, no waiting list.
        events = tap.events()
        assert {e["k"] for e in events} >= {"member"}
        assert all("name" not in e and "waiting" not in e for e in events)
        for secret in (GIVEN, FAMILY, "Test gp"):
            assert secret not in json.dumps(events)
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
        assert not any("Quintiliana" in json.dumps(e) for e in tap.events())
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


def _rejected(app: Any, reason: str) -> float:
    value = app[METRICS].get_sample_value("casa_signaling_bus_rejected_total",
                                          {"reason": reason})
    return value or 0.0


async def test_chat_crosses_sealed_and_an_altered_or_replayed_payload_is_refused(
        config, aiohttp_client, db_url, visits, gp):
    visit = await visits(gp.id)
    a, b = await two_instances(config, aiohttp_client, db_url)
    tap = Tap()
    await tap.start(db_url)
    try:
        patient = await a.patient(visit)
        doctor = await b.staff(gp.id, visit.room_id)
        await doctor.send("admit", peer=patient.welcome["peer_id"])
        await patient.expect("admitted", 5)
        line = "Ho paura di tornare a casa stasera"
        await patient.send("chat", text=line)
        assert (await doctor.expect("chat", 5))["text"] == line
        await tap.heard(lambda events: any("paura" in e.get("text", "") for e in events))
        assert not any("paura" in p for p in tap.payloads)
        events = tap.events()
        [chat] = [p for p, e in zip(tap.payloads[:len(events)], events, strict=True)
                  if e["k"] == "relay" and "paura" in e["text"]]
        header, sealed = chat.rsplit(".", 1)
        sender, seq, sent = header.split(".")
        flipped = sealed[:30] + ("A" if sealed[30] != "A" else "B") + sealed[31:]
        attempts = {
            "replayed": [chat],
            "forged": [f"{header}.{flipped}",                        # altered ciphertext
                       f"{sender}.{int(seq) + 1000}.{sent}.{sealed}",  # another place
                       f"i_other.{seq}.{sent}.{sealed}",             # another sender
                       # the same event sealed for another channel
                       Envelope(SECRET_KEY, "another_channel", "i_x").seal(b'{"k":"resync"}'),
                       # sealed under another deployment's key
                       Envelope(SECRET_KEY + "-other", bus.CHANNEL, "i_y").seal(
                           signal_events.encode(signal_events.Resync()))],
        }
        before = {reason: _rejected(b.app, reason) for reason in attempts}
        conn = await asyncpg.connect(db_url)
        try:
            for payloads in attempts.values():
                for payload in payloads:
                    await conn.execute("SELECT pg_notify($1, $2)", bus.CHANNEL, payload)
        finally:
            await conn.close()
        # The bus goes on, and the doctor got the line once: the next chat is the next one.
        await patient.send("chat", text="dopo")
        assert (await doctor.expect("chat", 5))["text"] == "dopo"
        for reason, payloads in attempts.items():
            assert _rejected(b.app, reason) - before[reason] == len(payloads), reason
    finally:
        await tap.close()
        await a.close()
        await b.close()
