"""``casa token create|list|revoke`` against a real database, as an operator would run them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from server.bookings import tokens
from server.staff import Role
from tests.conftest import SECRET_KEY
from tests.pg import serving_url

ROOT = Path(__file__).resolve().parents[2]


async def casa(db_url: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": serving_url(db_url), "CASA_SECRET_KEY": SECRET_KEY,
           "CASA_DATA_DIR": str(tmp_path), "CASA_LOG_LEVEL": "ERROR"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_token_create_list_revoke(db_url: str, tmp_path: Path, make_staff: Any, conn: Any):
    who = await make_staff(Role.COORDINATOR)
    code, out, err = await casa(db_url, tmp_path, "token", "create", "--user", who.email,
                                "--label", "reports")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("casa_") and "not shown again" in err
    found = await tokens.staff_for_token(conn, token)
    assert found is not None and found.id == who.id
    code, out, _ = await casa(db_url, tmp_path, "token", "list", "--user", who.email)
    assert code == 0 and "active" in out and "reports" in out and token not in out
    code, out, _ = await casa(db_url, tmp_path, "token", "revoke", "--user", who.email)
    assert code == 0 and "revoked 1" in out
    assert await tokens.staff_for_token(conn, token) is None


async def test_token_for_unknown_account_fails_cleanly(db_url: str, tmp_path: Path):
    code, out, err = await casa(db_url, tmp_path, "token", "create", "--user", "no@x.example")
    assert code == 2 and out == "" and "no active account" in err
