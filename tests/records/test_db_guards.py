"""The database itself guards signed notes and the audit log, for an ordinary application role
(not only for the superuser the tests otherwise use)."""

from __future__ import annotations

import secrets

import asyncpg
import pytest

from records import audit, content
from records.access import Category
from server.staff import Role


@pytest.fixture
async def app_conn(db_url, conn):
    role = f"casa_app_{secrets.token_hex(4)}"
    await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                       f"TO {role}")
    try:
        c = await asyncpg.connect(db_url, user=role)
    except (asyncpg.PostgresError, OSError) as exc:
        await conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        pytest.fail(f"cannot log in as a second, non-superuser role on this server "
                    f"({type(exc).__name__}); the guard test needs one")
    yield c
    await c.close()
    await conn.execute(f"DROP OWNED BY {role}")
    await conn.execute(f"DROP ROLE {role}")


async def test_application_role_cannot_change_signed_notes_or_audit_rows(app_conn, conn, rec,
                                                                         make_staff, make_patient,
                                                                         make_booking):
    assert not await app_conn.fetchval("SELECT rolsuper FROM pg_roles "
                                       "WHERE rolname = current_user")
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    note = await rec.create(conn, gp, booking_id=booking, patient_id=patient, category=Category.GP,
                            content=content.parse({"text": "signed text"}))
    await rec.sign(conn, gp, note.id)
    await audit.append(conn, action="read", actor_staff_id=gp.id, actor_kind="staff",
                       patient_id=patient, booking_id=booking, detail={})
    # Each statement is refused by its trigger (the role holds every grant), each with the
    # trigger's own SQLSTATE: 23000 for notes, 42501 for the audit log.
    for sql, sqlstate, why in (
            ("UPDATE note_versions SET ciphertext = ciphertext || 'x'::bytea", "23000",
             "signed note versions are locked"),
            ("UPDATE note_versions SET status = 'draft', signed_at = NULL", "23000",
             "signed note versions are locked"),
            ("DELETE FROM note_versions", "23000", "never deleted"),
            ("UPDATE audit_log SET detail = '{}'", "42501", "append-only"),
            ("DELETE FROM audit_log", "42501", "append-only")):
        with pytest.raises(asyncpg.PostgresError, match=why) as refused:
            await app_conn.execute(sql)
        assert refused.value.sqlstate == sqlstate, sql
    # What the application may do to a signed version: re-wrap (rotation) or erase.
    await app_conn.execute("UPDATE note_versions SET wrapped_key = NULL, erased_at = now()")
    assert await conn.fetchval("SELECT count(*) FROM note_versions WHERE erased_at IS NULL") == 0
