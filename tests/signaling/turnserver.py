"""A real coturn for the tests that need TURN (127.0.0.1 only; loopback peers allowed)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.signaling.servers import free_port

TURN_SECRET = "turn-test-secret-" + "y" * 20
REALM = "casa.test"


@pytest.fixture(scope="module")
def coturn() -> Iterator[int]:
    """A coturn sharing TURN_SECRET with the app; its UDP port."""
    if shutil.which("turnserver") is None:
        pytest.fail("Debian's coturn is not installed (apt-get install coturn)")
    port = free_port()
    # Loopback peers are allowed for this test only: production denies them.
    proc = subprocess.Popen(
        ["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}",
         f"--realm={REALM}", "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls",
         "--min-port=49160", "--max-port=49200", "--log-file=stdout"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    assert proc.poll() is None, "turnserver did not start"
    yield port
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
