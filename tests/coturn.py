"""A real coturn on 127.0.0.1 for the tests that need TURN (signalling and the pre-call check):
TURN REST credentials with a shared secret, relaying on loopback only."""

from __future__ import annotations

import contextlib
import os
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


# Attempts at a port: the one picked may be taken by another process before coturn binds it
# (coturn cannot be handed a bound socket), which is then seen and another one picked.
ATTEMPTS = 5


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bound_by(port: int) -> set[str]:
    """The inodes of the UDP sockets bound to 127.0.0.1:port (from /proc, no packet sent)."""
    needle = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        return {fields[9] for fields in (line.split() for line in f.readlines()[1:])
                if fields[1] == needle}


def _sockets_of(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds."""
    found = set()
    with contextlib.suppress(FileNotFoundError, PermissionError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    found.add(target[8:-1])
    return found


def _relay_range(ports: tuple[int, int]) -> tuple[int, int]:
    """``ports`` moved to a range of this test process's own when the suite runs on several
    (pytest-xdist's worker gwN), so that two coturns do not compete for relay ports."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    shift = 200 * int(worker[2:]) if worker[2:].isdigit() else 0
    return ports[0] + shift, ports[1] + shift


def _start(port: int, secret: str, ports: tuple[int, int]) -> subprocess.Popen[bytes] | None:
    """turnserver on ``port`` once it listens there; None when the port was someone else's."""
    # Loopback peers are allowed for tests only: production denies them.
    proc = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={secret}",
         f"--realm={REALM}", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
         "--no-tcp", f"--min-port={ports[0]}", f"--max-port={ports[1]}", "--log-file=stdout"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline and proc.poll() is None:
        bound = _bound_by(port)
        if bound & _sockets_of(proc.pid):
            return proc
        if bound and time.monotonic() > deadline - START_S + 1.0:
            break   # bound for a second now, and not by this turnserver
        time.sleep(0.05)
    stop(proc, 5)
    return None


@contextmanager
def coturn(secret: str = TURN_SECRET, ports: tuple[int, int] = (49201, 49260)) -> Iterator[int]:
    """Runs turnserver until the block ends; yields its UDP port once it listens. ``ports`` is
    its relay range (callers that may overlap use different ones)."""
    if shutil.which("turnserver") is None:
        pytest.fail("Debian's coturn is not installed (apt-get install coturn)")
    for _ in range(ATTEMPTS):
        port = _udp_port()
        proc = _start(port, secret, _relay_range(ports))
        if proc is not None:
            break
    else:
        pytest.fail(f"turnserver did not listen on a port of its own in {ATTEMPTS} attempts")
    try:
        yield port
    finally:
        stop(proc, 5)
