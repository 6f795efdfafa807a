"""Key rotation while notes are being written, resuming after an interruption, and
``casa keys verify``."""

from __future__ import annotations

import asyncio

import pytest

from records import content, keyring, rotate
from records.access import Category
from records.crypto import Envelope
from records.service import Records
from server import db
from server.staff import Role
from tests.records.conftest import run_cli_async


class Stop(Exception):
    pass


async def _seed(pool, rec, gp, patient, booking, n: int) -> list[int]:
    ids = []
    async with pool.acquire() as conn, conn.transaction():
        for i in range(n):
            note = await rec.create(conn, gp, booking_id=booking, patient_id=patient,
                                    category=Category.GP,
                                    content=content.parse({"text": f"note {i}"}))
            if i % 2:
                await rec.sign(conn, gp, note.id)
            ids.append(note.id)
    return ids


async def test_rotation_while_notes_are_written_loses_nothing(db_url, config, ring, make_staff,
                                                              make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    pool = await db.create_pool(db_url)
    try:
        # The "server": its own keyring object over the same file, as a running app has.
        server_rec = Records(Envelope(keyring.load(config.keyring_path)))
        await _seed(pool, server_rec, gp, patient, booking, 300)
        written: list[int] = []
        stop = asyncio.Event()

        async def writer() -> None:
            i = 0
            while not stop.is_set():
                async with pool.acquire() as conn, conn.transaction():
                    note = await server_rec.create(
                        conn, gp, booking_id=booking, patient_id=patient,
                        category=Category.GP, content=content.parse({"text": f"live {i}"}))
                    # Autosave while rotating: the draft is re-sealed under whatever key.
                    await server_rec.save_draft(conn, gp, note.id,
                                                content.parse({"text": f"live {i} saved"}))
                written.append(note.id)
                i += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.2)
        new_ring, kid = keyring.load(config.keyring_path).with_new_key()
        keyring.save(new_ring, config.keyring_path)
        n = await asyncio.wait_for(rotate.rewrap_all(pool, new_ring, batch=50, settle_s=0.3),
                                   timeout=60)
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        assert n >= 1 and written
        left = await pool.fetchval(rotate.REMAINING, kid)
        assert left == 0
        total = await pool.fetchval("SELECT count(*) FROM notes")
        assert total == 300 + len(written)
        async with pool.acquire() as conn:
            for note_id in written[-3:]:
                view = await server_rec.read(conn, gp, note_id)
                last = view.versions[-1].content
                assert last is not None and last.text.endswith("saved")
    finally:
        await pool.close()
    result = await run_cli_async(config, "keys", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{kid}: {total}" in result.stdout


async def test_interrupted_rotation_resumes_from_the_cli(db_url, config, make_staff,
                                                         make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    pool = await db.create_pool(db_url)
    try:
        rec = Records(Envelope(keyring.load(config.keyring_path)))
        await _seed(pool, rec, gp, patient, booking, 120)
        new_ring, kid = keyring.load(config.keyring_path).with_new_key()
        keyring.save(new_ring, config.keyring_path)

        def interrupt(done: int, total: int) -> None:
            raise Stop  # as if Ctrl-C arrived after the first batch

        with pytest.raises(Stop):
            await rotate.rewrap_all(pool, new_ring, batch=40, progress=interrupt)
        assert await pool.fetchval(rotate.REMAINING, kid) == 80
    finally:
        await pool.close()
    resumed = await run_cli_async(config, "keys", "rotate", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "80 data key(s) re-wrapped" in resumed.stdout and "80/80" in resumed.stderr
    again = await run_cli_async(config, "keys", "rotate")
    assert again.returncode == 0 and "120 data key(s) re-wrapped" in again.stdout
    assert len(keyring.load(config.keyring_path).keys) == 3
    verified = await run_cli_async(config, "keys", "verify")
    assert verified.returncode == 0 and "120 note version(s) decrypt" in verified.stdout


async def test_verify_reports_a_row_that_no_longer_decrypts(db_url, config, conn, rec,
                                                            make_staff, make_patient,
                                                            make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    note = await rec.create(conn, gp, booking_id=booking, patient_id=patient, category=Category.GP,
                            content=content.parse({"text": "x"}))
    await conn.execute("UPDATE note_versions SET kek_id = 'k-gone' WHERE note_id = $1", note.id)
    result = await run_cli_async(config, "keys", "verify")
    assert result.returncode == 1
    assert f"FAILED note {note.id} version 1: key id 'k-gone' is not in the keyring" \
        in result.stdout


async def test_rotate_without_a_keyring_fails_cleanly(config):
    config.keyring_path.unlink()
    result = await run_cli_async(config, "keys", "rotate")
    assert result.returncode == 2 and "does not exist" in result.stderr


async def test_a_second_rotation_waits_its_turn(config, conn):
    before = keyring.load(config.keyring_path).keys.keys()
    await conn.execute("SELECT pg_advisory_lock($1)", rotate.ROTATE_LOCK_ID)
    try:
        busy = await run_cli_async(config, "keys", "rotate")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", rotate.ROTATE_LOCK_ID)
    assert busy.returncode == 2 and "another key rotation is running" in busy.stderr
    assert keyring.load(config.keyring_path).keys.keys() == before  # no key added
