"""``casa keys init|rotate|verify``, ``casa records erase-expired``,
``casa audit verify|anchor``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from records import anchor, audit, keyring, rotate, subkeys
from records.crypto import Envelope
from records.errors import KeyringError
from records.service import Records
from server import db
from server.commands import config_from, fail
from server.config import Config


def register(subparsers: Any) -> None:
    """Add the records commands to the ``casa`` parser."""
    keys = subparsers.add_parser("keys", help="manage the key-encryption keyring of notes")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    p = ksub.add_parser("init", help="create the keyring file (never overwrites one)")
    p.add_argument("--demo", action="store_true", help="use the demo configuration")
    p.set_defaults(func=cmd_keys_init)
    p = ksub.add_parser("rotate", help="add a new key-encryption key and re-wrap every data key")
    p.add_argument("--resume", action="store_true",
                   help="finish an interrupted rotation without adding another key")
    p.add_argument("--batch", type=int, default=rotate.BATCH, help="rows per transaction")
    p.add_argument("--demo", action="store_true", help="use the demo configuration")
    p.set_defaults(func=cmd_keys_rotate)
    p = ksub.add_parser("prune", help="remove old master keys nothing in the database or "
                                      "the keyring uses (after `casa keys rotate`)")
    p.add_argument("--demo", action="store_true", help="use the demo configuration")
    p.set_defaults(func=cmd_keys_prune)
    p = ksub.add_parser("verify", help="check that every note version still decrypts")
    p.add_argument("--demo", action="store_true", help="use the demo configuration")
    p.set_defaults(func=cmd_keys_verify)

    rec = subparsers.add_parser("records", help="clinical records maintenance")
    rsub = rec.add_subparsers(dest="records_command", required=True)
    p = rsub.add_parser("erase-expired",
                        help="erase notes older than the retention period (destroys their keys)")
    p.add_argument("--older-than-days", type=int, required=True,
                   help="retention period in days (at least 1)")
    p.add_argument("--demo", action="store_true", help="use the demo configuration")
    p.set_defaults(func=cmd_erase_expired)

    aud = subparsers.add_parser("audit", help="the tamper-evident audit log")
    asub = aud.add_subparsers(dest="audit_command", required=True)
    p = asub.add_parser("verify", help="walk the hash chain and report the first broken link")
    p.add_argument("--anchors", type=Path, metavar="FILE",
                   help="also check anchors kept outside the database (lines printed by "
                        "`casa audit anchor`, or Casa's log, which holds them)")
    p.add_argument("--demo", action="store_true", help="use the demo configuration")
    p.set_defaults(func=cmd_audit_verify)
    p = asub.add_parser("anchor", help="print the chain's head, to keep outside the database")
    p.add_argument("--demo", action="store_true", help="use the demo configuration")
    p.set_defaults(func=cmd_audit_anchor)


def _config(args: argparse.Namespace) -> Config:
    return config_from(args, demo=bool(getattr(args, "demo", False)))


def _keyring(path: Path) -> keyring.Keyring | None:
    """The keyring at ``path``, or None once the refusal is printed."""
    try:
        return keyring.load(path)
    except KeyringError as exc:
        fail(str(exc))
        return None


def _say(message: str) -> None:
    print(message, flush=True)


def _progress(verb: str) -> rotate.Progress:
    def show(done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        print(f"\r{verb} {done}/{total} ({pct}%)", end="", file=sys.stderr, flush=True)

    return show


def cmd_keys_init(args: argparse.Namespace) -> int:
    config = _config(args)
    path = config.keyring_path
    if path.exists():
        return fail(f"keyring file {path} already exists; not touching it")
    ring = keyring.generate(path)
    keyring.save(ring, path)
    _say(f"created keyring {path} with key {ring.current}; back it up apart from the database")
    return 0


def cmd_erase_expired(args: argparse.Namespace) -> int:
    if args.older_than_days < 1:
        return fail("--older-than-days must be at least 1")
    config = _config(args)
    ring = _keyring(config.keyring_path)
    if ring is None:
        return 2

    async def run() -> tuple[int, int]:
        rec = Records(Envelope(ring))
        async with db.open_database(config) as pool:
            async with pool.acquire() as conn, conn.transaction():
                n = await rec.erase_expired(conn, timedelta(days=args.older_than_days))
            return n, await rec.sweep(pool)  # the day keys leave the file once committed

    n, keys = asyncio.run(run())
    _say(f"erased {n} note(s) older than {args.older_than_days} days; "
         f"{keys} day key(s) destroyed in the keyring")
    return 0


class _Busy(Exception):
    pass


@asynccontextmanager
async def _rotation_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """One rotation or prune at a time across every host (every change of the keyring file is
    also serialised by records.subkeys.KEYRING_LOCK_ID); _Busy when another holds it."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", rotate.ROTATE_LOCK_ID):
        raise _Busy
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", rotate.ROTATE_LOCK_ID)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    config = _config(args)
    path = config.keyring_path
    if _keyring(path) is None:
        return 2

    async def run() -> tuple[int, str]:
        async with db.open_database(config) as pool, pool.acquire() as lock_conn, \
                _rotation_lock(lock_conn):
            ring = keyring.load(path)
            if not args.resume:
                kid = await rotate.rotate_master(lock_conn, ring)
                _say(f"new master key {kid} is now current in {path}; "
                     f"{len(ring.sealed)} patient and day key(s) re-sealed under it")
            else:
                _say(f"resuming with master key {ring.current}")
            await audit.append(lock_conn, action="key_rotation", actor_staff_id=None,
                               actor_kind="cli", patient_id=None, booking_id=None,
                               detail={"kek_id": ring.current, "phase": "start",
                                       "resume": bool(args.resume)})
            n = await rotate.rewrap_all(pool, ring, batch=max(1, args.batch),
                                        progress=_progress("re-wrapped"))
            reasons = await rotate.seal_reasons(pool, ring, batch=max(1, args.batch))
            if reasons:
                _say(f"{reasons} break-glass reason(s) sealed")
            await subkeys.sweep(lock_conn, ring)
            await audit.append(lock_conn, action="key_rotation", actor_staff_id=None,
                               actor_kind="cli", patient_id=None, booking_id=None,
                               detail={"kek_id": ring.current, "phase": "done",
                                       "rewrapped": n, "reasons_sealed": reasons})
            return n, ring.current

    try:
        n, current = asyncio.run(run())
    except _Busy:
        return fail("another key rotation is running; wait for it to finish")
    except KeyboardInterrupt:
        print("\ninterrupted: nothing is lost; run `casa keys rotate --resume` to finish",
              file=sys.stderr)
        return 130
    print(file=sys.stderr)
    _say(f"rotation complete: {n} data key(s) re-wrapped to patient and day keys; "
         f"master key {current}")
    return 0


