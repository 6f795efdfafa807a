"""The app connects as a least-privilege role: the audit log's and signed notes' guards bind
the app itself, which can neither switch them off nor step around them."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import pytest

from records import audit, content
from records.access import Category
from server import db, dbroles
from server.config import Config, ConfigError
from server.keys import POOL
from server.staff import Role
from tests.conftest import SECRET_KEY
from tests.pg import serving_url

INSUFFICIENT_PRIVILEGE = "42501"
INTEGRITY_CONSTRAINT_VIOLATION = "23000"


async def _refused(conn: asyncpg.Connection, sql: str) -> str:
    try:
        async with conn.transaction():
            await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        return str(exc.sqlstate)
    raise AssertionError(f"the serving role was allowed: {sql}")


@pytest.fixture
async def signed_note(conn: asyncpg.Connection, rec: Any, make_staff: Any, make_patient: Any,
                      make_booking: Any) -> int:
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    note = await rec.create(conn, gp, booking_id=booking, patient_id=patient,
                            category=Category.GP, content=content.parse({"text": "firmata"}))
    await rec.sign(conn, gp, note.id)
    await audit.append(conn, action="read", actor_staff_id=gp.id, actor_kind="staff",
                       patient_id=patient, booking_id=booking, detail={})
    return int(note.id)


async def test_the_app_connects_as_a_role_without_powers(client: Any) -> None:
    pool = client.server.app[POOL]
    row = await pool.fetchrow(
        "SELECT current_user AS who, rolsuper, rolreplication, rolbypassrls, rolcreaterole, "
        "rolcreatedb FROM pg_roles WHERE rolname = current_user")
    assert row["who"] == dbroles.SERVING_ROLE
    assert not any(row[k] for k in ("rolsuper", "rolreplication", "rolbypassrls",
                                    "rolcreaterole", "rolcreatedb"))
    owned = await pool.fetchval(
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND pg_has_role(current_user, relowner, 'MEMBER')")
    assert owned == 0


async def test_the_serving_role_cannot_touch_evidence_or_switch_off_its_guards(
        client: Any, conn: asyncpg.Connection, signed_note: int) -> None:
    pool = client.server.app[POOL]
    before = await conn.fetch("SELECT * FROM audit_log ORDER BY id")
    versions = await conn.fetch("SELECT * FROM note_versions ORDER BY note_id, version")
    async with pool.acquire() as app:
        refusals = {
            "DELETE FROM audit_log": INSUFFICIENT_PRIVILEGE,
            "UPDATE audit_log SET detail = '{}'": INSUFFICIENT_PRIVILEGE,
            "TRUNCATE audit_log": INSUFFICIENT_PRIVILEGE,
            "TRUNCATE note_versions": INSUFFICIENT_PRIVILEGE,
            "DELETE FROM note_versions": INSUFFICIENT_PRIVILEGE,
            # The signed-note trigger binds the app: a signed version is locked.
            "UPDATE note_versions SET ciphertext = ciphertext || 'x'::bytea":
                INTEGRITY_CONSTRAINT_VIOLATION,
            "UPDATE note_versions SET status = 'draft', signed_at = NULL":
                INTEGRITY_CONSTRAINT_VIOLATION,
            # Only an owner may disable or drop a trigger.
            "ALTER TABLE audit_log DISABLE TRIGGER ALL": INSUFFICIENT_PRIVILEGE,
            "ALTER TABLE note_versions DISABLE TRIGGER note_versions_guard":
                INSUFFICIENT_PRIVILEGE,
            "DROP TRIGGER audit_log_no_update ON audit_log": INSUFFICIENT_PRIVILEGE,
            "ALTER TABLE audit_log OWNER TO casa_app": INSUFFICIENT_PRIVILEGE,
            # replica mode would skip every trigger; only a superuser may set it.
            "SET session_replication_role = replica": INSUFFICIENT_PRIVILEGE,
            "CREATE TABLE shadow (id int)": INSUFFICIENT_PRIVILEGE,
            f"SET ROLE {dbroles.OWNER_ROLE}": INSUFFICIENT_PRIVILEGE,
        }
        got = {sql: await _refused(app, sql) for sql in refusals}
        assert got == refusals
        assert await app.fetchval("SHOW session_replication_role") == "origin"
    assert await conn.fetch("SELECT * FROM audit_log ORDER BY id") == before
    assert await conn.fetch("SELECT * FROM note_versions ORDER BY note_id, version") == versions


async def test_migrate_restores_the_grants_and_takes_back_extra_ones(db_url: str,
                                                                      conn: asyncpg.Connection
                                                                      ) -> None:
    role = dbroles.SERVING_ROLE
    await conn.execute(f"REVOKE INSERT ON staff FROM {role}")
    await conn.execute(f"GRANT TRUNCATE, DELETE ON audit_log TO {role}")
    assert await db.prepare(conn, role) == []
    assert await conn.fetchval("SELECT has_table_privilege($1, 'staff', 'INSERT')", role)
    for privilege in ("TRUNCATE", "DELETE", "UPDATE"):
        assert not await conn.fetchval("SELECT has_table_privilege($1, 'audit_log', $2)",
                                       role, privilege)
    assert await conn.fetchval("SELECT has_table_privilege($1, 'audit_log', 'INSERT')", role)
    assert not await conn.fetchval("SELECT has_table_privilege($1, 'notes', 'DELETE')", role)
    assert not await conn.fetchval(
        "SELECT has_schema_privilege($1, 'public', 'CREATE')", role)
    # Sequences: nextval, never setval.
    assert await conn.fetchval("SELECT has_sequence_privilege($1, 'staff_id_seq', 'USAGE')", role)
    assert not await conn.fetchval(
        "SELECT has_sequence_privilege($1, 'staff_id_seq', 'UPDATE')", role)


async def test_serving_as_a_superuser_is_refused(db_url: str, tmp_path: Any) -> None:
    config = Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=db_url)
    with pytest.raises(ConfigError, match="superuser"):
        async with db.open_database(config):
            pass


async def test_an_owner_url_migrates_and_creates_the_serving_role(databases: Any,
                                                                   tmp_path: Any) -> None:
    """A DATABASE_URL deployment: the owner (not a superuser) migrates and creates the serving
    role named by DATABASE_URL; the app then serves as that role."""
    suffix = secrets.token_hex(3)
    owner, serving = f"own_{suffix}", f"srv_{suffix}"
    name = await databases.create_empty()
    admin = await asyncpg.connect(databases.uri(name))
    try:
        await admin.execute(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD 'o-{suffix}'")
        await admin.execute(f'ALTER DATABASE "{name}" OWNER TO {owner}')
        config = Config(
            secret_key=SECRET_KEY, data_dir=tmp_path,
            database_url=db.with_user(databases.uri(name), serving, f"s-{suffix}"),
            owner_database_url=db.with_user(databases.uri(name), owner, f"o-{suffix}"))
        async with db.open_served(config) as database:
            assert database.applied == [m.version for m in db.load_migrations()]
            assert await database.pool.fetchval("SELECT current_user") == serving
        assert await admin.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class "
                                    "WHERE oid = 'audit_log'::regclass") == owner
        assert not await admin.fetchval(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = $1", serving)
        assert not await admin.fetchval("SELECT has_table_privilege($1, 'audit_log', 'DELETE')",
                                        serving)
        # Without the owner's address the app only checks the schema, and serves.
        serve_only = Config(secret_key=SECRET_KEY, data_dir=tmp_path,
                            database_url=config.database_url)
        async with db.open_served(serve_only) as database:
            assert database.applied == []
    finally:
        await admin.close()
        await databases.drop(name)
        cleanup = await asyncpg.connect(databases.uri("postgres"))
        try:
            for role in (serving, owner):
                await cleanup.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await cleanup.close()


async def test_a_database_migrated_as_the_superuser_is_handed_to_the_owner_role(databases: Any
                                                                                ) -> None:
    """An embedded data directory from before the roles: everything belonged to postgres."""
    name = await databases.create_empty()
    conn = await asyncpg.connect(databases.uri(name))
    try:
        await db.migrate(conn)
        assert await db.prepare(conn, dbroles.SERVING_ROLE) == []
        foreign = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind IN ('r', 'S', 'v') AND pg_get_userbyid(relowner) <> $1",
            dbroles.OWNER_ROLE)
        assert [r["relname"] for r in foreign] == []
        assert await conn.fetchval("SELECT pg_get_userbyid(proowner) FROM pg_proc "
                                   "WHERE proname = 'audit_log_append_only'") == dbroles.OWNER_ROLE
        assert await conn.fetchval("SELECT pg_get_userbyid(typowner) FROM pg_type "
                                   "WHERE typname = 'staff_role'") == dbroles.OWNER_ROLE
        assert await conn.fetchval("SELECT has_table_privilege($1, 'audit_log', 'INSERT')",
                                   dbroles.SERVING_ROLE)
        # And the owner role can migrate further: it may alter what it now owns.
        await conn.execute(f"SET ROLE {dbroles.OWNER_ROLE}")
        await conn.execute("ALTER TABLE staff ADD COLUMN later_column int")
    finally:
        await conn.close()
        await databases.drop(name)


async def test_serving_a_schema_behind_the_code_is_refused(databases: Any, tmp_path: Any) -> None:
    name = await databases.create_empty()
    try:
        config = Config(secret_key=SECRET_KEY, data_dir=tmp_path,
                        database_url=serving_url(databases.uri(name)))
        with pytest.raises(ConfigError, match="run casa migrate"):
            async with db.open_database(config):
                pass
    finally:
        await databases.drop(name)
