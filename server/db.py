"""The database: an embedded PostgreSQL by default, DATABASE_URL otherwise; pools; migrations.

Casa migrates as an owner role and serves as a least-privilege role (``server/dbroles.py``).

Migrations are forward-only SQL files ``server/migrations/NNNN_name.sql`` applied in number
order, each in its own transaction, and recorded in ``schema_migrations``. They run under a
session-level advisory lock so two instances starting at once never both migrate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from server import background, dbroles
from server.config import ConfigError
from server.embedded import EmbeddedDatabase as EmbeddedDatabase
from server.supervisor import EmbeddedSupervisor

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


class MigrationMismatch(ConfigError):
    """The database's recorded migrations do not match this code's files: Casa refuses to
    start rather than serve a schema it does not know."""


def check_applied(applied: dict[int, str], migrations: list[Migration]) -> None:
    """Refuse an applied migration whose file changed since (migrations are forward-only, so
    the database holds what the old file said) and a database migrated by newer code."""
    known = {m.version: m for m in migrations}
    changed = [m for m in migrations if m.version in applied and applied[m.version] != m.checksum]
    if changed:
        names = ", ".join(f"{m.version:04d}_{m.name}.sql" for m in changed)
        raise MigrationMismatch(
            f"migration {names} changed after it was applied to this database; migrations are "
            "forward-only: restore the file as it was and put the change in a new migration")
    unknown = sorted(v for v in applied if v not in known)
    if unknown:
        versions = ", ".join(f"{v:04d}" for v in unknown)
        raise MigrationMismatch(
            f"the database has migrations this code does not know ({versions}): it was migrated "
            "by a newer version of Casa; run that version, or restore a backup taken before "
            "the upgrade")


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every pending migration; return the versions applied by this call.

    Refuses (``MigrationMismatch``, before applying anything) a database where an applied
    migration's file changed since, or that has migrations this code does not have."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(CREATE_MIGRATIONS_TABLE)
        applied = {r["version"]: r["checksum"] for r in await conn.fetch(SELECT_APPLIED)}
        migrations = load_migrations(directory)
        check_applied(applied, migrations)
        done: list[int] = []
        for m in migrations:
            if m.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(INSERT_APPLIED, m.version, m.name, m.checksum)
            log.info("applied migration %04d_%s", m.version, m.name)
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


def database_name_uri(base_uri: str, database: str) -> str:
    """The URI of another database on the same server, for the embedded socket URIs too."""
    parts = urlsplit(base_uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def with_user(uri: str, user: str, password: str | None = None) -> str:
    """The same address as another role (the embedded server trusts local connections)."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, parts.query, parts.fragment))


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


# After a crash PostgreSQL fsyncs every file of the data directory, one by one, before it
# recovers: seconds on a slow disk. syncfs flushes the file system in one call, as safely.
EMBEDDED_SETTINGS = {"recovery_init_sync_method": "syncfs"}
CURRENT_SETTING = "SELECT setting FROM pg_settings WHERE name = $1"


async def configure_embedded(server_uri: str) -> None:
    """Settings of the embedded server that the package does not make (kept across restarts
    in postgresql.auto.conf)."""
    conn = await asyncpg.connect(database_name_uri(server_uri, "postgres"))
    try:
        changed = False
        for name, value in EMBEDDED_SETTINGS.items():
            if await conn.fetchval(CURRENT_SETTING, name) != value:
                await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                changed = True
        if changed:
            await conn.execute("SELECT pg_reload_conf()")
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


@dataclass
class Database:
    """What ``open_database`` opened: the serving pool and, for the embedded server, its
    supervisor (started by ``supervise``)."""

    pool: asyncpg.Pool
    embedded: EmbeddedDatabase | None = None
    applied: list[int] = field(default_factory=list)  # migrations this opening applied
    supervisor: EmbeddedSupervisor | None = None
    # The serving role's address, for the few connections held outside the pool (the
    # signalling bus's listener and publisher).
    dsn: str = ""

    async def connect(self) -> asyncpg.Connection:
        """A connection outside the pool, as the serving role."""
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        return conn


def serving_dsn(config: Config, embedded_uri: str | None) -> str:
    if embedded_uri is not None:
        return with_user(database_name_uri(embedded_uri, DATABASE_NAME), dbroles.SERVING_ROLE)
    assert config.database_url is not None
    return config.database_url