def cmd_keys_prune(args: argparse.Namespace) -> int:
    config = _config(args)
    ring = _keyring(config.keyring_path)
    if ring is None:
        return 2

    async def run() -> list[str]:
        async with db.open_database(config) as pool, pool.acquire() as conn, \
                _rotation_lock(conn):
            removed = await rotate.prune_masters(conn, ring)
            await audit.append(conn, action="key_rotation", actor_staff_id=None,
                               actor_kind="cli", patient_id=None, booking_id=None,
                               detail={"phase": "prune", "removed": removed})
            return removed

    try:
        removed = asyncio.run(run())
    except _Busy:
        return fail("a key rotation is running; wait for it to finish")
    if not removed:
        _say("no old master key to remove")
        return 0
    _say(f"removed {len(removed)} old master key(s): {', '.join(removed)}; database backups "
         "older than the last `casa keys rotate` can no longer be read with this keyring")
    return 0


def cmd_keys_verify(args: argparse.Namespace) -> int:
    config = _config(args)
    ring = _keyring(config.keyring_path)
    if ring is None:
        return 2

    async def run() -> rotate.VerifyReport:
        async with db.open_database(config) as pool:
            report = await rotate.verify_all(pool, ring, progress=_progress("checked"))
            await rotate.verify_reasons(pool, ring, report)
            return report

    report = asyncio.run(run())
    print(file=sys.stderr)
    keys = ", ".join(f"{k}: {n}" for k, n in sorted(report.by_key.items())) or "none"
    _say(f"{report.reasons} break-glass reason(s) decrypt")
    _say(f"{report.checked} note version(s) decrypt, {report.erased} erased; by key: {keys}")
    for note_id, version, why in report.failures[:50]:
        _say(f"FAILED note {note_id} version {version}: {why}")
    for glass_id, why in report.reason_failures[:50]:
        _say(f"FAILED break-glass reason {glass_id}: {why}")
    if report.failures or report.reason_failures:
        _say(f"{len(report.failures)} note version(s) and {len(report.reason_failures)} "
             "break-glass reason(s) do not decrypt")
    if report.pending:
        _say(f"{report.pending} key(s) of erased notes are still in the keyring file: run "
             "`casa keys rotate --resume` to remove them")
    return 0 if report.ok else 1


def cmd_audit_verify(args: argparse.Namespace) -> int:
    config = _config(args)
    anchors: list[anchor.Anchor] = []
    if args.anchors is not None:
        try:
            with args.anchors.open(encoding="utf-8") as f:
                anchors = anchor.parse(f)
        except OSError as exc:
            _say(f"cannot read the anchors file: {exc.strerror}")
            return 2
        except (anchor.AnchorFileError, UnicodeDecodeError) as exc:
            _say(f"the anchors file is not usable: {exc}")
            return 2

    async def run() -> tuple[audit.VerifyResult, anchor.AnchorCheck]:
        async with db.open_database(config) as pool, pool.acquire() as conn:
            return await audit.verify(conn), await anchor.check(conn, anchors)

    result, anchored = asyncio.run(run())
    if not result.ok:
        _say(f"audit log BROKEN at row id {result.broken_at}: {result.reason}")
        return 1
    if not anchored.ok:
        _say(f"audit log BROKEN: {anchored.reason}")
        return 1
    tail = f", {anchored.checked} anchor(s) matched" if args.anchors is not None else ""
    _say(f"audit log intact: {result.rows} row(s), chain verified{tail}")
    return 0


def cmd_audit_anchor(args: argparse.Namespace) -> int:
    config = _config(args)

    async def run() -> anchor.Anchor | None:
        async with db.open_database(config) as pool:
            return await anchor.head(pool)

    found = asyncio.run(run())
    if found is None:
        print("# the audit log is empty: nothing to anchor yet", file=sys.stderr)
        return 0
    print(found.line(), flush=True)
    return 0
