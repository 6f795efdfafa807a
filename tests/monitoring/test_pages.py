"""The staff pages: enrolment by form, the patient's page with its trends and the link shown
once, readings taken at the centre (kiosk), the worklist and its states; refused to roles and
people who may not see them."""

from __future__ import annotations

import re
from typing import Any

from server.staff import Staff
from tests.conftest import csrf_token
from tests.monitoring.conftest import in_days
from tests.records.conftest import login_as


async def _as(client: Any, user: Staff, db_url: str) -> None:
    client.session.cookie_jar.clear()
    await login_as(client, user, db_url)


async def _post(client: Any, path: str, data: dict[str, str], page: str) -> Any:
    token = await csrf_token(client, page)
    return await client.post(path, data={"csrf_token": token, **data}, allow_redirects=False)


async def test_enrol_take_readings_at_the_centre_and_work_the_worklist(client, conn, ward,
                                                                      db_url):
    await _as(client, ward.nurse, db_url)
    page = f"/monitoring/patients/{ward.patient}"
    first = await client.get(page)
    assert first.status == 200 and 'action="' + page + '/plan"' in await first.text()
    resp = await _post(client, page + "/plan", {
        "c-hypertension": "1", "high-systolic": "150", "ends_on": in_days(60).isoformat(),
        "every_hours": "24"}, page)
    assert resp.status == 303 and resp.headers["Location"] == page
    shown = await (await client.get(page)).text()
    link = re.search(r"<code>(https?://[^<]+/m/[A-Za-z0-9_-]{43})</code>", shown)
    assert link, "the link is shown once, after enrolment"
    assert "/m/" not in await (await client.get(page)).text()  # and only once
    resp = await _post(client, page + "/readings", {"source": "kiosk", "systolic": "158",
                                                    "diastolic": "88", "heart_rate": "71"}, page)
    assert resp.status == 303
    rows = await conn.fetch("SELECT measurement, source, out_of_range FROM monitoring_readings"
                            " ORDER BY id")
    assert [tuple(r) for r in rows] == [("blood_pressure", "kiosk", True),
                                        ("heart_rate", "kiosk", False)]
    text = await (await client.get(page)).text()
    assert "158" in text and 'class="m-beyond"' in text and "71" in text
    # the trend is drawn (server/trend_chart.py) with the reading above the limit marked
    assert 'role="img"' in text and 'class="reading out high"' in text

    worklist = await (await client.get("/monitoring")).text()
    found = re.search(r'data-alert="(\d+)"', worklist)
    assert found is not None
    alert_id = found.group(1)
    assert "Test" in worklist and "data-kind=\"out_of_range\"" in worklist
    resp = await _post(client, f"/monitoring/alerts/{alert_id}/state", {"state": "to_call"},
                       "/monitoring")
    assert resp.status == 303
    assert 'value="acknowledged"' in await (await client.get("/monitoring/worklist")).text()
    resp = await _post(client, f"/monitoring/alerts/{alert_id}/state",
                       {"state": "acknowledged"}, "/monitoring")
    assert 'data-alert=' not in await (await client.get("/monitoring/worklist")).text()
    assert (await client.get("/monitoring/version")).status == 200


async def test_pages_are_refused_to_others(client, conn, rec, ward, db_url):
    from tests.monitoring.conftest import enrol

    await enrol(conn, rec, ward.nurse, ward.patient)
    page = f"/monitoring/patients/{ward.patient}"
    for user in (ward.coordinator, ward.psychologist):
        await _as(client, user, db_url)
        assert (await client.get(page)).status == 403
        assert (await client.get("/monitoring")).status == 403
    await _as(client, ward.other_nurse, db_url)
    theirs = await client.get(page)
    nobody = await client.get("/monitoring/patients/999999999")
    assert theirs.status == nobody.status == 403
    assert "Paziente" not in await theirs.text()


async def test_limits_are_edited_in_place_and_the_link_keeps_working(client, conn, rec, ward,
                                                                    db_url):
    from tests.monitoring.conftest import enrol

    plan, token = await enrol(conn, rec, ward.nurse, ward.patient)
    await _as(client, ward.gp, db_url)
    page = f"/monitoring/patients/{ward.patient}"
    resp = await _post(client, page + "/limits", {"low-systolic": "100", "high-systolic": "140",
                                                  "low-heart_rate": "", "high-heart_rate": ""},
                       page)
    assert resp.status == 303
    row = await conn.fetchrow("SELECT id, thresholds::text AS t FROM monitoring_plans "
                              "WHERE ended_at IS NULL")
    assert row["id"] == plan.id and '"systolic": {"low": 100.0, "high": 140.0}' in row["t"]
    assert '"heart_rate": {"low": 50, "high": 110}' in row["t"]  # not given: kept
    bad = await _post(client, page + "/limits", {"low-systolic": "150", "high-systolic": "140"},
                      page)
    assert bad.status == 303 and 'role="alert"' in await (await client.get(page)).text()
    client.session.cookie_jar.clear()
    assert (await client.get(f"/m/{token}")).status == 200
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                               "'monitoring_limits'") == 1
