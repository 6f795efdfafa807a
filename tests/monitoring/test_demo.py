"""Demo tele-monitoring: two San Siro patients with two weeks of daily readings and one alert,
made through the monitoring service (sealed like any reading); a second run adds nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from server import db
from server import demo as server_demo
from server.keys import CONFIG, POOL
from server.monitoring import alerts, demo
from server.timeutil import ROME


async def test_demo_plans_readings_and_one_alert_once(config, db_url):
    config.keyring_path.unlink()
    pool = await db.create_pool(db_url)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await server_demo.seed_core(conn, config)
        app = web.Application()
        app[CONFIG] = config
        app[POOL] = pool
        now = datetime(2026, 12, 7, 23, 20, tzinfo=ROME)
        await demo.seed_demo(app, now)
        plans = await pool.fetch("SELECT p.measurements, pt.home_centre_id FROM"
                                 " monitoring_plans p JOIN patients pt ON pt.id = p.patient_id"
                                 " ORDER BY p.id")
        assert [(list(r[0]), r[1]) for r in plans] == [(["blood_pressure"], "san-siro"),
                                                       (["glucose"], "san-siro")]
        rows = await pool.fetch("SELECT measurement, out_of_range, source FROM"
                                " monitoring_readings ORDER BY id")
        assert len(rows) == 2 * demo.DAYS and {r["source"] for r in rows} == {"home"}
        assert [r["measurement"] for r in rows if r["out_of_range"]] == ["blood_pressure"]
        raised = await pool.fetch("SELECT kind, measurement FROM monitoring_alerts")
        assert [tuple(a) for a in raised] == [("out_of_range", "blood_pressure")]
        # While the demo is tried, the missed-reading check has nothing to raise (a demo run
        # late in the evening used to gain two alerts for the day's slot).
        for later in (now, now + timedelta(hours=12)):
            assert await alerts.sweep_missed(pool, later) == []
        await demo.seed_demo(app, now)
        assert await pool.fetchval("SELECT count(*) FROM monitoring_readings") == len(rows)
    finally:
        await pool.close()
