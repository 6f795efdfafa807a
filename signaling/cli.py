"""``casa probe URL``: a synthetic call through a running Casa, for cron and monitoring."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "probe", help="place a synthetic call through a running server (exit 0 when media flows)")
    p.add_argument("url", help="the server's public address, e.g. https://casa.example")
    p.add_argument("--relay", action="store_true",
                   help="force the media through TURN (relay-only ICE)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds for the whole call")
    p.add_argument("--demo", action="store_true", help="use the demo secret key")
    p.set_defaults(func=cmd_probe)


def cmd_probe(args: argparse.Namespace) -> int:
    from server.config import load_config
    from signaling.probe import probe

    config = load_config(demo=args.demo)
    result = asyncio.run(probe(args.url, config.secret_key, relay=args.relay,
                               within=args.timeout, out=sys.stdout))
    return 0 if result.ok else 1
