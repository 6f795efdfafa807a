"""What a thief of a backup finds: two server processes share a PostgreSQL of the test's own,
a patient on one and the clinician on the other chat, the server checkpoints and stops, and
every file of its data directory (pg_notify, pg_wal, base, ...) is searched byte by byte."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from server.staff import Role
from signaling import bus
from signaling.client import SignalClient
from tests.conftest import SECRET_KEY, StaffFactory
from tests.factories import Factories
from tests.pg import OwnServer
from tests.pg import own_server as running
from tests.signaling.conftest import Visits, staff_session
from tests.signaling.servers import ServerProcess

LINES = 150


@pytest.fixture
async def own_pg() -> AsyncIterator[OwnServer]:
    """An embedded PostgreSQL of this test alone: the test stops it and reads its files."""
    async with running("casa-test-disk-") as own:
        yield own


@pytest.fixture
async def processes(own_pg: OwnServer, tmp_path: Path) -> AsyncIterator[list[ServerProcess]]:
    made = [ServerProcess(own_pg.serving_url, SECRET_KEY, tmp_path / name) for name in ("a", "b")]
    await asyncio.gather(*(p.start() for p in made))
    yield made
    for p in made:
        p.stop()


# Markers are 16 lowercase hex digits: each file is scanned once for runs of hex digits,
# spelled in UTF-8 (text, JSON, NOTIFY payloads) or UTF-16, whose 16-digit windows are looked
# up in a set.
MARKER_DIGITS = 16
_RUNS = (re.compile(rb"[0-9a-f]{16,}"), re.compile(rb"(?:[0-9a-f]\x00){16,}"),
         re.compile(rb"(?:\x00[0-9a-f]){16,}"))


def _windows(run: bytes) -> set[str]:
    digits = run.replace(b"\x00", b"").decode()
    return {digits[i:i + MARKER_DIGITS] for i in range(len(digits) - MARKER_DIGITS + 1)}


def _files_holding(pgdata: Path, markers: list[str]) -> dict[str, list[str]]:
    wanted = set(markers)
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in pgdata.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = {w for pattern in _RUNS for run in pattern.findall(data)
                for w in _windows(run)} & wanted
        if hits:
            found[str(path.relative_to(pgdata))] = sorted(hits)
    return found


# A long message, as a worried patient writes: 150 of them pass PostgreSQL's 16 notify
# buffers (128 KiB), so the queue's older pages are written to pg_notify.
FILLER = "Buongiorno dottore, da ieri sera ho un dolore al petto e così non dormo. " * 16


async def test_chat_between_two_instances_leaves_no_trace_in_pgdata(own_pg, processes):
    a, b = processes
    gp = await StaffFactory(own_pg.url, "x")(Role.GP)
    factories = Factories(own_pg.url)
    try:
        visit = await Visits(factories)(gp.id)
    finally:
        await factories.close()
    session = await staff_session(own_pg.url, gp.id)
    # A listener busy in a transaction (as a slow instance would be) holds the queue's tail:
    # no page of it is truncated, so the search sees all that was written.
    holder = await asyncpg.connect(own_pg.url)
    await holder.add_listener(bus.CHANNEL, lambda *_: None)
    hold = holder.transaction()
    await hold.start()
    # A marker NOTIFYed in clear ahead of the chat must be found: the search can see.
    control = secrets.token_hex(8)
    other = await asyncpg.connect(own_pg.url)
    try:
        await other.execute(f"SELECT pg_notify('casa_test_control', '{control}')")
    finally:
        await other.close()
    patient = await SignalClient.connect(a.ws)
    doctor = await SignalClient.connect(b.ws, cookies={"casa_session": session})
    try:
        assert (await patient.hello(credential=visit.token))["type"] == "welcome"
        assert (await doctor.hello(room=visit.room_id))["type"] == "welcome"
        await doctor.send("admit", peer=patient.welcome["peer_id"])
        await patient.expect("admitted", 5)
        # Random markers: no prefix in common, so no compression could hide them.
        markers = [secrets.token_hex(MARKER_DIGITS // 2) for _ in range(LINES)]
        for i, marker in enumerate(markers):
            sender, reader = (patient, doctor) if i % 2 == 0 else (doctor, patient)
            text = f"riga {i}: {marker} {FILLER}"
            await sender.send("chat", text=text)
            chat = await reader.expect("chat", 5)
            assert chat["text"] == text
    finally:
        await patient.close()
        await doctor.close()
    checkpoint = await asyncpg.connect(own_pg.url)
    try:
        await checkpoint.execute("CHECKPOINT")
    finally:
        await checkpoint.close()
    for p in processes:
        p.stop()
    own_pg.server.stop()   # a fast shutdown: the holder's transaction ends with it
    assert not (own_pg.pgdata / "postmaster.pid").exists(), "the server did not stop"
    found = _files_holding(own_pg.pgdata, [*markers, control])
    assert any(control in hits for hits in found.values()), \
        f"the control marker was not found: the search proves nothing ({found})"
    leaked = {path: sum(m != control for m in hits) for path, hits in found.items()}
    assert not any(leaked.values()), f"chat markers on disk, by file: {leaked}"
