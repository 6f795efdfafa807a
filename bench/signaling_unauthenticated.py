"""Sockets that upgrade and never say hello: (a) one host tries 10,000 of them, at most 200 at
a time, holding what it gets; how many are accepted and refused (429), and the server's RSS;
(b) 64 hosts (127.0.0.10-73) open 64 each at once: the server's memory per socket without
hello. The Casa server is on core 0, the clients on core 1.

    python -m bench.signaling_unauthenticated [--attempts 10000] [--hosts 64] [--per-host 64]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.signaling_load import CLIENT_CORE, RawWs, Server, pin, raise_fd_limit


def _ignore(ws: RawWs, data: bytes) -> None:
    pass


async def _upgrade(port: int, address: str) -> RawWs | None:
    """A socket upgraded from ``address``, or None when the server refused it."""
    loop = asyncio.get_running_loop()
    try:
        _t, ws = await loop.create_connection(lambda: RawWs("/ws", _ignore), "127.0.0.1", port,
                                              local_addr=(address, 0))
    except OSError:
        return None
    if await ws.open:
        return ws
    if ws.transport is not None:
        ws.transport.close()
    return None


def _close(conns: list[RawWs]) -> None:
    for ws in conns:
        if ws.transport is not None:
            ws.transport.close()


async def one_host(port: int, attempts: int) -> tuple[int, int, float]:
    """(accepted, refused, seconds) for ``attempts`` upgrades from 127.0.0.1."""
    held: list[RawWs] = []
    refused = 0
    started = time.monotonic()
    for i in range(0, attempts, 200):
        got = await asyncio.gather(*(_upgrade(port, "127.0.0.1")
                                     for _ in range(min(200, attempts - i))))
        held += [ws for ws in got if ws is not None]
        refused += sum(ws is None for ws in got)
    took = time.monotonic() - started
    _close(held)
    return len(held), refused, took


async def many_hosts(port: int, hosts: int, per_host: int) -> list[RawWs]:
    got = await asyncio.gather(*(_upgrade(port, f"127.0.0.{10 + h}")
                                 for h in range(hosts) for _ in range(per_host)))
    return [ws for ws in got if ws is not None]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--per-host", type=int, default=64)
    args = parser.parse_args()
    raise_fd_limit()
    pin(CLIENT_CORE)
    server = Server("casa")
    try:
        await server.wait_ready()
        await asyncio.sleep(1.0)
        base = server.rss_kib()
        accepted, refused, took = await one_host(server.port, args.attempts)
        peak = server.rss_kib()
        print(f"one host, {args.attempts} upgrades without hello in {took:.1f} s: "
              f"{accepted} accepted, {refused} refused; "
              f"server RSS {base / 1024:.0f} -> {peak / 1024:.0f} MiB")
        await asyncio.sleep(10.0)   # the accepted ones time out and go
        base = server.rss_kib()
        started = time.monotonic()
        held = await many_hosts(server.port, args.hosts, args.per_host)
        took = time.monotonic() - started
        rss = server.rss_kib()
        print(f"{args.hosts} hosts x {args.per_host}: {len(held)} sockets without hello held "
              f"(opened in {took:.1f} s); server RSS +{(rss - base) / 1024:.1f} MiB, "
              f"{(rss - base) / max(1, len(held)):.1f} KiB per socket")
        _close(held)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
