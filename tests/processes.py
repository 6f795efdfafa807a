"""The real processes tests and benchmarks start (servers, turnserver, Chromium): the sockets
handed to them, and stopping them."""

from __future__ import annotations

import socket
import subprocess
from typing import Any


def listener(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to a port the kernel picks, and listening: handed to a ``casa serve
    --fd`` child (or an app in this process), whose port is then known before it starts.
    Asking for a free port and passing its number instead let another process (a second test
    process above all) take the port between the check and the child's bind."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(1024)   # the server's own backlog (server.serving) when it listens again
    except OSError:
        sock.close()
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``grace_s``; reaped either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
