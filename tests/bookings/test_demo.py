"""Demo data: a week in every mode and service, some happening now; idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from server import demo as core_demo
from server.bookings import demo
from server.keys import CONFIG, POOL

# Instants of a working Wednesday in Milan at which the week's own bookings (9-11, 15-16)
# used to take the clinician, patient, kiosk or nurse the "now" consultations needed: at
# 09:00 and 16:15 half the clinicians got none.
AT = [datetime(2026, 12, 9, 8, 0, tzinfo=UTC), datetime(2026, 12, 9, 15, 15, tzinfo=UTC),
      datetime(2026, 12, 9, 9, 30, tzinfo=UTC)]


@pytest.mark.parametrize("now", AT, ids=lambda t: t.strftime("%H%M"))
async def test_demo_week_covers_every_service_and_mode_and_now(client: Any, now: datetime):
    app = client.app
    async with app[POOL].acquire() as conn, conn.transaction():
        await core_demo.seed_core(conn, app[CONFIG])
    await demo.seed_demo(app, now)
    pool = app[POOL]
    services = {r["service_code"] for r in await pool.fetch(
        "SELECT DISTINCT service_code FROM bookings")}
    assert services == {"gp_visit", "psych_session", "psychiatric_followup", "nurse_visit",
                        "violence_support", "vaccination"}
    modes = {r["mode"] for r in await pool.fetch("SELECT DISTINCT mode FROM bookings")}
    assert modes == {"home_video", "kiosk_video", "in_person"}
    centres = await pool.fetchval("SELECT count(DISTINCT centre_id) FROM bookings")
    assert centres == 5
    clinicians = await pool.fetchval(
        "SELECT count(*) FROM staff WHERE role IN ('gp', 'psychologist', 'nurse')")
    # Every clinician has one consultation open now and one later today, all invited.
    open_now = await pool.fetchval(
        "SELECT count(*) FROM consultations WHERE $1 BETWEEN join_opens_at AND join_closes_at",
        now)
    assert open_now >= clinicians
    kiosk_now = await pool.fetchval(
        "SELECT count(*) FROM consultations c JOIN bookings b ON b.id = c.booking_id"
        " WHERE b.mode = 'kiosk_video' AND $1 BETWEEN join_opens_at AND join_closes_at", now)
    assert kiosk_now >= 1
    invited = await pool.fetchval("SELECT count(DISTINCT booking_id) FROM outbox")
    assert invited == 2 * clinicians
    count = await pool.fetchval("SELECT count(*) FROM bookings")
    await demo.seed_demo(app, now)
    assert await pool.fetchval("SELECT count(*) FROM bookings") == count
