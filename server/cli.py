"""The ``casa`` command: serve, demo, migrate, user add, and the commands of bookings, records,
signalling and translations.

Every command reads the same environment (CASA_DATA_DIR, DATABASE_URL, ...) and so finds the
same database and data directory.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web

from records import cli as records_cli
from server import centres, db, logs, serving
from server.bookings import cli as bookings_cli
from server.commands import config_from, fail
from server.config import Config, ConfigError
from server.consultations.languages import DEFAULT_UI_LANGUAGE, STAFF_LANGUAGES
from server.staff import Role
from signaling import cli as signaling_cli
from web import i18n_cli


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return ctx


def serve(config: Config, announce: Callable[[web.Application], None],
          on_startup: Callable[[web.Application], Awaitable[None]] | None = None,
          sock: socket.socket | None = None) -> None:
    """Run the app until SIGINT/SIGTERM. ``announce`` runs once the socket is listening, so a
    supervisor (or a test) that reads it can connect at once."""
    from server.app import create_app

    logs.configure(config.log_level)
    app = create_app(config)
    if on_startup is not None:
        app.on_startup.append(on_startup)
    # SIGINT and SIGTERM are a graceful shutdown, which runs cleanup_ctx: sockets closed, pool
    # closed, the embedded PostgreSQL stopped.
    serving.run(app, host=config.host, port=config.port, ssl_context=_ssl_context(config),
                announce=announce, sock=sock)


def _inherited(args: argparse.Namespace) -> socket.socket | None:
    """The listening socket handed over as ``--fd`` (by a supervisor's socket unit, or by a
    test that must know the port before Casa starts and let nobody take it in between), its
    address taking the place of ``--host`` and ``--port``; None without ``--fd``."""
    if args.fd is None:
        return None
    try:
        sock = socket.socket(fileno=args.fd)
    except OSError as exc:
        raise ConfigError(f"--fd {args.fd} is not an open socket ({exc.strerror})") from None
    if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
        raise ConfigError(f"--fd {args.fd} is not a TCP socket")
    # Handed to Casa alone: a process Casa starts (PostgreSQL, its workers) must not hold the
    # port open after Casa is gone.
    sock.set_inheritable(False)
    args.host, args.port = sock.getsockname()[:2]
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    sock = _inherited(args)
    config = config_from(args)
    if not config.public_origin:
        # Invitation and summary links are sent to patients: they must never be built from a
        # request's Host header, which a client or a lax proxy controls.
        raise ConfigError("CASA_PUBLIC_ORIGIN is not set (the address patients' links point "
                          "to, e.g. https://casa.example)")

    def announce(app: web.Application) -> None:
        scheme = "https" if config.tls_cert else "http"
        print(f"Casa is serving on {scheme}://{config.host}:{config.port}/", flush=True)

    serve(config, announce, sock=sock)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from server import demo

    sock = _inherited(args)
    config = config_from(args, demo=True)
    if args.tls:
        from server.tls import ensure_self_signed

        cert, key = ensure_self_signed(config.data_dir / "tls", config.host)
        config = Config(**{**config.__dict__, "tls_cert": cert, "tls_key": key})

    serve(config, lambda app: demo.announce(config, app), on_startup=demo.seed, sock=sock)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    config = config_from(args, demo=args.demo)

    if config.database_url and not config.owner_database_url:
        raise ConfigError("CASA_OWNER_DATABASE_URL is not set (the address of the role that "
                          "owns the tables, which migrations need)")

    async def run() -> list[int]:
        # Migrates as the owner role, then creates or updates the serving role's grants.
        async with db.open_served(config) as database:
            await centres.ensure_loaded(database.pool)
            return database.applied

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" + (f": {applied}" if applied else ""))
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from server import staff
    from server.auth.passwords import WeakPassword

    config = config_from(args, demo=args.demo)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password for the new account: ")
        if getpass.getpass("Repeat the password: ") != password:
            return fail("the two passwords differ")

    async def run() -> int:
        async with db.open_database(config) as pool:
            await centres.ensure_loaded(pool)
            async with pool.acquire() as conn, conn.transaction():
                return await staff.create(conn, email=args.email, full_name=args.name,
                                          role=Role(args.role), password=password,
                                          language=args.language, centres=tuple(args.centre))

    try:
        staff_id = asyncio.run(run())
    except (WeakPassword, staff.DuplicateEmail, ValueError) as exc:
        return fail(str(exc))
    except Exception as exc:
        if type(exc).__name__ == "ForeignKeyViolationError":
            return fail("unknown centre id (see server/data/centres.json)")
        raise
    print(f"created {args.role} account {args.email} (id {staff_id})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casa", description="Casa telemedicine platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve Casa (configured by CASA_* environment variables)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--fd", type=int, default=None,
                   help="serve on this inherited file descriptor, a TCP socket already bound "
                        "(instead of --host and --port)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="migrate, load demo data and serve")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--fd", type=int, default=None,
                   help="serve on this inherited file descriptor, a TCP socket already bound "
                        "(instead of --host and --port)")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS with a self-signed certificate (to try it from a phone)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("migrate", help="apply pending database migrations")
    p.add_argument("--demo", action="store_true", help="use the demo secret key")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("user", help="manage staff accounts")
    usub = p.add_subparsers(dest="user_command", required=True)
    a = usub.add_parser("add", help="create a staff account")
    a.add_argument("--email", required=True)
    a.add_argument("--name", required=True)
    a.add_argument("--role", required=True, choices=[r.value for r in Role])
    a.add_argument("--centre", action="append", default=[],
                   help="centre id where the person works (repeatable)")
    a.add_argument("--language", default=DEFAULT_UI_LANGUAGE, choices=list(STAFF_LANGUAGES))
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    a.add_argument("--demo", action="store_true", help="use the demo secret key")
    a.set_defaults(func=cmd_user_add)

    bookings_cli.register(sub)
    records_cli.register(sub)
    signaling_cli.register(sub)
    i18n_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        return fail(f"configuration: {exc}")
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
