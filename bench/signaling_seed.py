"""Consultations for the signalling benchmarks: an embedded PostgreSQL in a temporary directory,
migrated, holding home video consultations whose join window is open now. Each consultation
has its own patient (an invitation token) and its own clinician (a staff session), as in a
centre where every call is a different GP's: the server then watches one staff session per
call, as it would in service."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from server import centres, db, dbroles, patients
from server import staff as staff_store
from server.auth import passwords, sessions
from server.consultations import credentials, store
from server.staff import Role

INSERT_BOOKING = """
INSERT INTO bookings (centre_id, service_code, mode, patient_id, clinician_id, during, status)
VALUES ('san-siro', 'gp_visit', 'home_video', $1, $2, tstzrange($3, $4), 'booked') RETURNING id
"""
# Seeding runs on a few connections at once; the embedded server has cores to spare then.
SEED_CONNECTIONS = 4


@dataclass(frozen=True)
class Visit:
    """One consultation: its room, the patient's invitation token, the clinician's session."""

    room: str
    patient_token: str
    clinician_session: str


async def make_visit(conn: asyncpg.Connection, clinician_id: int, n: int,
                     start: datetime | None = None) -> tuple[str, str]:
    """A home video consultation of ``clinician_id``, its join window open now; the booking
    at ``start``, by default ``n`` two-minute slots from now (one clinician's visits do not
    overlap). Returns (room id, invitation token)."""
    p = await patients.create(conn, patients.NewPatient(
        given_name="Bench", family_name=f"Patient{n}", date_of_birth=date(1960, 1, 1)))
    now = datetime.now(UTC)
    start = start or now + timedelta(minutes=2 * n)
    bid = await conn.fetchval(INSERT_BOOKING, p.id, clinician_id, start,
                              start + timedelta(minutes=1))
    cid = await store.create(conn, bid, now - timedelta(hours=1), now + timedelta(hours=4))
    c = await store.get(conn, cid)
    assert c is not None
    return c.room_id, await credentials.issue_link(conn, cid)


async def make_clinician(conn: asyncpg.Connection, n: int, password_hash: str) -> tuple[int, str]:
    """A GP of the San Siro centre with a live session; returns (staff id, session token)."""
    staff_id = await staff_store.create(conn, email=f"bench.gp{n}@casa.example",
                                        full_name=f"Medico {n}", role=Role.GP, password="",
                                        password_hash=password_hash, centres=("san-siro",))
    return staff_id, await sessions.create(conn, staff_id, timedelta(hours=4), False)


async def _visits(pool: asyncpg.Pool, first: int, count: int, password_hash: str) -> list[Visit]:
    async with pool.acquire() as conn:
        out = []
        for n in range(first, first + count):
            async with conn.transaction():
                staff_id, session = await make_clinician(conn, n, password_hash)
                room, token = await make_visit(conn, staff_id, n, datetime.now(UTC))
            out.append(Visit(room, token, session))
        return out


class Database:
    """The benchmark's database: ``dsn`` as the superuser, ``serving_dsn`` for Casa."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.serving_dsn = db.with_user(dsn, dbroles.SERVING_ROLE)
        self.made = 0
        self.password_hash = passwords.hash_password("x" * 16)

    async def visits(self, count: int) -> list[Visit]:
        """``count`` new consultations, each with its own patient and clinician."""
        pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=SEED_CONNECTIONS)
        try:
            share = -(-count // SEED_CONNECTIONS)
            parts = await asyncio.gather(*(
                _visits(pool, self.made + i, min(share, count - i), self.password_hash)
                for i in range(0, count, share)))
        finally:
            await pool.close()
        self.made += count
        return [v for part in parts for v in part]


@asynccontextmanager
async def database() -> AsyncIterator[Database]:
    """An embedded PostgreSQL with Casa's schema and centres, dropped afterwards."""
    tmp = tempfile.TemporaryDirectory(prefix="casa-bench-db-")
    os.chmod(tmp.name, 0o755)  # noqa: S103 - embedded PostgreSQL runs as its own user
    embedded = db.EmbeddedDatabase(Path(tmp.name))
    server_uri = embedded.start()
    try:
        await db.ensure_database(server_uri, "casa")
        dsn = db.database_name_uri(server_uri, "casa")
        conn = await asyncpg.connect(dsn)
        try:
            await db.prepare(conn, dbroles.SERVING_ROLE)
            await centres.sync(conn, centres.load_data())
        finally:
            await conn.close()
        yield Database(dsn)
    finally:
        embedded.stop()
        tmp.cleanup()
