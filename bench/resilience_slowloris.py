"""Slowloris against a real ``casa serve``: ``python -m bench.resilience_slowloris [--n 20000]``.

Opens N connections from 127.0.0.2 and 127.0.0.3 (loopback only), each sending an incomplete
request head and one more header line every ``--interval`` seconds, and meanwhile asks
``/healthz`` from 127.0.0.1 twice a second. Prints the /healthz latencies (p50, max, failures),
how the slow connections ended (refused with a status, closed by the server, still open), the
server's open-file limit and how many bytes the server logged per minute.

The server is a child process on an embedded PostgreSQL in a temporary directory. Each attacking
address runs in its own process with RLIMIT_NOFILE raised to its hard limit, so that the client
side is not what runs out; the server gets ``--server-nofile`` (default: this process's
limit). Bounded: the attack lasts ``--hold`` seconds after the last connection is opened (at
most 120 s of opening), then everything is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import aiohttp

from tests.processes import listener, port_of, stop

ROOT = Path(__file__).resolve().parent.parent
ATTACKERS = ("127.0.0.2", "127.0.0.3")
# Opening 20,000 sockets at once would only measure the kernel's SYN backlog.
OPEN_CONCURRENCY = 500
CONNECT_TIMEOUT_S = 3.0
HEALTH_TIMEOUT_S = 5.0


def start_server(sock: socket.socket, data_dir: Path, nofile: int, log_path: Path,
                 extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``casa serve`` on ``sock``, bound here (a port found free could be taken before the
    server bound it)."""
    port = port_of(sock)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASA_", "DATABASE_URL"))}
    env.update({"CASA_SECRET_KEY": "bench-secret-key-" + "x" * 40, "CASA_DATA_DIR": str(data_dir),
                "CASA_PUBLIC_ORIGIN": f"http://127.0.0.1:{port}", "CASA_LOG_LEVEL": "INFO",
                "PYTHONPATH": str(ROOT), **extra_env})

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log = log_path.open("wb")
    return subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--fd",
                             str(sock.fileno())], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=limit,
                            pass_fds=(sock.fileno(),))


