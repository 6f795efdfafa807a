"""Relays too large for a NOTIFY cross instances through ``signaling_relay`` sealed, and are
deleted as soon as they are read: every byte ever written to the table is captured by a
trigger and searched for the plaintext."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from server.keys import METRICS
from signaling import bus, events, seal
from signaling.envelope import Envelope
from signaling.keys import ENGINE
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import states, two_instances, waiting_until

# Long and unlike anything in SDP, JSON, ids or base64, so a hit can only be the plaintext.
MARKER = "Capybara-Tamburello-Sdp-Marker-"
CHAT_MARKER = "Ornitorinco Quadrifoglio dice ciao"

# SECURITY DEFINER: the capture is the test's instrument, written as the test's superuser, not
# something the app (serving as a role without access to relay_capture) may do.
CAPTURE = """
CREATE TABLE relay_capture (sealed bytea NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION capture_relay() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO relay_capture (sealed) VALUES (NEW.sealed);
    RETURN NEW;
END $$;
CREATE TRIGGER capture_relay AFTER INSERT ON signaling_relay
    FOR EACH ROW EXECUTE FUNCTION capture_relay();
"""


@pytest.fixture
async def captured(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test database where every row written to signaling_relay is
    copied, raw, into relay_capture."""
    conn = await asyncpg.connect(db_url)
    await conn.execute(CAPTURE)
    yield conn
    await conn.close()


async def _table_empties(conn: asyncpg.Connection, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while await conn.fetchval("SELECT count(*) FROM signaling_relay"):
        assert time.monotonic() < deadline, "a relay row outlived its reading"
        await asyncio.sleep(0.05)


def test_a_sealed_relay_opens_only_with_its_key_and_context():
    key = seal.relay_key(SECRET_KEY)
    assert len(key) == 32 and key != SECRET_KEY.encode()[:32]
    assert key != seal.bus_key(SECRET_KEY)   # one key per use
    sealed = seal.seal(key, ("v=0 " + MARKER).encode(), "casa-relay|a|b")
    assert MARKER.encode() not in sealed
    assert seal.unseal(key, sealed, "casa-relay|a|b") == ("v=0 " + MARKER).encode()
    # Two seals of the same text differ (random nonce).
    assert seal.seal(key, b"same", "c") != seal.seal(key, b"same", "c")
    other = seal.relay_key(SECRET_KEY + "-another-deployment")
    tampered = sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:]
    for bad_key, bad, context in ((other, sealed, "casa-relay|a|b"),
                                  (key, sealed, "casa-relay|a|c"),
                                  (key, tampered, "casa-relay|a|b"),
                                  (key, sealed[:10], "casa-relay|a|b"),
                                  (key, b"", "casa-relay|a|b")):
        with pytest.raises(seal.SealError):
            seal.unseal(bad_key, bad, context)


async def test_large_sdp_crosses_instances_sealed_and_is_deleted_once_read(
        config, aiohttp_client, db_url, visits, gp, captured):
    visit = await visits(gp.id)
    a, b = await two_instances(config, aiohttp_client, db_url)
    try:
        patient = await a.patient(visit)
        doctor = await b.staff(gp.id, visit.room_id)
        pid, did = patient.welcome["peer_id"], doctor.welcome["peer_id"]
        await doctor.send("admit", peer=pid)
        await patient.expect("admitted", 5)
        # An SDP over the NOTIFY limit, full of the marker: it must go through the table.
        sdp = "v=0\r\n" + "".join(f"a=x-note:{MARKER}{i}\r\n" for i in range(600))
        assert len(sdp) > 20000
        await patient.send("offer", to=did, sdp=sdp, id="big1")
        offer = await doctor.expect("offer", 5)
        assert offer["sdp"] == sdp and offer["from"] == pid
        await doctor.send("answer", to=pid, sdp=sdp.replace("x-note", "x-answer"), id="big1")
        answer = await patient.expect("answer", 5)
        assert answer["sdp"].count(MARKER) == 600
        # And a chat line, as long as the server takes, which must never reach the table.
        await patient.send("chat", text=(CHAT_MARKER + " ") * 50)
        assert (await doctor.expect("chat", 5))["text"].startswith(CHAT_MARKER)
        await _table_empties(captured)
        rows = [bytes(r["sealed"])
                for r in await captured.fetch("SELECT sealed FROM relay_capture")]
        assert len(rows) == 2   # the offer and the answer, nothing else
        for raw in rows:
            assert len(raw) > 20000
            for needle in (MARKER, MARKER.lower(), "x-note", "v=0", CHAT_MARKER, "Ornitorinco"):
                assert needle.encode() not in raw
                assert needle.encode("utf-16-le") not in raw
    finally:
        await a.close()
        await b.close()


async def test_a_large_event_for_every_instance_is_deleted_after_the_last_reads_it(
        config, aiohttp_client, db_url, captured):
    a, b = await two_instances(config, aiohttp_client, db_url)
    try:
        # No relay for everyone is this large today (chat is capped); the bus must still
        # count its readers and delete the row. The room (a consultation id no row has) is
        # unknown: nothing is delivered.
        a.app[ENGINE].outbox.publish(events.Relay(room=str(2**62), to=None, text=MARKER * 400))
        deadline = time.monotonic() + 5
        while not await captured.fetchval("SELECT count(*) FROM relay_capture"):
            assert time.monotonic() < deadline, "the event did not go through the table"
            await asyncio.sleep(0.05)
        await _table_empties(captured)
        raw = bytes(await captured.fetchval("SELECT sealed FROM relay_capture"))
        assert MARKER.encode() not in raw
    finally:
        await a.close()
        await b.close()


async def test_garbled_or_forged_bus_payloads_are_dropped_and_the_bus_goes_on(
        config, aiohttp_client, db_url, visits, gp, captured):
    visit = await visits(gp.id)
    a, b = await two_instances(config, aiohttp_client, db_url)
    try:
        dashboard = await b.staff(gp.id)
        assert await waiting_until(dashboard, lambda e: True) == []
        target = b.app[ENGINE].hub.instance_id
        # A row that is not a seal under our key (as if written by someone without it).
        forged = await captured.fetchval(
            "INSERT INTO signaling_relay (sealed, readers) VALUES ($1, 1) RETURNING id",
            os.urandom(200))
        # Unsealed payloads, as a role that may NOTIFY but has no key would send them.
        for payload in ("not json", "[]", '{"k": "member"}', "a.b.c.d", "i_x.1.2.AAAA"):
            await captured.execute("SELECT pg_notify($1, $2)", bus.CHANNEL, payload)
        # Sealed under the key, but not events the hub can apply (an instance with a bug).
        sealer = Envelope(SECRET_KEY, bus.CHANNEL, "i_elsewhere")
        for event in ({"k": "member"}, {"k": "relay", "room": 5},
                      {"k": "ref", "ref": 987654321, "r": target},
                      {"k": "ref", "ref": "x", "r": target},
                      {"k": "ref", "ref": forged, "r": target}):
            await captured.execute("SELECT pg_notify($1, $2)", bus.CHANNEL,
                                   sealer.seal(json.dumps(event).encode()))
        await captured.execute("SELECT pg_notify($1, $2)", bus.CHANNEL, sealer.seal(b"[]"))
        patient = await a.patient(visit)
        pid = patient.welcome["peer_id"]
        # B's consumer dropped all of them and still applies A's events, in order.
        await waiting_until(dashboard, lambda e: states(e) == [(pid, "waiting")])
        # The forged row was taken (deleted) by its named reader, though it did not open.
        await _table_empties(captured)
        assert b.app[METRICS].get_sample_value(
            "casa_signaling_bus_rejected_total", {"reason": "malformed"}) == 5
    finally:
        await a.close()
        await b.close()
