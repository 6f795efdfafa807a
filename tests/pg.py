"""A real PostgreSQL for the test suite: DATABASE_URL when set, else an embedded server in a
temporary directory. Migrations run once into a template, as the owner role with the serving
role granted, exactly as ``casa migrate`` does; each test gets a copy of it.

Fixtures connect as the superuser; the app under test connects as the serving role
(``serving_url``), so that every test exercises least privilege."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from server import db, dbroles

_counter = itertools.count()
# Only for an outside test server given as DATABASE_URL; the embedded one trusts local users.
SERVING_PASSWORD = "casa-test-serving-role"


def serving_url(url: str) -> str:
    """The same database as the app's serving role (the app is never tested as superuser)."""
    password = SERVING_PASSWORD if os.environ.get("DATABASE_URL") else None
    return db.with_user(url, dbroles.SERVING_ROLE, password)


class TestDatabases:
    def __init__(self) -> None:
        self._embedded: db.EmbeddedDatabase | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        url = os.environ.get("DATABASE_URL")
        if url:
            self.server_uri = url
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="casa-test-pg-")
            os.chmod(self._tmp.name, 0o755)
            self._embedded = db.EmbeddedDatabase(Path(self._tmp.name))
            self.server_uri = self._embedded.start()
        self.template = f"casa_template_{os.getpid()}"
        asyncio.run(self._make_template())

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(db.database_name_uri(self.server_uri, "postgres"))

    async def _make_template(self) -> None:
        admin = await self._admin()
        try:
            # Test processes sharing an outside server (make test runs two) would otherwise
            # create and grant the cluster's roles at the same time and fail on each other.
            # An advisory lock is per database: all take it in "postgres".
            await admin.execute("SELECT pg_advisory_lock(hashtext('casa-test-template'))")
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.template}"')
            await admin.execute(f'CREATE DATABASE "{self.template}"')
            conn = await asyncpg.connect(self.uri(self.template))
            try:
                await db.prepare(conn, dbroles.SERVING_ROLE)
                if self._embedded is None:
                    # An outside server does not trust local connections: give the serving
                    # role this run's password (its own cluster, its own throwaway role).
                    await conn.execute(f"ALTER ROLE {dbroles.SERVING_ROLE} "
                                       f"PASSWORD '{SERVING_PASSWORD}'")
            finally:
                await conn.close()
        finally:
            await admin.close()   # the lock goes with the session

    def uri(self, name: str) -> str:
        return db.database_name_uri(self.server_uri, name)

    async def create(self) -> str:
        name = f"casa_test_{os.getpid()}_{next(_counter)}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await conn.close()
        return name

    async def create_empty(self) -> str:
        name = f"casa_empty_{os.getpid()}_{next(_counter)}"
        conn = await self._admin()
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def drop(self, name: str) -> None:
        conn = await self._admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def close(self) -> None:
        async def drop_template() -> None:
            conn = await self._admin()
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
            finally:
                await conn.close()

        if self._embedded is None:
            asyncio.run(drop_template())
        else:
            self._embedded.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


class OwnServer:
    """An embedded PostgreSQL of one test alone, with a ``casa`` database prepared as
    ``casa migrate`` would: for tests that read or copy the server's files. Not under pytest's
    tmp_path: the server runs as another user, who must traverse the path."""

    def __init__(self, prefix: str = "casa-test-own-") -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        os.chmod(self._tmp.name, 0o755)
        self.server = db.EmbeddedDatabase(Path(self._tmp.name))
        self.pgdata = self.server.pgdata

    async def start(self) -> None:
        uri = await asyncio.to_thread(self.server.start)
        await db.ensure_database(uri, "casa")
        self.url = db.database_name_uri(uri, "casa")   # the superuser, for fixtures
        self.serving_url = db.with_user(self.url, dbroles.SERVING_ROLE)  # for the app
        conn = await asyncpg.connect(self.url)
        try:
            await db.prepare(conn, dbroles.SERVING_ROLE)
        finally:
            await conn.close()

    def close(self) -> None:
        self.server.stop()
        self._tmp.cleanup()


@contextlib.asynccontextmanager
async def own_server(prefix: str) -> AsyncIterator[OwnServer]:
    """An ``OwnServer`` started for the ``async with`` block and stopped after it, whatever
    happens in the block: what each test that reads or copies its server's files runs on."""
    own = OwnServer(prefix)
    try:
        await own.start()
        yield own
    finally:
        own.close()
