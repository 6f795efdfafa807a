"""Casa server processes for tests that kill, restart or multiply them (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.pg import serving_url
from tests.processes import listener as tests_listener
from tests.processes import port_of

ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(self, db_url: str, secret_key: str, data_dir: Path,
                 listener: socket.socket | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        """``listener``: the listening socket of an earlier process, for one that takes over
        its port (a restart); a new one by default. The socket is bound here and handed to
        the child (``casa serve --fd``), and kept until ``stop``: a restart serves on the
        same port with no moment in which another process could take it (connections made
        while no child runs wait for the next one)."""
        self.listener = listener if listener is not None else tests_listener()
        self.port = port_of(self.listener)
        self.env = {**os.environ, "DATABASE_URL": serving_url(db_url),
                    "CASA_SECRET_KEY": secret_key,
                    "CASA_DATA_DIR": str(data_dir), "CASA_LOG_LEVEL": "WARNING",
                    "CASA_PUBLIC_ORIGIN": f"http://127.0.0.1:{self.port}",
                    **(extra_env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        # The server's log, read back only to say why it would not start (a file, not a pipe:
        # a pipe nobody reads would stall a chatty server).
        self._log = tempfile.TemporaryFile()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--fd", str(self.listener.fileno())],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=self._log,
            pass_fds=(self.listener.fileno(),))

    async def start(self, within: float = 20.0) -> None:
        """Spawn the process and wait until /healthz answers."""
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    self._log.seek(0)
                    err = self._log.read()
                    raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                       + err.decode(errors="replace")[-2000:])
                try:
                    async with session.get(self.http + "/healthz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError("server did not start")

    def kill(self) -> None:
        """kill -9: no clean shutdown, no goodbye to the database."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.kill()
        self.listener.close()
