"""A real coturn on 127.0.0.1 for the tests that need TURN (signalling and the pre-call check):
TURN REST credentials with a shared secret, relaying on loopback only."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.processes import stop

TURN_SECRET = "precall-turn-secret-" + "z" * 20
REALM = "casa.test"
# coturn starts in milliseconds; this bounds a machine under heavy load.
START_S = 10.0


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    """Whether a UDP socket is bound to 127.0.0.1:port (read from /proc, no packet sent)."""
    needle = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return any(line.split()[1] == needle for line in f.readlines()[1:])


@contextmanager
def coturn(secret: str = TURN_SECRET, ports: tuple[int, int] = (49201, 49260)) -> Iterator[int]:
    """Runs turnserver until the block ends; yields its UDP port once it listens. ``ports`` is
    its relay range (callers that may overlap use different ones)."""
    if shutil.which("turnserver") is None:
        pytest.fail("Debian's coturn is not installed (apt-get install coturn)")
    port = _udp_port()
    # Loopback peers are allowed for tests only: production denies them.
    proc = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={secret}",
         f"--realm={REALM}", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
         "--no-tcp", f"--min-port={ports[0]}", f"--max-port={ports[1]}", "--log-file=stdout"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_S
        while not _listening(port):
            assert proc.poll() is None, "turnserver stopped at start"
            assert time.monotonic() < deadline, "turnserver did not listen in time"
            time.sleep(0.05)
        yield port
    finally:
        stop(proc, 5)
