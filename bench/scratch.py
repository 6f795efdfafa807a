"""A scratch database for a benchmark: on DATABASE_URL's server (a fresh database there), or on
an embedded PostgreSQL in a temporary directory, migrated and dropped with the directory."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg

from server import db


@asynccontextmanager
async def scratch_pool(label: str) -> AsyncIterator[tuple[asyncpg.Pool, Path]]:
    """A pool (as the server's superuser) on a migrated database ``casa_bench_<label>_<pid>``,
    and a temporary directory for the benchmark's own files (a keyring, say)."""
    tmp = tempfile.TemporaryDirectory(prefix="casa-bench-")
    os.chmod(tmp.name, 0o755)  # noqa: S103 (the embedded server's own user enters it)
    embedded = None
    server_uri = os.environ.get("DATABASE_URL")
    if not server_uri:
        embedded = db.EmbeddedDatabase(Path(tmp.name))
        server_uri = embedded.start()
    name = f"casa_bench_{label}_{os.getpid()}"
    await db.ensure_database(server_uri, name)
    pool = await db.create_pool(db.database_name_uri(server_uri, name))
    try:
        async with pool.acquire() as conn:
            await db.migrate(conn)
        yield pool, Path(tmp.name)
    finally:
        await pool.close()
        if embedded is not None:
            embedded.stop()
        tmp.cleanup()


@contextmanager
def scratch_database(label: str) -> Iterator[tuple[str, str]]:
    """For benchmarks that run their own event loops (and a server in a child process): the
    URL of an empty database ``casa_bench_<label>_<pid>`` (as the server's superuser) and a
    temporary directory its server's user may enter, both gone afterwards."""
    with tempfile.TemporaryDirectory(prefix="casa-bench-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 (the embedded server's own user enters it)
        embedded = None
        server_uri = os.environ.get("DATABASE_URL")
        if not server_uri:
            embedded = db.EmbeddedDatabase(Path(tmp))
            server_uri = embedded.start()
        name = f"casa_bench_{label}_{os.getpid()}"
        asyncio.run(db.ensure_database(server_uri, name))
        try:
            yield db.database_name_uri(server_uri, name), tmp
        finally:
            if embedded is not None:
                embedded.stop()
