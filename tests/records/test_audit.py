"""The audit log: append-only in the database, hash-chained, verified by ``casa audit verify``."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from records import audit
from server.staff import Role
from tests.records.conftest import login_as, run_cli_async


async def append_entry(conn, i: int, patient: int | None = None) -> None:
    await audit.append(conn, action="consultation_join", actor_staff_id=None,
                       actor_kind="patient", patient_id=patient, booking_id=i,
                       detail={"peer": f"p{i}", "n": i, "kiosk": i % 2 == 0, "ids": [i, 1]})


async def test_concurrent_appends_form_one_unbroken_chain(db_url, conn):
    conns = [await asyncpg.connect(db_url) for _ in range(8)]
    try:
        async def worker(c, base: int) -> None:
            for i in range(5):
                await append_entry(c, base + i)

        await asyncio.wait_for(asyncio.gather(*[worker(c, k * 5) for k, c in enumerate(conns)]),
                               timeout=30)
    finally:
        for c in conns:
            await c.close()
    result = await audit.verify(conn)
    assert result.ok and result.rows == 40


async def test_database_refuses_update_delete_and_truncate(conn):
    await append_entry(conn, 1)
    for sql in ("UPDATE audit_log SET action = 'read'", "DELETE FROM audit_log",
                "TRUNCATE audit_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only") as refused:
            await conn.execute(sql)
        assert refused.value.sqlstate == "42501", sql


async def test_bad_appends_are_refused(conn):
    with pytest.raises(ValueError, match="actor_kind"):
        await audit.append(conn, action="read", actor_staff_id=None, actor_kind="robot",
                           patient_id=None, booking_id=None, detail={})
    with pytest.raises(ValueError, match="detail"):
        await audit.append(conn, action="read", actor_staff_id=None, actor_kind="system",
                           patient_id=None, booking_id=None, detail={"x": 1.5})
    with pytest.raises(asyncpg.CheckViolationError):
        await audit.append(conn, action="Drop Table", actor_staff_id=None,
                           actor_kind="system", patient_id=None, booking_id=None, detail={})


async def tamper(conn, sql: str) -> None:
    # Deliberately bypass the append-only trigger, as an attacker with the owner role could.
    await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
    await conn.execute(sql)
    await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")


async def test_cli_finds_a_tampered_row(config, conn):
    for i in range(5):
        await append_entry(conn, i)
    assert (await audit.verify(conn)).ok
    target = await conn.fetchval("SELECT id FROM audit_log ORDER BY id OFFSET 2 LIMIT 1")
    await tamper(conn, f"UPDATE audit_log SET detail = '{{\"peer\": \"evil\"}}' "
                        f"WHERE id = {target}")
    bad = await run_cli_async(config, "audit", "verify")
    assert bad.returncode == 1
    assert f"BROKEN at row id {target}" in bad.stdout and "edited" in bad.stdout


async def test_cli_finds_a_deleted_row(config, conn):
    for i in range(5):
        await append_entry(conn, i)
    ids = [r["id"] for r in await conn.fetch("SELECT id FROM audit_log ORDER BY id")]
    await tamper(conn, f"DELETE FROM audit_log WHERE id = {ids[1]}")
    bad = await run_cli_async(config, "audit", "verify")
    assert bad.returncode == 1
    assert f"BROKEN at row id {ids[2]}" in bad.stdout and "deleted" in bad.stdout


async def test_staff_login_is_audited_and_admins_search_the_log(client, conn, make_staff,
                                                                make_patient, db_url):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    await login_as(client, gp, db_url)
    assert (await client.get(f"/patients/{patient}/record")).status == 200
    row = await conn.fetchrow("SELECT actor_staff_id, detail->>'factor' AS factor "
                              "FROM audit_log WHERE action = 'staff_login'")
    assert row["actor_staff_id"] == gp.id and row["factor"] == "password"
    resp = await client.get("/admin/audit")
    assert resp.status == 403
    await client.post("/logout", headers={"X-CSRF-Token": "x"})
    client.session.cookie_jar.clear()

    admin = await make_staff(Role.ADMIN, ("san-siro",))
    await login_as(client, admin, db_url)
    page = await (await client.get(f"/admin/audit?patient={patient}")).text()
    assert 'data-audit-id' in page and "staff_login" not in page and ">read<" in page
    page = await (await client.get(f"/admin/audit?staff={gp.id}&from=2020-01-01")).text()
    assert "staff_login" in page
    page = await (await client.get("/admin/audit?from=2999-01-01")).text()
    assert 'data-audit-id' not in page
    assert (await client.get("/admin/audit?from=yesterday")).status == 422
    assert (await client.get("/admin/audit?patient=abc")).status == 422
    assert (await audit.verify(conn)).ok
