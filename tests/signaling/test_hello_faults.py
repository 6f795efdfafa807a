"""A hello the server cannot handle for a reason of its own (here: the serving role has lost
its right to read the presence table, as a database failing mid-way would) is answered with
the catalogued ``try_again`` and a 1013 close, never a bare close; once the fault is gone the
same credential enters."""

from __future__ import annotations

import asyncio

import asyncpg

from server.dbroles import SERVING_ROLE


async def test_a_server_fault_in_hello_is_a_catalogued_error(clients, visits, gp, db_url):
    visit = await visits(gp.id)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(f"REVOKE SELECT ON signaling_participants FROM {SERVING_ROLE}")
        c = await clients.raw()
        reply = await c.hello(credential=visit.token)
        assert (reply["type"], reply["code"], reply["fatal"]) == ("error", "try_again", True)
        closed = await c.ws.receive(timeout=5)
        assert closed.type.name in ("CLOSE", "CLOSED") and c.ws.close_code == 1013
    finally:
        await conn.execute(f"GRANT SELECT ON signaling_participants TO {SERVING_ROLE}")
        await conn.close()
    await asyncio.sleep(0)
    back = await clients.patient(visit)
    assert back.welcome["state"] == "waiting"
