"""What every ``casa`` subcommand shares, whichever package adds it: the configuration from the
environment and the command line, and how a refusal is printed."""

from __future__ import annotations

import argparse
import os
import sys

from server.config import Config, load_config


def fail(message: str) -> int:
    """Print ``message`` as the command's refusal; the exit status to return."""
    print(f"casa: {message}", file=sys.stderr)
    return 2


def config_from(args: argparse.Namespace, demo: bool = False) -> Config:
    """The environment's configuration (CASA_DATA_DIR, DATABASE_URL, ...), with ``--host`` and
    ``--port`` when the command has them."""
    env = dict(os.environ)
    if getattr(args, "host", None):
        env["CASA_HOST"] = args.host
    if getattr(args, "port", None):
        env["CASA_PORT"] = str(args.port)
    return load_config(env, demo=demo)
