"""One headless Chromium for the whole test session.

Debian's Chromium is started once, with fake camera and microphone, listening for the
DevTools protocol on a loopback port it picks itself (written to ``DevToolsActivePort`` in its
profile). Each test connects to it with Playwright (``connect_over_cdp``) in the test's own
event loop and gets fresh contexts, which are closed when it disconnects: nothing a test
stores (cookies, storage) reaches the next. Two tests need a browser of their own and launch
one: the profile-on-disk test (it inspects the profile) and the refused-camera test (its
browser must really ask).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required",
                 # Screen sharing picks the (virtual) screen without a chooser.
                 "--auto-select-desktop-capture-source=Entire screen",
                 # As Playwright's own headless launch: layout widths without a scroll bar.
                 "--hide-scrollbars"]
START_S = 30.0


def need_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")


def _endpoint(profile: Path, proc: subprocess.Popen[bytes]) -> str:
    """The DevTools address Chromium wrote once it listens."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"chromium exited at start with status {proc.returncode}")
        try:
            port, path = active.read_text().split("\n")[:2]
        except (OSError, ValueError):
            time.sleep(0.05)
            continue
        return f"ws://127.0.0.1:{port.strip()}{path.strip()}"
    pytest.fail(f"chromium did not listen within {START_S:.0f} s")


@pytest.fixture(scope="session")
def chromium_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's Chromium, started on first use; its DevTools WebSocket address."""
    need_chromium()
    profile = tmp_path_factory.mktemp("chromium")
    proc = subprocess.Popen([CHROMIUM, *CHROMIUM_ARGS, "--remote-debugging-address=127.0.0.1",
                             "--remote-debugging-port=0", f"--user-data-dir={profile}",
                             "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield _endpoint(profile, proc)
    finally:
        stop(proc, 10)


@pytest.fixture
async def browser(chromium_endpoint: str) -> AsyncIterator[Any]:
    """The session's Chromium, connected for this test; its contexts end with the test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.connect_over_cdp(chromium_endpoint)
        try:
            yield b
        finally:
            for context in b.contexts[1:]:  # the first is Chromium's own default context
                await context.close()
            await b.close()
