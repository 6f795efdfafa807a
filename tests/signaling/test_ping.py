"""The ping loop (``Watch.ping``, ``Conn.heartbeat``): a socket whose hello is still being
handled (its arrival waits for the database) reads no pong, so it is not pinged, and is not
given up as silent; once in, a socket that does not answer is given up with ``no_answer``."""

from __future__ import annotations

import asyncio

import asyncpg

from signaling.keys import ENGINE
from signaling.states import Kind

LOCK = "SELECT 1 FROM consultations WHERE id = $1 FOR UPDATE"


async def _tracked(engine, kind: Kind, within: float = 5.0):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = [c for c in engine.hub.conns if c.kind == kind]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, "the socket was not tracked"
        await asyncio.sleep(0.02)


async def test_a_socket_in_a_slow_hello_is_not_counted_silent(client, clients, visits, gp,
                                                              db_url):
    engine = client.server.app[ENGINE]
    visit = await visits(gp.id)
    holder = await asyncpg.connect(db_url)
    try:
        # The consultation's row held elsewhere: the patient's arrival waits for it.
        async with holder.transaction():
            await holder.execute(LOCK, visit.consultation_id)
            patient = await clients.raw()
            await patient.send("hello", version=1, credential=visit.token)
            conn = await _tracked(engine, Kind.PATIENT)
            now = asyncio.get_running_loop().time()
            conn.heartbeat(now)
            conn.heartbeat(now + 60)   # long past any pong's due time
            assert not conn.closed
    finally:
        await holder.close()
    welcome = await patient.recv(5)
    assert (welcome["type"], welcome["state"]) == ("welcome", "waiting"), welcome


async def test_a_socket_that_does_not_answer_is_given_up(client, clients, visits, gp):
    engine = client.server.app[ENGINE]
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    conn = await _tracked(engine, Kind.PATIENT)
    now = asyncio.get_running_loop().time()
    conn.heartbeat(now)          # pinged; its answer cannot be read before the next line,
    conn.heartbeat(now + 60)     # which comes as if a minute had passed without it
    error = await patient.expect("error", 5)
    assert (error["code"], error["fatal"]) == ("no_answer", True)
