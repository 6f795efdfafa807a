"""The `casa` command: user add, migrate, and serve/demo on an embedded PostgreSQL that
starts with the server and stops with it."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest

from server.auth import totp
from server.demo import DEMO_PASSWORD, DEMO_STAFF
from tests.conftest import SECRET_KEY
from tests.pg import serving_url
from tests.processes import listener, port_of

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASA_", "DATABASE_URL"))}
    env.update(extra)
    return env


def _casa(*args: str, env: dict[str, str], stdin: str | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def test_migrate_with_database_url_needs_the_owner_url(db_url, tmp_path):
    env = _env(DATABASE_URL=serving_url(db_url), CASA_SECRET_KEY=SECRET_KEY,
               CASA_DATA_DIR=str(tmp_path))
    refused = _casa("migrate", env=env)
    assert refused.returncode == 2 and "CASA_OWNER_DATABASE_URL" in refused.stderr
    done = _casa("migrate", env={**env, "CASA_OWNER_DATABASE_URL": db_url})
    assert done.returncode == 0 and "applied 0 migration(s)" in done.stdout, done.stderr


def test_user_add_creates_an_account_and_refuses_bad_input(db_url, tmp_path):
    env = _env(DATABASE_URL=serving_url(db_url), CASA_SECRET_KEY=SECRET_KEY,
               CASA_DATA_DIR=str(tmp_path))
    ok = _casa("user", "add", "--email", "nuova@casa.example", "--name", "Nuova Medica",
               "--role", "gp", "--centre", "mazzini", "--password-stdin",
               env=env, stdin="a long enough password\n")
    if "unknown centre" in ok.stderr:  # centres are data: load them, then retry
        pytest.fail("centres were not loaded by migrations/sync")
    assert ok.returncode == 0, ok.stderr
    assert "created gp account" in ok.stdout
    dup = _casa("user", "add", "--email", "NUOVA@casa.example", "--name", "X", "--role", "gp",
                "--password-stdin", env=env, stdin="a long enough password\n")
    assert dup.returncode == 2 and "already exists" in dup.stderr
    weak = _casa("user", "add", "--email", "w@casa.example", "--name", "X", "--role", "nurse",
                 "--password-stdin", env=env, stdin="short\n")
    assert weak.returncode == 2 and "at least" in weak.stderr
    centre = _casa("user", "add", "--email", "c@casa.example", "--name", "X", "--role", "nurse",
                   "--centre", "atlantis", "--password-stdin", env=env,
                   stdin="a long enough password\n")
    assert centre.returncode == 2 and "centre" in centre.stderr
    assert "a long enough password" not in ok.stdout + ok.stderr + dup.stderr


@pytest.fixture(scope="module")
def demo_dir():
    # Not under pytest's tmp root: pytest keeps that at 0700 (and resets it when another
    # session starts), but the embedded server runs as another user and must traverse it.
    d = tempfile.mkdtemp(prefix="casa-demo-")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _start(args: list[str], env: dict[str, str], sock: socket.socket
           ) -> tuple[subprocess.Popen[str], str]:
    """Start ``casa <args>`` serving on ``sock`` (``--fd``: a port bound by the test, which no
    other process can take before the server listens)."""
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", *args, "--fd", str(sock.fileno())],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, pass_fds=(sock.fileno(),))
    out = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "Press Ctrl-C" in line or "Casa is serving" in line:
            return proc, "".join(out)
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(out))


def _postgres_running(pgdata: Path) -> bool:
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "postgres" and str(pgdata) in " ".join(p.info["cmdline"] or []):
            return True
    return False


async def _login_lands_home(base: str, email: str, totp_key: str | None) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        page = await (await s.get(f"{base}/login")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        resp = await s.post(f"{base}/login", data={"email": email, "password": DEMO_PASSWORD,
                                                   "csrf_token": token})
        html = await resp.text()
        if totp_key is not None:
            assert "/login/totp" in str(resp.url)
            raw = totp_key.replace(" ", "")
            secret = base64.b32decode(raw + "=" * (-len(raw) % 8))
            token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
            resp = await s.post(f"{base}/login/totp",
                                data={"code": totp.current_code(secret), "csrf_token": token})
            html = await resp.text()
        assert resp.status == 200 and str(resp.url).endswith("/home"), (email, resp.url)
        match = re.search(r'data-role="(\w+)"', html)
        assert match, html[:500]
        return match.group(1)


async def test_demo_serves_every_role_then_stops_postgres_and_is_idempotent(demo_dir):
    sock = listener()   # kept for the second run, which serves on the same port
    port = port_of(sock)
    env = _env(CASA_DATA_DIR=str(demo_dir))
    proc, out = _start(["demo"], env, sock)
    try:
        assert f"http://127.0.0.1:{port}/" in out
        key = re.search(r"authenticator app: ([A-Z2-7 ]+)", out)
        assert key, out
        assert _postgres_running(demo_dir / "pgdata")
        base = f"http://127.0.0.1:{port}"
        for email, _name, role, _lang, _where in DEMO_STAFF:
            landed = await _login_lands_home(base, email,
                                             key.group(1) if role.value == "admin" else None)
            assert landed == role.value
        async with aiohttp.ClientSession() as s:
            health = await (await s.get(f"{base}/healthz")).json()
        assert health["database"]["status"] == "up"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert not _postgres_running(demo_dir / "pgdata"), "embedded PostgreSQL left running"

    counts_before = await _counts(demo_dir)
    proc, _ = _start(["demo"], env, sock)
    sock.close()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert await _counts(demo_dir) == counts_before


async def _counts(data_dir: Path) -> dict[str, int]:
    from server import db

    embedded = db.EmbeddedDatabase(data_dir)
    uri = embedded.start()
    try:
        conn = await asyncpg.connect(db.database_name_uri(uri, "casa"))
        try:
            tables = [r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('schema_migrations', 'staff_sessions', 'login_failures')")]
            return {t: await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables}
        finally:
            await conn.close()
    finally:
        embedded.stop()


def test_serve_without_secret_refuses_and_migrate_works(demo_dir):
    env = _env(CASA_DATA_DIR=str(demo_dir))
    refused = _casa("serve", env=env)
    assert refused.returncode == 2 and "CASA_SECRET_KEY" in refused.stderr
    no_socket = _casa("serve", "--fd", "99", env=env)   # nothing open as descriptor 99
    assert no_socket.returncode == 2 and "--fd 99 is not an open socket" in no_socket.stderr
    no_origin = _casa("serve", env={**env, "CASA_SECRET_KEY": SECRET_KEY})
    assert no_origin.returncode == 2 and "CASA_PUBLIC_ORIGIN" in no_origin.stderr
    # Run twice: the demo test may have migrated this directory already, or not (it may run
    # in the other test process); the second run has nothing left to apply either way.
    for _ in range(2):
        migrated = _casa("migrate", "--demo", env=env)
        assert migrated.returncode == 0, migrated.stderr
    assert "applied 0 migration(s)" in migrated.stdout
    assert not _postgres_running(demo_dir / "pgdata")


async def test_serve_terminates_tls_with_the_configured_certificate(db_url, tmp_path):
    import ssl

    from server.tls import ensure_self_signed

    cert, key = ensure_self_signed(tmp_path / "tls", "127.0.0.1")
    sock = listener()
    port = port_of(sock)
    env = _env(DATABASE_URL=serving_url(db_url), CASA_SECRET_KEY=SECRET_KEY,
               CASA_DATA_DIR=str(tmp_path), CASA_TLS_CERT=str(cert), CASA_TLS_KEY=str(key),
               CASA_PUBLIC_ORIGIN=f"https://127.0.0.1:{port}")
    proc, out = _start(["serve"], env, sock)
    sock.close()
    try:
        assert f"https://127.0.0.1:{port}/" in out
        ctx = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as s:
            resp = await s.get(f"https://127.0.0.1:{port}/login", ssl=ctx)
            assert resp.status == 200
            assert "max-age" in resp.headers["Strict-Transport-Security"]
            assert resp.cookies["casa_csrf"]["secure"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
