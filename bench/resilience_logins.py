"""Resilience: a storm of wrong logins against a live relay.

A real ``casa serve`` (from ``--root``, so an older checkout can be measured the same way) relays
timestamped messages between two WebSocket peers of one room, 50 a second, measured in a
separate process. After a quiet window, N parallel wrong logins arrive from one address (ten
accounts, none of them real: each still costs a password check). Printed: relay p99 quiet and
during the storm, how many passwords were checked (answers 401; the casa_auth_checks metric
where the server has it), how many were refused or shed (429), and /healthz latency and its
worst answer during the storm. Then, in this process, the event loop's worst stall while 16
checks run on the loop, in one thread and in a pool of two processes (how the executor was
chosen: two threads hang, see server/auth/checker.py).

    python -m bench.resilience_logins [--storm 150 500] [--root /work/main]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.signaling_load import (
    SECRET_KEY,
    RawWs,
    casa_pair,
    frame,
    percentile,
    raise_fd_limit,
)
from server.auth import checker
from tests.processes import listener, port_of, stop

HERE = Path(__file__).resolve().parents[1]
RELAY_EVERY_S = 0.02
QUIET_S = 4.0
# The storm's answers all arrive well within this; it bounds the run if they do not.
STORM_TIMEOUT_S = 120.0
HEALTH_EVERY_S = 0.1
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _relay(port: int, seconds: float, stop: Any, out: Any) -> None:
    """Child process: one room of two peers, a timestamped candidate every RELAY_EVERY_S."""
    async def run() -> list[tuple[float, float]]:
        samples: list[tuple[float, float]] = []
        marker = b'"sdpMid":"'

        def on_text(ws: RawWs, data: bytes) -> None:
            i = data.find(marker)
            if i >= 0:
                sent = int(data[i + 10:i + 30]) / 1e9
                samples.append((sent, time.time() - sent))

        a, b, _pa, pb = await casa_pair(port, on_text)
        text = ('{"type":"candidate","to":"%s","candidate":{"candidate":"candidate:1 1 udp '
                '1677729535 203.0.113.7 46154 typ srflx","sdpMid":"%s","sdpMLineIndex":0}}')
        out.put("ready")
        started = time.time()
        while time.time() - started < seconds and not stop.is_set():
            a.send(frame(text % (pb, str(time.time_ns()).zfill(20))))
            await asyncio.sleep(RELAY_EVERY_S)
        await asyncio.sleep(1.0)
        for ws in (a, b):
            if ws.transport is not None:
                ws.transport.close()
        return samples

    out.put(asyncio.run(run()))


class CasaServer:
    """``casa serve`` from a checkout, on 127.0.0.1, its own embedded PostgreSQL."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        sock = listener()   # handed over (--fd): nobody can take the port before Casa binds it
        self.port = port_of(sock)
        env = {**os.environ, "CASA_SECRET_KEY": SECRET_KEY, "CASA_DATA_DIR": str(data_dir),
               "CASA_LOG_LEVEL": "ERROR", "PYTHONPATH": str(root),
               "CASA_PUBLIC_ORIGIN": f"http://127.0.0.1:{self.port}"}
        env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--fd",
                                      str(sock.fileno())], cwd=root, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     pass_fds=(sock.fileno(),))
        sock.close()

    async def wait_ready(self, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                try:
                    async with s.get(f"http://127.0.0.1:{self.port}/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.3)
        raise TimeoutError("casa did not start")

    def stop(self) -> None:
        stop(self.proc, 20)


async def _health(base: str, stop: asyncio.Event, out: list[tuple[float, int]]) -> None:
    async with aiohttp.ClientSession() as s:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                async with s.get(base + "/healthz",
                                 timeout=aiohttp.ClientTimeout(total=10)) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            out.append((time.perf_counter() - t, status))
            await asyncio.sleep(HEALTH_EVERY_S)


async def _checks(base: str) -> float | None:
    async with aiohttp.ClientSession() as s, s.get(base + "/metrics") as r:
        text = await r.text()
    m = re.search(r'casa_auth_checks_total\{kind="password"\} ([0-9.e+]+)', text)
    return float(m.group(1)) if m else None


async def _storm(base: str, n: int) -> dict[str, int]:
    statuses: dict[str, int] = {}
    # unsafe: keep the CSRF cookie of a server addressed by IP.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STORM_TIMEOUT_S),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(base + "/login") as r:
            m = CSRF.search(await r.text())
        assert m, "no CSRF token on /login"
        token = m.group(1)

        async def one(i: int) -> None:
            try:
                async with s.post(base + "/login", allow_redirects=False,
                                  data={"email": f"storm{i % 10}@bench.example",
                                        "password": "wrong password!",
                                        "csrf_token": token}) as r:
                    await r.read()
                    key = str(r.status)
            except (aiohttp.ClientError, TimeoutError):
                key = "error"
            statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(one(i) for i in range(n)))
    return statuses


async def measure(root: Path, storm: int, data_dir: Path) -> dict[str, Any]:
    server = CasaServer(root, data_dir)
    try:
        await server.wait_ready()
        base = f"http://127.0.0.1:{server.port}"
        # Warm the server (first page render, first hash) outside the measurement.
        await _storm(base, 1)
        before = await _checks(base)
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        relay_s = QUIET_S * 2 + STORM_TIMEOUT_S
        stop_relay = ctx.Event()
        child = ctx.Process(target=_relay, args=(server.port, relay_s, stop_relay, q))
        child.start()
        assert q.get(timeout=60) == "ready"
        quiet_from = time.time()
        await asyncio.sleep(QUIET_S)
        quiet_to = storm_from = time.time()
        stop = asyncio.Event()
        health: list[tuple[float, int]] = []
        poller = asyncio.create_task(_health(base, stop, health))
        t = time.perf_counter()
        statuses = await _storm(base, storm)
        storm_s = time.perf_counter() - t
        storm_to = time.time()
        stop.set()
        await poller
        after = await _checks(base)
        stop_relay.set()
        samples: list[tuple[float, float]] = q.get(timeout=60)
        child.join(10)
        return {"storm": storm, "statuses": statuses, "storm_s": storm_s,
                "checked": None if after is None or before is None else int(after - before),
                "quiet": [lat for sent, lat in samples if quiet_from <= sent < quiet_to],
                "stormy": [lat for sent, lat in samples if storm_from <= sent < storm_to],
                "health_ms": [h * 1000 for h, _ in health],
                "health_bad": sum(1 for _, st in health if st != 200)}
    finally:
        server.stop()


def _verify_once() -> bool:
    from server.auth import passwords

    return passwords.verify_password("wrong password!", passwords.DUMMY_HASH)


async def _loop_stall(run: Callable[[], Any], n: int = 16) -> tuple[float, float]:
    """(worst stall of a 5 ms ticker, seconds) while n checks run through ``run``."""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t - 0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    t = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(n)))
    took = time.perf_counter() - t
    done.set()
    await task
    return max(lags), took


