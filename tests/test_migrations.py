"""Migrations: numbered, forward-only, recorded, and safe when two instances start together."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from server import db
from tests.pg import serving_url

ROOT = Path(__file__).resolve().parent.parent


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



async def test_three_processes_migrating_at_once_apply_each_migration_once(databases, tmp_path):
    # Separate processes, as three instances of Casa starting together would be: each has its
    # own connection, and only the advisory lock keeps them from applying a migration twice.
    name = await databases.create_empty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASA_", "DATABASE_URL"))}
    # The owner (here the superuser) migrates; DATABASE_URL names the serving role to grant.
    env.update(CASA_OWNER_DATABASE_URL=databases.uri(name),
               DATABASE_URL=serving_url(databases.uri(name)), CASA_SECRET_KEY="k" * 40,
               CASA_DATA_DIR=str(tmp_path))
    try:
        procs = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "migrate", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(3)]
        outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 120)
        assert [p.returncode for p in procs] == [0, 0, 0], [e.decode() for _, e in outs]
        counts = sorted(int(o.decode().split()[1]) for o, _ in outs)
        expected = [m.version for m in db.load_migrations()]
        # However the three interleaved, the migrations were applied once in all.
        assert sum(counts) == len(expected) and counts[-1] > 0
        check = await asyncpg.connect(databases.uri(name))
        try:
            rows = await check.fetch("SELECT version FROM schema_migrations ORDER BY version")
            assert [r["version"] for r in rows] == expected
            assert await check.fetchval("SELECT count(*) FROM centres") == 5
        finally:
            await check.close()
    finally:
        await databases.drop(name)


async def test_a_changed_applied_migration_is_refused_before_anything_is_applied(
        databases, tmp_path):
    name = await databases.create_empty()
    files = tmp_path / "migrations"
    files.mkdir()
    (files / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    conn = await asyncpg.connect(databases.uri(name))
    try:
        assert await db.migrate(conn, files) == [1]
        (files / "0001_first.sql").write_text("CREATE TABLE first (id int, extra text);")
        (files / "0002_second.sql").write_text("CREATE TABLE second (id int);")
        with pytest.raises(db.MigrationMismatch, match=r"migration 0001_first\.sql changed after "
                           r"it was applied .* put the change in a new migration"):
            await db.migrate(conn, files)
        assert await conn.fetchval("SELECT to_regclass('second') IS NULL")
        with pytest.raises(db.MigrationMismatch, match=r"0001_first\.sql changed"):
            await db.check_schema(conn, files)
        # Restored as it was, it is accepted again and the new one applies.
        (files / "0001_first.sql").write_text("CREATE TABLE first (id int);")
        assert await db.migrate(conn, files) == [2]
        await db.check_schema(conn, files)
    finally:
        await conn.close()
        await databases.drop(name)


async def test_a_database_migrated_by_newer_code_is_refused(databases, tmp_path):
    name = await databases.create_empty()
    files = tmp_path / "migrations"
    files.mkdir()
    (files / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    (files / "0002_second.sql").write_text("CREATE TABLE second (id int);")
    conn = await asyncpg.connect(databases.uri(name))
    try:
        assert await db.migrate(conn, files) == [1, 2]
        (files / "0002_second.sql").unlink()  # the code is older than the database
        (files / "0003_third.sql").write_text("CREATE TABLE third (id int);")
        with pytest.raises(db.MigrationMismatch, match=r"migrations this code does not know "
                           r"\(0002\): it was migrated by a newer version of Casa"):
            await db.migrate(conn, files)
        assert await conn.fetchval("SELECT to_regclass('third') IS NULL")
        with pytest.raises(db.MigrationMismatch, match=r"does not know \(0002\)"):
            await db.check_schema(conn, files)
    finally:
        await conn.close()
        await databases.drop(name)


async def test_casa_migrate_refuses_a_newer_database_with_a_clear_message(databases, tmp_path):
    name = await databases.create()  # migrated by this code
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASA_", "DATABASE_URL"))}
    env.update(CASA_OWNER_DATABASE_URL=databases.uri(name),
               DATABASE_URL=serving_url(databases.uri(name)), CASA_SECRET_KEY="k" * 40,
               CASA_DATA_DIR=str(tmp_path))
    conn = await asyncpg.connect(databases.uri(name))
    try:
        await conn.execute("INSERT INTO schema_migrations (version, name, checksum) "
                           "VALUES (9999, 'from_the_future', 'x')")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "migrate", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 2
        assert "migrations this code does not know (9999)" in err.decode()
        assert "Traceback" not in err.decode()
    finally:
        await conn.close()
        await databases.drop(name)
