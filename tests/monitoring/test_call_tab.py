"""The GP sees the patient's trends beside the video: a "Readings" tab in the call page's
side panel, only when the patient has a plan; its values are audited reads."""

from __future__ import annotations

from datetime import UTC, datetime

from server.consultations import store
from server.monitoring import service
from tests.monitoring.conftest import enrol
from tests.records.conftest import login_as, make_booking  # noqa: F401 (fixture)


async def test_the_readings_tab_is_there_only_with_a_plan(client, conn, rec, ward, db_url,
                                                          make_booking):  # noqa: F811
    booking = await make_booking(ward.patient, ward.gp.id)
    c = await store.get_by_booking(conn, booking)
    assert c is not None
    await login_as(client, ward.gp, db_url)
    page = await (await client.get(f"/consultation/{c.room_id}")).text()
    assert 'id="tab-notes"' in page and 'id="tab-readings"' not in page

    plan, _ = await enrol(conn, rec, ward.nurse, ward.patient)
    async with conn.transaction():
        await service.submit_by_staff(
            conn, rec, ward.nurse, plan.id, measurement="blood_pressure",
            values={"systolic": 167, "diastolic": 93}, text=None, measured_at=None,
            source="nurse", now=datetime.now(UTC))
    page = await (await client.get(f"/consultation/{c.room_id}")).text()
    assert 'id="tab-readings"' in page and 'id="panel-readings"' in page
    panel = page[page.index('id="panel-readings"'):]
    assert "167" in panel and "93" in panel and "m-beyond" in panel
    reads = await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'read' AND actor_staff_id = $1 "
        "AND detail->>'part' = 'monitoring'", ward.gp.id)
    assert reads == 1


async def test_the_call_page_opens_without_the_tab_when_records_are_off(
        conn, rec, ward, db_url, config, tmp_path, aiohttp_client, password_checks,
        make_booking):  # noqa: F811
    """Without the keyring the readings cannot be opened; the clinician still gets her call
    page (it was refused with "records are not available"), only without the tab."""
    from dataclasses import replace

    from server.app import create_app

    booking = await make_booking(ward.patient, ward.gp.id)
    c = await store.get_by_booking(conn, booking)
    assert c is not None
    await enrol(conn, rec, ward.nurse, ward.patient)
    no_keys = tmp_path / "no-keyring"
    no_keys.mkdir()
    client = await aiohttp_client(create_app(replace(config, data_dir=no_keys),
                                             password_checks=password_checks))
    await login_as(client, ward.gp, db_url)
    resp = await client.get(f"/consultation/{c.room_id}")
    page = await resp.text()
    assert resp.status == 200 and 'id="tab-notes"' in page
    assert 'id="tab-readings"' not in page
