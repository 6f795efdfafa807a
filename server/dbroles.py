"""Who may do what in the database: an owner role migrates, a serving role serves.

The serving role reads and writes rows and owns nothing. Not owning the tables, it cannot
disable or drop the triggers that keep the audit log append-only and signed note versions
locked, nor TRUNCATE; not being a superuser, it cannot ``SET session_replication_role`` to
skip them. ``casa migrate`` (and every start against the embedded server) creates the roles
when they are missing and re-grants the serving role after each migration, so a table added by
a later migration is granted in the same run.

Roles are cluster-wide while grants live in each database: every database of one cluster
(test copies, their template, several instances) shares the two roles, and creating them
tolerates a concurrent creator.
"""

from __future__ import annotations

import logging

import asyncpg

from server.config import ConfigError

log = logging.getLogger("casa.db")

# The embedded server's roles; with DATABASE_URL the serving role is the URL's user.
OWNER_ROLE = "casa_owner"
SERVING_ROLE = "casa_app"

# Rows that are evidence: read and appended, never changed (the trigger refuses as well).
APPEND_ONLY = frozenset({"audit_log"})
# Written once and read by every instance (the recipes of page bundles, server.bundle_recipes).
INSERT_ONLY = frozenset({"static_bundles"})
# Notes are erased, never deleted (the triggers refuse as well); drafts are re-saved.
NEVER_DELETED = frozenset({"notes", "note_versions"})
# Written only by migrate; read at start to check the schema is current.
READ_ONLY = frozenset({"schema_migrations"})

# Everything a role could use to step around the triggers or the grants.
NO_POWERS = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"

IS_SUPERUSER = "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = $1::text"
# format() quotes the name and the password, which a utility statement cannot take as $n.
CREATE_ROLE = (
    "SELECT format('CREATE ROLE %I ' || $2::text || ' " + NO_POWERS + "'"
    " || CASE WHEN $3::text IS NULL THEN '' ELSE format(' PASSWORD %L', $3::text) END,"
    " $1::text)"
)
ROLE_HAS_POWERS = """
SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls
FROM pg_roles WHERE rolname = $1::text
"""
DATABASE_OWNER = """
SELECT pg_get_userbyid(datdba), format('ALTER DATABASE %I OWNER TO %I', datname, $1::text)
FROM pg_database WHERE datname = current_database()
"""
# Objects of this schema created before the owner role existed (they belonged to whoever ran
# the migrations), except those of extensions. Tables carry their indexes, identity sequences
# and row types with them.
FOREIGN_OWNED = """
SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
              c.oid::regclass, $1::text)
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $1::text)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('e', 'i', 'a'))
UNION ALL
SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text)
FROM pg_proc p
WHERE p.pronamespace = current_schema()::regnamespace
  AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = $1::text)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $1::text)
FROM pg_type t
WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd')
  AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = $1::text)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                  AND d.objid = t.oid AND d.deptype = 'e')
"""
RELATIONS = """
SELECT c.relname, c.relkind::text AS relkind, format('%I', c.relname) AS ident
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relname
"""
QUOTE_IDENT = "SELECT format('%I', $1::text)"
# What makes a serving role unfit: a power, or owning (or being able to become the owner of)
# anything in the schema.
SERVING_UNFIT = """
SELECT r.rolsuper, r.rolreplication OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb,
       EXISTS (SELECT 1 FROM pg_class c
               WHERE c.relnamespace = current_schema()::regnamespace
                 AND c.relkind IN ('r', 'p') AND pg_has_role(current_user, c.relowner, 'MEMBER'))
FROM pg_roles r WHERE r.rolname = current_user
"""


def table_privileges(table: str) -> str:
    """The serving role's privileges on one table: only what the code needs."""
    if table in READ_ONLY:
        return "SELECT"
    if table in APPEND_ONLY or table in INSERT_ONLY:
        return "SELECT, INSERT"
    if table in NEVER_DELETED:
        return "SELECT, INSERT, UPDATE"
    return "SELECT, INSERT, UPDATE, DELETE"


async def _ident(conn: asyncpg.Connection, name: str) -> str:
    return str(await conn.fetchval(QUOTE_IDENT, name))


