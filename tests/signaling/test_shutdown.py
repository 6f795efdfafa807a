"""SIGTERM with 200 clients connected: every one is told ``server_shutdown`` and closed with
1001 (protocol: error catalogue), and the process exits promptly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.staff import Role
from signaling.auth import probe_token
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import staff_session
from tests.signaling.crowd import Consultations, Sock, address
from tests.signaling.servers import ServerProcess

CONSULTATIONS = 50        # a patient and a clinician each: 100 sockets
DASHBOARDS = 50
PROBES = 50               # 25 probe rooms of two
CLINICIANS = 10
EXIT_S = 5.0
# Sockets opened (and their hellos answered) at once: well below the 64 without hello that
# one address may hold, though each comes from its own address anyway.
OPENING = 32


@pytest.fixture
async def server(db_url: str, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    # Behind a trusted proxy at 127.0.0.1: each client comes from its own address.
    s = ServerProcess(db_url, SECRET_KEY, tmp_path,
                      extra_env={"CASA_TRUSTED_PROXIES": "127.0.0.1/32"})
    yield s
    s.stop()



async def connected(session: aiohttp.ClientSession, url: str, name: str, i: int,
                    gate: asyncio.Semaphore, hello: dict[str, Any],
                    staff: str | None = None) -> Sock:
    async with gate:
        sock = await Sock.open(session, url, name, forwarded=address(i), staff_session=staff)
        await sock.ws.send_str(sock.hello_text(**hello))
        frame = await sock.recv(10.0)
    assert frame.get("type") == "welcome", (name, frame)
    return sock


@pytest.mark.serial  # 200 clients and an exit within 5 s: alone, after the parallel run (Makefile)
async def test_sigterm_tells_two_hundred_clients_and_exits(server, session, make_staff, db_url):
    staff = [(await make_staff(Role.GP)).id for _ in range(CLINICIANS)]
    sessions = {i: await staff_session(db_url, i) for i in staff}
    visits = await Consultations(db_url).make(staff, CONSULTATIONS)
    await server.start()
    url = server.ws
    gate = asyncio.Semaphore(OPENING)
    n = iter(range(1, 10_000))
    patients = await asyncio.gather(*(
        connected(session, url, f"patient {v.consultation_id}", next(n), gate,
                  {"credential": v.token}) for v in visits))
    doctors = await asyncio.gather(*(
        connected(session, url, f"clinician {v.consultation_id}", next(n), gate,
                  {"room": v.room_id}, sessions[v.clinician_id]) for v in visits))
    dashboards = await asyncio.gather(*(
        connected(session, url, f"dashboard {k}", next(n), gate, {},
                  sessions[staff[k % len(staff)]]) for k in range(DASHBOARDS)))
    tokens = [probe_token(SECRET_KEY) for _ in range(PROBES // 2)]
    probes = await asyncio.gather(*(
        connected(session, url, f"probe {k}", next(n), gate, {"credential": tokens[k // 2]})
        for k in range(PROBES)))
    socks = [*patients, *doctors, *dashboards, *probes]
    assert len(socks) == 200
    for s in socks:
        s.keep_reading()

    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    exited_after = None
    while time.monotonic() - signalled < EXIT_S + 1.0:
        if server.proc.poll() is not None:
            exited_after = time.monotonic() - signalled
            break
        await asyncio.sleep(0.05)
    # Whatever reached the clients by now is all they will get (the process is gone, or
    # is taken to be).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(s.closed() for s in socks)), 1.0)
    outcome: Counter[str] = Counter()
    for s in socks:
        told = any(f.get("type") == "error" and f.get("code") == "server_shutdown"
                   for f in s.frames)
        outcome[f"{'told' if told else 'not told'}, closed {s.close_code}"] += 1
    await asyncio.gather(*(s.close() for s in socks))
    exited = f"{exited_after:.1f} s" if exited_after is not None else f"not within {EXIT_S} s"
    assert outcome == Counter({"told, closed 1001": 200}) and exited_after is not None \
        and exited_after <= EXIT_S, f"after SIGTERM: {dict(outcome)}; process exited {exited}"