async def prepare(owner: asyncpg.Connection, serving_role: str,
                  serving_password: str | None = None,
                  directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Migrate as the owner role and grant the serving role, under the migration lock (roles
    are created at most once however many instances start together). ``owner`` is a
    superuser connection (embedded server, test clusters), which creates both roles and acts
    as the owner role, or the owner's own connection (``CASA_OWNER_DATABASE_URL``)."""
    await owner.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        if await dbroles.is_superuser(owner):
            await dbroles.prepare_as_superuser(owner, serving_role, serving_password)
        else:
            await dbroles.ensure_serving_role(owner, serving_role, serving_password)
        try:
            applied = await migrate(owner, directory)
            await dbroles.grant_serving(owner, serving_role)
        finally:
            await owner.execute("RESET ROLE")
        return applied
    finally:
        await owner.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def migrate_as_owner(config: Config, embedded_uri: str | None) -> list[int]:
    """Migrate and grant as the embedded server's superuser, or as CASA_OWNER_DATABASE_URL
    with the serving role (and its password) taken from DATABASE_URL."""
    if embedded_uri is not None:
        owner_dsn = database_name_uri(embedded_uri, DATABASE_NAME)
        serving_role, password = dbroles.SERVING_ROLE, None
    else:
        if not config.owner_database_url:
            raise ConfigError("CASA_OWNER_DATABASE_URL is not set (the address of the role "
                              "that owns the tables, which migrations need)")
        owner_dsn = config.owner_database_url
        assert config.database_url is not None
        serving = urlsplit(config.database_url)
        serving_role, password = unquote(serving.username or ""), serving.password
        if not serving_role:
            raise ConfigError("DATABASE_URL must name its user (the serving role)")
    conn = await asyncpg.connect(owner_dsn, timeout=CONNECT_TIMEOUT_S)
    try:
        return await prepare(conn, serving_role, unquote(password) if password else None)
    finally:
        await conn.close()


async def check_schema(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> None:
    """Serving: refuse a database whose schema is behind this code, ahead of it, or built
    from migration files that have changed since."""
    try:
        applied = {r["version"]: r["checksum"] for r in await conn.fetch(SELECT_APPLIED)}
    except asyncpg.UndefinedTableError:
        applied = {}
    migrations = load_migrations(directory)
    check_applied(applied, migrations)
    missing = [m.version for m in migrations if m.version not in applied]
    if missing:
        raise ConfigError(f"the database lacks migrations {missing}: run casa migrate (with "
                          "CASA_OWNER_DATABASE_URL)")


@asynccontextmanager
async def open_database(config: Config, *, run_migrations: bool = True
                        ) -> AsyncIterator[asyncpg.Pool]:
    """The pool every command uses; see ``open_served``."""
    async with open_served(config, run_migrations=run_migrations) as database:
        yield database.pool


@asynccontextmanager
async def open_served(config: Config, *, run_migrations: bool = True
                      ) -> AsyncIterator[Database]:
    """DATABASE_URL, or the embedded server under ``CASA_DATA_DIR`` (started here and stopped
    on exit). The embedded server is always migrated (its superuser acts as the owner); with
    DATABASE_URL, migrations run when CASA_OWNER_DATABASE_URL is set and are otherwise only
    checked. The pool connects as the serving role, and refuses a role with more power."""
    embedded: EmbeddedDatabase | None = None
    embedded_uri: str | None = None
    if not config.database_url:
        embedded = EmbeddedDatabase(config.data_dir)
        embedded_uri = await asyncio.to_thread(embedded.start)
    try:
        if embedded_uri is not None:
            await ensure_database(embedded_uri, DATABASE_NAME)
            await configure_embedded(embedded_uri)
        applied: list[int] = []
        if run_migrations and (embedded_uri is not None or config.owner_database_url):
            applied = await migrate_as_owner(config, embedded_uri)
        dsn = serving_dsn(config, embedded_uri)
        pool = await create_pool(dsn)
        try:
            async with pool.acquire() as conn:
                await dbroles.check_serving(conn)
                await check_schema(conn)
            yield Database(pool, embedded, applied, dsn=dsn)
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            embedded.stop()


@asynccontextmanager
async def supervise(database: Database) -> AsyncIterator[None]:
    """Watch the embedded server (if any) for as long as the block runs."""
    if database.embedded is None:
        yield
        return
    database.supervisor = EmbeddedSupervisor(database.embedded, database.pool)
    async with background.running("database") as tasks:
        database.supervisor.watch(tasks)
        yield


# --- writes that may meet another writer ---

T = TypeVar("T")
# Deadlocks and serialization failures are the database's business, never the user's: the
# transaction is run again (every package's writes go through ``with_retry``).
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
MAX_ATTEMPTS = 8


async def with_retry(pool: asyncpg.Pool,
                     work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``with_retry_on`` with a connection of its own from ``pool``."""
    async with pool.acquire() as conn:
        return await with_retry_on(conn, work)


async def with_retry_on(conn: asyncpg.Connection,
                        work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work(conn)`` in a transaction, retrying deadlocks and serialization failures with
    a short jittered back-off (``work`` must not have effects outside the transaction before
    it commits)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                return await work(conn)
        except RETRYABLE as exc:
            if attempt == MAX_ATTEMPTS:
                raise
            log.warning("transaction retried",
                        extra={"attempt": attempt, "error": type(exc).__name__})
            await asyncio.sleep(random.uniform(0, 0.01 * 2 ** attempt))
    raise AssertionError("unreachable")
