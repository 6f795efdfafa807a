"""``casa demo``'s week holds past visits (came, or did not): the report's totals over that
week, for an admin, against the same totals counted here from the demo's bookings one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server import demo as core_demo
from server.bookings import demo, tokens
from server.keys import CONFIG, POOL
from server.reports.suppression import Mark, suppress
from server.staff import Role

# A Wednesday: Monday and Tuesday are past, with their outcomes; the rest is booked ahead.
NOW = datetime(2026, 12, 9, 15, 15, tzinfo=UTC)
COLUMNS = ("bookings", "attended", "no_shows", "cancelled_patient", "cancelled_staff",
           "cancelled_system", "patients", "new_patients", "returning_patients")


async def test_demo_week_totals(client: Any) -> None:
    app = client.app
    pool = app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        await core_demo.seed_core(conn, app[CONFIG])
    await demo.seed_demo(app, NOW)
    rows = await pool.fetch("SELECT centre_id, status, patient_id FROM bookings")
    assert any(r["status"] == "fulfilled" for r in rows), "the demo has no past visit"
    assert any(r["status"] == "noshow" for r in rows)

    assert not any(r["status"] == "cancelled" for r in rows)
    centres = sorted({r["centre_id"] for r in rows})

    def figures(group: list[Any]) -> list[int]:
        """The activity columns: the demo cancels nothing, and its week is all it has, so
        every patient who came is new."""
        came = [r for r in group if r["status"] in ("arrived", "fulfilled")]
        patients = len({r["patient_id"] for r in came})
        return [len(group), len(came), sum(r["status"] == "noshow" for r in group), 0, 0, 0,
                patients, patients, 0]

    admin = next(r["id"] for r in await pool.fetch(
        "SELECT id FROM staff WHERE role = $1", Role.ADMIN.value))
    _, token = await tokens.create(pool, admin)
    resp = await client.get("/api/v1/reports/activity?from=2026-12-07&to=2026-12-13",
                            headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    table = next(t for t in report["tables"] if t["key"] == "centre.activity")
    assert table["columns"] == list(COLUMNS)
    keys = [r["key"] for r in table["rows"] if not r["total"]]
    assert set(centres) <= set(keys)
    grid = [figures([r for r in rows if r["centre_id"] == k]) for k in keys] + [figures(rows)]
    want = [[{Mark.PRIMARY: "<5", Mark.SECONDARY: "x"}.get(m, str(v))
             for v, m in zip(values, marks, strict=True)]
            for values, marks in zip(grid, suppress(grid), strict=True)]
    assert [[c["shown"] for c in r["cells"]] for r in table["rows"]] == want
    total = table["rows"][-1]["cells"]
    assert total[0]["shown"] == str(len(rows)) and total[1]["value"] > 0
