"""SQL of ``signaling_relay`` (migration 0301): relays too large for a NOTIFY, stored sealed
(``signaling.seal``) by the bus and deleted once the instances meant to read them have."""

from __future__ import annotations

from signaling.presence import INSTANCE_DEAD_S, Conn

STORE_RELAY = "INSERT INTO signaling_relay (sealed, readers) VALUES ($1, $2) RETURNING id"
# A relay meant for one instance is deleted as it is read.
TAKE_RELAY = "DELETE FROM signaling_relay WHERE id = $1 RETURNING sealed"
# A relay for every instance: each read is counted; the last reader deletes it.
READ_RELAY = """
UPDATE signaling_relay SET reads = reads + 1 WHERE id = $1
RETURNING sealed, reads >= readers AS last
"""
DELETE_RELAY = "DELETE FROM signaling_relay WHERE id = $1 AND reads >= readers"
OTHER_INSTANCES = f"""
SELECT count(*) FROM signaling_instances
WHERE id <> $1 AND heartbeat_at > now() - make_interval(secs => {INSTANCE_DEAD_S})
"""
# A reader that died never reads: its rows go after a minute.
PURGE_RELAY = "DELETE FROM signaling_relay WHERE created_at < now() - interval '1 minute'"


async def store_relay(conn: Conn, sealed: bytes, readers: int) -> int:
    value: int = await conn.fetchval(STORE_RELAY, sealed, readers)
    return value


async def other_instances(conn: Conn, instance_id: str) -> int:
    value: int = await conn.fetchval(OTHER_INSTANCES, instance_id)
    return value


async def take_relay(conn: Conn, relay_id: int) -> bytes | None:
    value: bytes | None = await conn.fetchval(TAKE_RELAY, relay_id)
    return value


async def read_relay(conn: Conn, relay_id: int) -> bytes | None:
    """Count this instance's read; the last of the expected readers deletes the row."""
    r = await conn.fetchrow(READ_RELAY, relay_id)
    if r is None:
        return None
    if r["last"]:
        await conn.execute(DELETE_RELAY, relay_id)
    sealed: bytes = r["sealed"]
    return sealed


async def purge_relay(conn: Conn) -> None:
    await conn.execute(PURGE_RELAY)
