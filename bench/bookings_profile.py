"""Where a storm's time goes in the server: ``python -m bench.bookings_profile [--storms 3]``.

Runs the same app and storm as ``bench.bookings_load`` (500 concurrent ``POST
/api/v1/bookings`` for one slot), with the server process under cProfile, and prints the
functions with the most own time and the most cumulative time in the server. Profiling slows
the server down several times: read the shares, not the latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import os
import pstats
import signal
import socket
import tempfile
from pathlib import Path
from types import FrameType

from bench.bookings_load import (
    CLINICIANS,
    SECRET,
    prepare,
    storm,
    wait_healthy,
)
from server import db, dbroles
from server.config import Config
from server.serving import LISTEN_BACKLOG
from tests.processes import listener, port_of


def serve_profiled(url: str, sock: socket.socket, data_dir: str, out: str) -> None:
    """Child process: the app under cProfile until SIGTERM, then the stats into ``out``."""
    from aiohttp import web

    from server import logs
    from server.app import create_app

    logs.configure("WARNING")
    profiler = cProfile.Profile()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        os._exit(0)

    signal.signal(signal.SIGUSR1, stop)
    config = Config(secret_key=SECRET, data_dir=Path(data_dir),
                    database_url=db.with_user(url, dbroles.SERVING_ROLE))
    app = create_app(config)

    async def start_profiling(_app: web.Application) -> None:
        profiler.enable()

    app.on_startup.append(start_profiling)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=False,
                backlog=LISTEN_BACKLOG)


async def main_async(url: str, data_dir: str, storms: int, out: str) -> None:
    token, clinicians, patients = await prepare(url)
    sock = listener()   # bound here, handed to the child: nobody can take the port first
    port = port_of(sock)
    ctx = multiprocessing.get_context("spawn")
    server = ctx.Process(target=serve_profiled, args=(url, sock, data_dir, out), daemon=True)
    server.start()
    sock.close()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base)  # cProfile slows start-up
        for k in range(storms):
            print("   ", await storm(base, token, clinicians[k % CLINICIANS], patients, k))
    finally:
        if server.pid is not None:
            os.kill(server.pid, signal.SIGUSR1)
        server.join(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storms", type=int, default=3)
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--callers", default="", help="also print who calls this function")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="casa-bench-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - the embedded server runs as another user
        embedded = db.EmbeddedDatabase(Path(tmp))
        server_uri = os.environ.get("DATABASE_URL") or embedded.start()
        name = f"casa_bench_{os.getpid()}"
        out = str(Path(tmp) / "server.prof")
        asyncio.run(db.ensure_database(server_uri, name))
        try:
            asyncio.run(main_async(db.database_name_uri(server_uri, name), tmp, args.storms, out))
            stats = pstats.Stats(out)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            if args.callers:
                stats.print_callers(args.callers)
        finally:
            if not os.environ.get("DATABASE_URL"):
                embedded.stop()


if __name__ == "__main__":
    main()
