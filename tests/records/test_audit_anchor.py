"""Anchors kept outside the database catch what the chain alone cannot: a deleted tail."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from records import anchor, audit
from tests.records.conftest import run_cli_async
from tests.records.test_audit import append_entry, tamper


async def _anchor_file(config, tmp_path, name: str = "anchors.txt"):
    out = await run_cli_async(config, "audit", "anchor")
    assert out.returncode == 0, out.stderr
    path = tmp_path / name
    with path.open("a") as f:
        f.write(out.stdout)
    return path, anchor.parse(out.stdout.splitlines())[0]


async def test_deleted_tail_passes_the_chain_but_not_the_anchor(config, conn, tmp_path):
    for i in range(6):
        await append_entry(conn, i)
    path, first = await _anchor_file(config, tmp_path)
    assert first.id == await conn.fetchval("SELECT max(id) FROM audit_log")
    for i in range(6, 9):
        await append_entry(conn, i)
    path, newest = await _anchor_file(config, tmp_path)
    ok = await run_cli_async(config, "audit", "verify", "--anchors", str(path))
    assert ok.returncode == 0 and "9 row(s), chain verified, 2 anchor(s) matched" in ok.stdout

    # Deleting the newest rows leaves a chain that still verifies on its own...
    await tamper(conn, f"DELETE FROM audit_log WHERE id > {first.id}")
    assert (await audit.verify(conn)).ok
    # ...but not against the anchor taken before.
    bad = await run_cli_async(config, "audit", "verify", "--anchors", str(path))
    assert bad.returncode == 1
    assert f"row id {newest.id} anchored at {newest.at} is missing" in bad.stdout


async def test_a_rewritten_chain_does_not_match_its_anchor(config, conn, tmp_path):
    for i in range(4):
        await append_entry(conn, i)
    path, head = await _anchor_file(config, tmp_path)
    # Delete everything and append a fresh, internally consistent chain of the same length.
    await tamper(conn, "DELETE FROM audit_log")
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), $1 - 3, false)", head.id)
    for i in range(4):
        await append_entry(conn, i + 100)
    assert (await audit.verify(conn)).ok
    assert await conn.fetchval("SELECT max(id) FROM audit_log") == head.id
    bad = await run_cli_async(config, "audit", "verify", "--anchors", str(path))
    assert bad.returncode == 1 and "no longer has the hash" in bad.stdout


async def test_anchors_are_read_from_the_servers_log(config, conn, tmp_path, caplog):
    await append_entry(conn, 1)
    a = await anchor.head(conn)
    assert a is not None
    log_file = tmp_path / "casa.log"
    log_file.write_text("\n".join([
        json.dumps({"level": "info", "logger": "casa.http", "msg": "request"}),
        "not json at all, e.g. a line from another program",
        json.dumps({"level": "info", "logger": "casa.audit", "msg": "audit_anchor",
                    "anchor": a.line()}),
    ]) + "\n")
    ok = await run_cli_async(config, "audit", "verify", "--anchors", str(log_file))
    assert ok.returncode == 0 and "1 anchor(s) matched" in ok.stdout


@pytest.mark.parametrize(("content", "says"), [
    ("casa-audit-anchor id=1 hash=nothex at=x\n", "line 1 is not a well-formed audit anchor"),
    ("# head\ncasa-audit-anchor id=x hash=" + "0" * 64 + " at=now\n",
     "line 2 is not a well-formed audit anchor"),
    (json.dumps({"msg": "audit_anchor", "anchor": "garbage"}) + "\n",
     "line 1 is not a well-formed audit anchor"),
    ("something else entirely\n", "it holds no audit anchor"),
    ("", "it holds no audit anchor"),
])
async def test_a_malformed_anchors_file_is_a_clear_error(config, conn, tmp_path, content, says):
    await append_entry(conn, 1)
    path = tmp_path / "anchors.txt"
    path.write_text(content)
    out = await run_cli_async(config, "audit", "verify", "--anchors", str(path))
    assert out.returncode == 2 and f"not usable: {says}" in out.stdout
    missing = await run_cli_async(config, "audit", "verify", "--anchors",
                                  str(tmp_path / "absent.txt"))
    assert missing.returncode == 2 and "cannot read the anchors file" in missing.stdout


async def test_the_server_logs_the_head_as_an_anchor(client, conn, caplog):
    await append_entry(conn, 1)
    caplog.set_level(logging.INFO, logger="casa.audit")
    ctx = anchor.log_anchors(client.app)
    await ctx.__anext__()
    head = await anchor.head(conn)
    assert head is not None
    for _ in range(100):  # the task logs at once; allow a slow machine 10 s
        lines = [r.anchor for r in caplog.records if r.getMessage() == "audit_anchor"]
        if lines:
            break
        await asyncio.sleep(0.1)
    with pytest.raises(StopAsyncIteration):
        await ctx.__anext__()
    # (The app's own task may have logged the same head too.)
    assert {(a.id, a.hash) for a in anchor.parse(lines)} == {(head.id, head.hash)}