async def ensure_role(conn: asyncpg.Connection, name: str, *, login: bool,
                      password: str | None = None) -> None:
    """Create role ``name`` without powers unless it exists. Another database's migration may
    create it at the same moment (roles are cluster-wide): losing that race is fine."""
    if await conn.fetchval(ROLE_EXISTS, name):
        return
    statement = await conn.fetchval(CREATE_ROLE, name, "LOGIN" if login else "NOLOGIN", password)
    try:
        await conn.execute(statement)
        log.info("created database role %s", name)
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        pass


async def prepare_as_superuser(conn: asyncpg.Connection, serving_role: str,
                               serving_password: str | None = None) -> None:
    """Embedded server, a test cluster, or an owner URL naming a superuser: make both roles
    (the serving one with DATABASE_URL's password, if any), hand the database and everything in
    it to the owner role, then act as the owner (``RESET ROLE`` undoes it)."""
    await ensure_role(conn, OWNER_ROLE, login=False)
    await ensure_role(conn, serving_role, login=True, password=serving_password)
    for role in (OWNER_ROLE, serving_role):
        if await conn.fetchval(ROLE_HAS_POWERS, role):
            await conn.execute(f"ALTER ROLE {await _ident(conn, role)} {NO_POWERS}")
    owner, alter = await conn.fetchrow(DATABASE_OWNER, OWNER_ROLE)
    if owner != OWNER_ROLE:
        # The owner role creates extensions (trusted ones need CREATE on the database) and
        # owns the public schema through pg_database_owner.
        await conn.execute(alter)
    for statement in [r[0] for r in await conn.fetch(FOREIGN_OWNED, OWNER_ROLE)]:
        await conn.execute(statement)
    await conn.execute(f"SET ROLE {await _ident(conn, OWNER_ROLE)}")


async def ensure_serving_role(conn: asyncpg.Connection, serving_role: str,
                              password: str | None) -> None:
    """DATABASE_URL: the owner creates the serving role if it is missing (CREATEROLE needed)."""
    if await conn.fetchval(ROLE_EXISTS, serving_role):
        return
    try:
        await ensure_role(conn, serving_role, login=True, password=password)
    except asyncpg.InsufficientPrivilegeError:
        raise ConfigError(f"the database role {serving_role} (the user of DATABASE_URL) does "
                          "not exist and the owner may not create it: create it, or grant "
                          "CREATEROLE to the owner") from None


async def grant_serving(conn: asyncpg.Connection, serving_role: str) -> None:
    """Give the serving role exactly its privileges on every table and sequence, taking back
    anything else (a grant removed from the code is removed from the database)."""
    role = await _ident(conn, serving_role)
    async with conn.transaction():
        for row in await conn.fetch(RELATIONS):
            ident, kind = row["ident"], row["relkind"]
            if kind == "S":
                await conn.execute(f"REVOKE ALL ON SEQUENCE {ident} FROM {role}")
                await conn.execute(f"GRANT USAGE, SELECT ON SEQUENCE {ident} TO {role}")
            else:
                await conn.execute(f"REVOKE ALL ON TABLE {ident} FROM {role}")
                privileges = table_privileges(row["relname"])
                await conn.execute(f"GRANT {privileges} ON TABLE {ident} TO {role}")
        try:
            async with conn.transaction():  # a savepoint: an owner of the tables only
                await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
                await conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
        except asyncpg.InsufficientPrivilegeError:
            # The schema belongs to someone else, who decides; PUBLIC has USAGE and, since
            # PostgreSQL 15, no CREATE.
            log.warning("the owner role cannot grant on schema public; left as it is")


async def check_serving(conn: asyncpg.Connection) -> None:
    """Refuse to serve as a role that could step around the database's own guards."""
    superuser, powers, owns = await conn.fetchrow(SERVING_UNFIT)
    if superuser or powers or owns:
        what = ("a superuser" if superuser else "a role with CREATEDB, CREATEROLE, REPLICATION "
                "or BYPASSRLS" if powers else "the owner of the tables")
        raise ConfigError(f"DATABASE_URL connects as {what}; serve as a least-privilege role "
                          "and give the owner's address to casa migrate as "
                          "CASA_OWNER_DATABASE_URL (see README, Configuration)")


async def is_superuser(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(IS_SUPERUSER))
