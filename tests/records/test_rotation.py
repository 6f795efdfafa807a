"""Key rotation while notes are being written, the move of first-layout rows to patient and
day keys (resuming after an interruption), and ``casa keys verify``."""

from __future__ import annotations

import asyncio

import pytest

from records import content, keyring, rotate
from records.access import Category
from records.crypto import Envelope, RowId, Sealed
from records.errors import UnknownKeyError
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


async def _to_first_layout(pool, ring: keyring.Keyring) -> int:
    """Wrap every data key directly under the current master key, as Casa did before
    migration 0220: the rows an upgraded database starts with."""
    env = Envelope(ring)
    rows = await pool.fetch("SELECT v.note_id, v.version, n.patient_id, v.wrapped_key, v.kek_id"
                            " FROM note_versions v JOIN notes n ON n.id = v.note_id"
                            " WHERE v.wrapped_key IS NOT NULL")
    for r in rows:
        old = env.rewrap(Sealed(b"", bytes(r["wrapped_key"]), r["kek_id"]),
                         RowId(r["note_id"], r["version"], r["patient_id"]), ring.current)
        await pool.execute("UPDATE note_versions SET wrapped_key = $3, kek_id = $4"
                           " WHERE note_id = $1 AND version = $2", r["note_id"], r["version"],
                           old.wrapped_key, old.kek_id)
    return len(rows)


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
        first_layout = await _to_first_layout(pool, keyring.load(config.keyring_path))
        assert first_layout == 300
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
        ring_now = keyring.load(config.keyring_path)
        async with pool.acquire() as conn:
            kid = await rotate.rotate_master(conn, ring_now)
        n = await asyncio.wait_for(rotate.rewrap_all(pool, ring_now, batch=50, settle_s=0.3),
                                   timeout=60)
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        assert n == 300 and written
        assert await pool.fetchval(rotate.REMAINING) == 0
        on_file = keyring.load(config.keyring_path)
        assert on_file.current == kid and len(on_file.keys) == 2
        assert on_file.sealed
        assert {keyring.sealed_under(v) for v in on_file.sealed.values()} == {kid}
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
    assert f"patient+day: {total}" in result.stdout


async def test_interrupted_rotation_resumes_from_the_cli(db_url, config, make_staff,
                                                         make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    pool = await db.create_pool(db_url)
    try:
        rec = Records(Envelope(keyring.load(config.keyring_path)))
        await _seed(pool, rec, gp, patient, booking, 120)
        await _to_first_layout(pool, keyring.load(config.keyring_path))
        # First-layout rows stay readable before they are moved.
        async with pool.acquire() as conn:
            note_id = await conn.fetchval("SELECT min(id) FROM notes")
            view = await rec.read(conn, gp, note_id)
            assert view.versions[0].content is not None

        def interrupt(done: int, total: int) -> None:
            raise Stop  # as if Ctrl-C arrived after the first batch

        with pytest.raises(Stop):
            await rotate.rewrap_all(pool, keyring.load(config.keyring_path), batch=40,
                                    progress=interrupt)
        assert await pool.fetchval(rotate.REMAINING) == 80
    finally:
        await pool.close()
    resumed = await run_cli_async(config, "keys", "rotate", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "80 data key(s) re-wrapped" in resumed.stdout and "80/80" in resumed.stderr
    again = await run_cli_async(config, "keys", "rotate")
    assert again.returncode == 0 and "0 data key(s) re-wrapped" in again.stdout, again.stderr
    assert len(keyring.load(config.keyring_path).keys) == 2
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


async def test_rotation_seals_break_glass_reasons_stored_in_plaintext(config, conn, rec,
                                                                    make_staff, make_patient,
                                                                    make_booking):
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    note = await rec.create(conn, psy, booking_id=await make_booking(patient, psy.id,
                                                                     "violence_support"),
                            patient_id=patient, category=Category.VIOLENCE_SUPPORT,
                            content=content.parse({"text": "x"}))
    await rec.sign(conn, psy, note.id)
    # A row as Casa wrote it before migration 0220: the reason in plaintext.
    glass = await conn.fetchval(
        "INSERT INTO break_glass (note_id, staff_id, reason, expires_at) "
        "VALUES ($1, $2, 'OLD-REASON-9a7c: she called from the shelter', now()) RETURNING id",
        note.id, gp.id)
    await conn.execute("INSERT INTO records_notifications (staff_id, kind, note_id, actor_id, "
                       "break_glass_id) VALUES ($1, 'break_glass', $2, $3, $4)",
                       psy.id, note.id, gp.id, glass)
    assert (await rec.notifications(conn, psy))[0].reason.startswith("OLD-REASON-9a7c")

    done = await run_cli_async(config, "keys", "rotate")
    assert done.returncode == 0 and "1 break-glass reason(s) sealed" in done.stdout, done.stderr
    row = await conn.fetchrow("SELECT reason, reason_ciphertext FROM break_glass WHERE id = $1",
                              glass)
    assert row["reason"] is None and b"OLD-REASON" not in bytes(row["reason_ciphertext"])
    assert (await rec.notifications(conn, psy))[0].reason.startswith("OLD-REASON-9a7c")
    verified = await run_cli_async(config, "keys", "verify")
    assert verified.returncode == 0 and "1 break-glass reason(s) decrypt" in verified.stdout


async def test_pruning_old_master_keys_makes_erasure_hold_against_older_backups(
        db_url, config, conn, rec, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    admin = await make_staff(Role.ADMIN, ("san-siro",))
    patient = await make_patient("san-siro")
    note = await rec.create(conn, gp, booking_id=await make_booking(patient, gp.id),
                            patient_id=patient, category=Category.GP,
                            content=content.parse({"text": "before the upgrade"}))
    pool = await db.create_pool(db_url)
    try:
        await _to_first_layout(pool, keyring.load(config.keyring_path))
    finally:
        await pool.close()
    # What a database backup from before the upgrade holds: a data key under a master key.
    r = await conn.fetchrow("SELECT ciphertext, wrapped_key, kek_id FROM note_versions "
                            "WHERE note_id = $1", note.id)
    backup = Sealed(bytes(r["ciphertext"]), bytes(r["wrapped_key"]), r["kek_id"])
    row = RowId(note.id, 1, patient)

    assert (await run_cli_async(config, "keys", "rotate")).returncode == 0
    async with conn.transaction():
        await rec.erase_patient(conn, admin, patient, "patient_request")
    pool = await db.create_pool(db_url)
    try:
        await rec.sweep(pool)
    finally:
        await pool.close()
    Envelope(keyring.load(config.keyring_path)).open(backup, row)  # the old master key opens it

    pruned = await run_cli_async(config, "keys", "prune")
    assert pruned.returncode == 0 and f"removed 1 old master key(s): {r['kek_id']}" \
        in pruned.stdout, pruned.stdout + pruned.stderr
    with pytest.raises(UnknownKeyError):
        Envelope(keyring.load(config.keyring_path)).open(backup, row)
    again = await run_cli_async(config, "keys", "prune")
    assert again.returncode == 0 and "no old master key to remove" in again.stdout
