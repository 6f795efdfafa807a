"""``casa serve`` as a real process on its own embedded PostgreSQL, for tests and benchmarks
that kill things: the server, the database, or both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.processes import listener, port_of

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "process-secret-key-" + "x" * 40
# Cold start: initdb, migrations and the app's start-up on a shared, busy machine.
START_TIMEOUT_S = 90.0


def postgres_pids(pgdata: Path) -> list[int]:
    """Live (not zombie) postgres processes started on ``pgdata``: the postmaster."""
    out = []
    for p in psutil.process_iter(["name", "cmdline", "status"]):
        if (p.info["name"] == "postgres" and p.info["status"] != psutil.STATUS_ZOMBIE
                and str(pgdata) in " ".join(p.info["cmdline"] or [])):
            out.append(p.pid)
    return out


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid recorded by the running (or last) server; None while there is no file."""
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def superuser_uri(pgdata: Path, database: str = "casa") -> str:
    """The embedded server's superuser address, read from its postmaster.pid."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres:@/{database}?host={lines[4].strip()}"


class CasaProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        # Bound here and handed over (``--fd``): the port is this process's from the start.
        self.listener = listener()
        self.port = port_of(self.listener)
        self.log = data_dir / f"casa-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CASA_", "DATABASE_"))}
        env.update(CASA_DATA_DIR=str(self.data_dir), CASA_SECRET_KEY=SECRET_KEY,
                   CASA_PUBLIC_ORIGIN=self.base, CASA_LOG_LEVEL="WARNING",
                   PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--fd",
                 str(self.listener.fileno())],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=(self.listener.fileno(),))
        # The child holds the socket now: once it is gone, so is the port (a killed server
        # refuses connections, as a real one would).
        self.listener.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if "Casa is serving" in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.kill()
        raise AssertionError("casa did not start:\n" + self.log.read_text(errors="replace"))

    def kill(self) -> None:
        """SIGKILL: nothing of Casa's own clean-up runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait: the clean shutdown."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def stop_postgres(pgdata: Path) -> None:
    """Leave nothing running after a test, whatever it proved."""
    for pid in postgres_pids(pgdata):
        try:
            os.kill(pid, signal.SIGINT)  # fast shutdown
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 20
    while postgres_pids(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)
