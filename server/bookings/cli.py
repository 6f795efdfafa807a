"""``casa token create|revoke|list``: API bearer tokens for staff accounts."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from server import db, staff
from server.bookings import tokens
from server.cli import config_from, fail
from server.text import name_problem


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("token", help="API bearer tokens for staff")
    sub = p.add_subparsers(dest="token_command", required=True)
    c = sub.add_parser("create", help="create a token for an account and print it (once)")
    c.add_argument("--user", required=True, help="the account's e-mail address")
    c.add_argument("--label", default=None, help="what the token is for")
    c.add_argument("--demo", action="store_true", help="use the demo secret key")
    c.set_defaults(func=cmd_create)
    r = sub.add_parser("revoke", help="revoke one token (--id) or all of an account (--user)")
    group = r.add_mutually_exclusive_group(required=True)
    group.add_argument("--id", type=int)
    group.add_argument("--user")
    r.add_argument("--demo", action="store_true", help="use the demo secret key")
    r.set_defaults(func=cmd_revoke)
    ls = sub.add_parser("list", help="list an account's tokens (never their values)")
    ls.add_argument("--user", required=True)
    ls.add_argument("--demo", action="store_true", help="use the demo secret key")
    ls.set_defaults(func=cmd_list)


async def _staff_id(pool: Any, email: str) -> int | None:
    found = await staff.get_by_email(pool, email)
    return found.id if found else None


def cmd_create(args: argparse.Namespace) -> int:
    config = config_from(args, demo=args.demo)
    problem = name_problem(args.label) if args.label is not None else None
    if problem:
        return fail(f"--label {problem}")

    async def run() -> str | None:
        async with db.open_database(config) as pool:
            sid = await _staff_id(pool, args.user)
            if sid is None:
                return None
            _, token = await tokens.create(pool, sid, args.label)
            return token

    token = asyncio.run(run())
    if token is None:
        return fail(f"no active account {args.user}")
    print(token)
    print("Keep it secret: it acts as this account on /api/v1/. It is not shown again.",
          file=sys.stderr)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    config = config_from(args, demo=args.demo)

    async def run() -> int | None:
        async with db.open_database(config) as pool:
            if args.id is not None:
                return 1 if await tokens.revoke(pool, args.id) else 0
            sid = await _staff_id(pool, args.user)
            return None if sid is None else await tokens.revoke_all(pool, sid)

    n = asyncio.run(run())
    if n is None:
        return fail(f"no active account {args.user}")
    print(f"revoked {n} token(s)")
    return 0 if n or args.id is None else 1


def cmd_list(args: argparse.Namespace) -> int:
    config = config_from(args, demo=args.demo)

    async def run() -> list[Any] | None:
        async with db.open_database(config) as pool:
            sid = await _staff_id(pool, args.user)
            return None if sid is None else await tokens.list_for(pool, sid)

    rows = asyncio.run(run())
    if rows is None:
        return fail(f"no active account {args.user}")
    for r in rows:
        state = "revoked" if r["revoked_at"] else "active"
        print(f"{r['id']}\t{state}\t{r['created_at']:%Y-%m-%d}\t{r['label'] or ''}")
    return 0
