"""Migrations: numbered, forward-only, recorded, and safe when two instances start together."""

from __future__ import annotations

import asyncio

import asyncpg

from server import db


def test_migration_files_are_numbered_and_unique():
    migrations = db.load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert versions[0] == 1


async def test_two_instances_migrating_at_once_apply_each_migration_once(databases):
    name = await databases.create_empty()
    uri = databases.uri(name)
    try:
        conns = [await asyncpg.connect(uri) for _ in range(4)]
        try:
            results = await asyncio.gather(*(db.migrate(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
        applied = [v for r in results for v in r]
        expected = [m.version for m in db.load_migrations()]
        # Every migration applied exactly once across the four, none failed.
        assert sorted(applied) == expected
        check = await asyncpg.connect(uri)
        try:
            rows = await check.fetch("SELECT version FROM schema_migrations ORDER BY version")
            assert [r["version"] for r in rows] == expected
            # Running again applies nothing.
            assert await db.migrate(check) == []
        finally:
            await check.close()
    finally:
        await databases.drop(name)


async def test_a_failing_migration_rolls_back_and_is_not_recorded(databases, tmp_path):
    name = await databases.create_empty()
    uri = databases.uri(name)
    bad = tmp_path / "migrations"
    bad.mkdir()
    (bad / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (bad / "0002_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    conn = await asyncpg.connect(uri)
    try:
        try:
            await db.migrate(conn, bad)
        except asyncpg.UndefinedFunctionError:
            pass
        else:
            raise AssertionError("the broken migration did not fail")
        assert await conn.fetchval("SELECT to_regclass('ok') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('half') IS NULL")
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == 1
        # The lock was released despite the failure.
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", db.MIGRATION_LOCK_ID)
    finally:
        await conn.close()
        await databases.drop(name)