async def wait_healthy(base: str, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("server did not become healthy")


class Slow:
    """One slow client: an incomplete head, then a header line every ``interval`` seconds."""

    def __init__(self, port: int, source: str, interval: float, outcomes: Counter[str],
                 tried: Callable[[], None]) -> None:
        self.port, self.source, self.interval = port, source, interval
        self.outcomes, self.tried = outcomes, tried

    async def run(self, opened: asyncio.Semaphore, stop: asyncio.Event) -> None:
        try:
            async with opened:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(self.source, 0)), CONNECT_TIMEOUT_S)
                writer.write(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except (OSError, TimeoutError):
            self.outcomes["connect failed"] += 1
            return
        finally:
            self.tried()
        try:
            while not stop.is_set():
                try:
                    first = await asyncio.wait_for(reader.read(64), self.interval)
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")
                    continue
                if first.startswith(b"HTTP/1.1 "):
                    self.outcomes[f"answered {first[9:12].decode()}"] += 1
                else:
                    self.outcomes["closed by server"] += 1
                return
            self.outcomes["still open"] += 1
        except OSError:
            self.outcomes["reset by server"] += 1
        finally:
            writer.close()


async def probe_health(base: str, stop: asyncio.Event, latencies: list[tuple[float, float]],
                       failures: Counter[str]) -> None:
    """(seconds since the attack began, latency) of a /healthz every 0.5 s until ``stop``."""
    timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
    t0 = time.monotonic()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            connector = aiohttp.TCPConnector(force_close=True, local_addr=("127.0.0.1", 0))
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as s:
                async with s.get(f"{base}/healthz") as r:
                    await r.read()
                    if r.status != 200:
                        failures[f"status {r.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            failures[type(exc).__name__] += 1
        latencies.append((time.monotonic() - t0, time.perf_counter() - started))
        await asyncio.sleep(0.5)


def summary(latencies: list[float]) -> str:
    if not latencies:
        return "no probes"
    lat = sorted(latencies)
    return (f"{len(lat)} probes, p50 {statistics.median(lat) * 1000:.1f} ms, "
            f"max {lat[-1] * 1000:.1f} ms, {sum(1 for x in lat if x > 2.0)} over 2 s")


async def slow_clients(port: int, source: str, n: int, interval: float,
                       hold_s: float) -> tuple[dict[str, int], float]:
    """N slow connections from ``source``; (how they ended, seconds taken to open them)."""
    outcomes: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    stop, all_tried = asyncio.Event(), asyncio.Event()

    def tried() -> None:
        attempts["done"] += 1
        if attempts["done"] >= n:
            all_tried.set()

    opened = asyncio.Semaphore(OPEN_CONCURRENCY)
    clients = [asyncio.create_task(Slow(port, source, interval, outcomes, tried)
                                   .run(opened, stop)) for _ in range(n)]
    t0 = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_tried.wait(), 120)
    open_s = time.monotonic() - t0
    await asyncio.sleep(hold_s)
    stop.set()
    await asyncio.wait(clients, timeout=interval + 5)
    return dict(outcomes), open_s


def attacker(port: int, source: str, n: int, interval: float, hold_s: float
             ) -> tuple[dict[str, int], float]:
    """One attacking address in its own process: one process may hold only RLIMIT_NOFILE
    sockets, and raising the hard limit needs a capability a container may not have."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return asyncio.run(slow_clients(port, source, n, interval, hold_s))


async def attack(port: int, n: int, interval: float, hold_s: float) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    await wait_healthy(base)
    latencies: list[tuple[float, float]] = []
    failures: Counter[str] = Counter()
    stop = asyncio.Event()
    prober = asyncio.create_task(probe_health(base, stop, latencies, failures))
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(len(ATTACKERS), mp_context=multiprocessing.get_context("spawn")
                             ) as pool:
        results = await asyncio.gather(*(
            loop.run_in_executor(pool, attacker, port, source, n // len(ATTACKERS), interval,
                                 hold_s) for source in ATTACKERS))
    stop.set()
    await prober
    outcomes: Counter[str] = Counter()
    for counts, _ in results:
        outcomes.update(counts)
    opening_s = max(open_s for _, open_s in results)
    return {"opened in s": round(opening_s, 1), "outcomes": dict(outcomes),
            "healthz while opening": summary([x for t, x in latencies if t <= opening_s]),
            "healthz while holding": summary([x for t, x in latencies if t > opening_s]),
            "healthz failures": dict(failures)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="slow connections")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between lines")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold after opening")
    start_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    parser.add_argument("--server-nofile", type=int, default=start_limit)
    parser.add_argument("--env", action="append", default=[],
                        help="extra NAME=VALUE for the server (e.g. CASA_MAX_CONNECTIONS=4000)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="casa-bench-slowloris-"))
    os.chmod(tmp, 0o755)  # noqa: S103 - the embedded PostgreSQL runs as another user
    sock = listener()
    port = port_of(sock)
    log_path = tmp / "server.log"
    extra = dict(item.split("=", 1) for item in args.env)
    server = start_server(sock, tmp / "data", args.server_nofile, log_path, extra)
    sock.close()   # the server's now
    started = time.monotonic()
    try:
        result = asyncio.run(attack(port, args.n, args.interval, args.hold))
    finally:
        stop(server, 20)
        elapsed_min = (time.monotonic() - started) / 60
        log_bytes = log_path.stat().st_size
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"slow connections: {args.n} from {', '.join(ATTACKERS)}, a line every "
          f"{args.interval} s; server RLIMIT_NOFILE {args.server_nofile}; extra env {extra}")
    for key, value in result.items():
        print(f"  {key}: {value}")
    print(f"  server log: {log_bytes} bytes in {elapsed_min:.1f} min "
          f"({log_bytes / elapsed_min / 1e6:.2f} MB/min)")


if __name__ == "__main__":
    main()
