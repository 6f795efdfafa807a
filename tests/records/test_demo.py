"""Demo notes: the keyring is created on the first run; a second run adds nothing."""

from __future__ import annotations

from aiohttp import web

from records import audit, demo, keyring, rotate
from server import db
from server import demo as server_demo
from server.keys import CONFIG, POOL


async def test_demo_creates_keyring_and_notes_once(config, db_url, make_booking):
    config.keyring_path.unlink()
    pool = await db.create_pool(db_url)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await server_demo.seed_core(conn, config)
        # What the bookings demo provides: consultations of the demo clinicians.
        for email, service in ((demo.GP, "gp_visit"), (demo.NURSE, "nurse_visit"),
                               (demo.PSY, "psych_session")):
            who = await pool.fetchval("SELECT id FROM staff WHERE email = $1", email)
            patient = await pool.fetchval("SELECT min(id) FROM patients")
            await make_booking(patient, who, service)
        app = web.Application()
        app[CONFIG] = config
        app[POOL] = pool
        await demo.seed_demo(app)
        assert config.keyring_path.exists()
        first = await pool.fetchval("SELECT count(*) FROM note_versions")
        assert first >= 4
        await demo.seed_demo(app)
        assert await pool.fetchval("SELECT count(*) FROM note_versions") == first
        report = await rotate.verify_all(pool, keyring.load(config.keyring_path))
        assert report.ok and report.checked == first
        async with pool.acquire() as conn:
            assert (await audit.verify(conn)).ok
    finally:
        await pool.close()
