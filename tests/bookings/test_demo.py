"""Demo data: a week in every mode and service, some happening now; idempotent."""

from __future__ import annotations

from typing import Any

from server import demo as core_demo
from server.bookings import demo
from server.keys import CONFIG, POOL


async def test_demo_week_covers_every_service_and_mode_and_now(client: Any):
    app = client.app
    async with app[POOL].acquire() as conn, conn.transaction():
        await core_demo.seed_core(conn, app[CONFIG])
    await demo.seed_demo(app)
    pool = app[POOL]
    services = {r["service_code"] for r in await pool.fetch(
        "SELECT DISTINCT service_code FROM bookings")}
    assert services == {"gp_visit", "psych_session", "psychiatric_followup", "nurse_visit",
                        "violence_support", "vaccination"}
    modes = {r["mode"] for r in await pool.fetch("SELECT DISTINCT mode FROM bookings")}
    assert modes == {"home_video", "kiosk_video", "in_person"}
    centres = await pool.fetchval("SELECT count(DISTINCT centre_id) FROM bookings")
    assert centres == 5
    open_now = await pool.fetchval(
        "SELECT count(*) FROM consultations WHERE now() BETWEEN join_opens_at AND join_closes_at")
    assert open_now >= 5
    kiosk_now = await pool.fetchval(
        "SELECT count(*) FROM consultations c JOIN bookings b ON b.id = c.booking_id"
        " WHERE b.mode = 'kiosk_video' AND now() BETWEEN join_opens_at AND join_closes_at")
    assert kiosk_now >= 1
    invited = await pool.fetchval("SELECT count(DISTINCT booking_id) FROM outbox")
    assert invited >= 8
    count = await pool.fetchval("SELECT count(*) FROM bookings")
    await demo.seed_demo(app)
    assert await pool.fetchval("SELECT count(*) FROM bookings") == count