async def executors() -> dict[str, tuple[float, float]]:
    loop = asyncio.get_running_loop()
    out = {}

    async def inline() -> bool:
        return _verify_once()

    out["on the loop"] = await _loop_stall(inline)
    # One thread only: two Argon2id derivations at once in one process wait on each other for
    # ever (OpenSSL's shared thread pool; see server/auth/checker.py).
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
        out["one thread"] = await _loop_stall(
            lambda: loop.run_in_executor(threads, _verify_once))
    for workers in (2, checker.WORKERS):
        # As the server runs them: spawned, at a lower priority than the loop.
        with checker.process_pool(workers) as procs:
            await asyncio.gather(*(loop.run_in_executor(procs, _verify_once)
                                   for _ in range(workers)))   # start the workers first
            out[f"processes ({workers})"] = await _loop_stall(
                lambda: loop.run_in_executor(procs, _verify_once))
    return out


def _stats(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {percentile(values, 50):7.1f}  p99 {percentile(values, 99):7.1f}  "
            f"max {max(values):7.1f}  (n={len(values)})")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storm", type=int, nargs="+", default=[150, 500])
    parser.add_argument("--root", type=Path, default=HERE,
                        help="the checkout whose casa serve is measured (read only)")
    parser.add_argument("--skip-executors", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    import tempfile

    print(f"casa from {args.root}")
    for n in args.storm:
        with tempfile.TemporaryDirectory(prefix="casa-bench-") as tmp:
            os.chmod(tmp, 0o755)  # noqa: S103 - embedded PostgreSQL runs as its own user
            r = await measure(args.root, n, Path(tmp))
        quiet_ms = [x * 1000 for x in r["quiet"]]
        stormy_ms = [x * 1000 for x in r["stormy"]]
        print(f"\n{n} parallel wrong logins from one address, answered in {r['storm_s']:.1f} s")
        print(f"  answers: {json.dumps(r['statuses'], sort_keys=True)}; passwords checked: "
              f"{r['checked'] if r['checked'] is not None else r['statuses'].get('401', 0)}")
        print(f"  relay quiet ms   {_stats(quiet_ms)}")
        print(f"  relay storm ms   {_stats(stormy_ms)}")
        if quiet_ms and stormy_ms:
            ratio = percentile(stormy_ms, 99) / percentile(quiet_ms, 99)
            print(f"  relay p99 storm / quiet: {ratio:.2f}")
        print(f"  /healthz ms      {_stats(r['health_ms'])}; not 200: {r['health_bad']}")
    if not args.skip_executors:
        print("\nevent loop's worst stall while 16 password checks run (executor choice)")
        for name, (stall, took) in (await executors()).items():
            print(f"  {name:<18} worst stall {stall * 1000:8.1f} ms, 16 checks in {took:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
