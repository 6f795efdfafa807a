"""Patient and day keys in the keyring file: what erasure and retention destroy there, two
instances sharing the file, an erasure racing a note being written, and statistics."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from records import content, keyring, subkeys
from records.access import Category
from records.crypto import Envelope, RowId, Sealed
from records.errors import KeyringError, UnknownKeyError
from records.keyring import Keyring
from records.service import Records
from server import db
from server.staff import Role
from tests.records.conftest import run_cli_async

TIMEOUT_S = 10


async def _note(conn, rec, gp, make_booking, patient: int, text: str) -> int:
    async with conn.transaction():
        note = await rec.create(conn, gp, booking_id=await make_booking(patient, gp.id),
                                patient_id=patient, category=Category.GP,
                                content=content.parse({"text": text}))
        await rec.sign(conn, gp, note.id)
    return int(note.id)


async def _rows(conn, note_id: int) -> list[tuple[RowId, Sealed]]:
    return [(RowId(r["note_id"], r["version"], r["patient_id"]),
             Sealed(bytes(r["ciphertext"]), bytes(r["wrapped_key"]), r["kek_id"]))
            for r in await conn.fetch(
                "SELECT v.note_id, v.version, n.patient_id, v.ciphertext, v.wrapped_key, "
                "v.kek_id FROM note_versions v JOIN notes n ON n.id = v.note_id "
                "WHERE v.note_id = $1", note_id)]


def _opens(ring: Keyring, rows: list[tuple[RowId, Sealed]]) -> bool:
    try:
        for row, sealed in rows:
            Envelope(ring).open(sealed, row)
    except UnknownKeyError:
        return False
    return True


async def test_erasure_on_one_instance_is_not_undone_by_another(db_url, config, make_staff,
                                                                make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    admin = await make_staff(Role.ADMIN, ("san-siro",))
    victim, later = await make_patient("san-siro"), await make_patient("san-siro")
    pool = await db.create_pool(db_url)
    try:
        # Two instances, each with its own keyring object over the one file.
        a = Records(Envelope(keyring.load(config.keyring_path)))
        b = Records(Envelope(keyring.load(config.keyring_path)))
        async with pool.acquire() as conn:
            note_id = await _note(conn, a, gp, make_booking, victim, "before")
            before = await _rows(conn, note_id)
            b.env.ring.refresh()  # B has the victim's key in memory
            victim_key = before[0][1].kek_id.split("/")[0]
            assert victim_key in b.env.ring.sealed
            async with conn.transaction():
                await a.erase_patient(conn, admin, victim, "patient_request")
            assert await a.sweep(pool) == 1
            # B writes the file next (a new patient's key): from the file, not its memory.
            await _note(conn, b, gp, make_booking, later, "after")
    finally:
        await pool.close()
    on_file = keyring.load(config.keyring_path)
    assert victim_key not in set(on_file.sealed) | set(b.env.ring.sealed)
    assert not _opens(on_file, before)
    verified = await run_cli_async(config, "keys", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_an_erasure_waits_for_a_note_being_written_and_erases_it(
        db_url, config, rec, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    admin = await make_staff(Role.ADMIN, ("san-siro",))
    patient = await make_patient("san-siro")
    pool = await db.create_pool(db_url)
    try:
        async with pool.acquire() as c:
            await _note(c, rec, gp, make_booking, patient, "first")
        booking = await make_booking(patient, gp.id)
        writer = await pool.acquire()
        tx = writer.transaction()
        await tx.start()
        note = await rec.create(writer, gp, booking_id=booking, patient_id=patient,
                                category=Category.GP, content=content.parse({"text": "racing"}))

        async def erase() -> list[int]:
            async with pool.acquire() as c, c.transaction():
                ids: list[int] = await rec.erase_patient(c, admin, patient, "patient_request")
                return ids

        erasing = asyncio.create_task(erase())
        await asyncio.sleep(0.3)
        assert not erasing.done()  # waits for the note that holds the patient's key
        await tx.commit()
        await pool.release(writer)
        erased = await asyncio.wait_for(erasing, TIMEOUT_S)
        assert note.id in erased and len(erased) == 2
        await rec.sweep(pool)
        async with pool.acquire() as c:
            rows = await c.fetch("SELECT wrapped_key FROM note_versions WHERE note_id = $1",
                                 note.id)
            assert [r["wrapped_key"] for r in rows] == [None]
            # The patient comes back: a new note gets a new key and reads.
            again = await _note(c, rec, gp, make_booking, patient, "a new start")
            assert _opens(keyring.load(config.keyring_path), await _rows(c, again))
    finally:
        await pool.close()


async def test_retention_destroys_old_day_keys_and_newer_notes_live_on(
        config, conn, rec, make_staff, make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    old = await _note(conn, rec, gp, make_booking, patient, "old")
    old_rows = await _rows(conn, old)
    # Written eleven years ago: the note and the key of its day.
    for table, guard, column, where in (
            ("notes", "notes_guard", "created_at", "id = $1"),
            ("record_keys", "record_keys_guard", "day",
             "id = (SELECT split_part(kek_id, '/', 2) FROM note_versions WHERE note_id = $1)")):
        await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {guard}")
        await conn.execute(f"UPDATE {table} SET {column} = {column} - interval '11 years' "
                           f"WHERE {where}", old)
        await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {guard}")
    new = await _note(conn, rec, gp, make_booking, patient, "new")
    assert (await _rows(conn, new))[0][1].kek_id != old_rows[0][1].kek_id

    done = await run_cli_async(config, "records", "erase-expired", "--older-than-days", "3650")
    assert done.returncode == 0, done.stderr
    assert "erased 1 note(s)" in done.stdout and "1 day key(s) destroyed" in done.stdout
    on_file = keyring.load(config.keyring_path)
    assert not _opens(on_file, old_rows)  # not even with the wrapped key from a backup
    assert _opens(on_file, await _rows(conn, new))
    view = await rec.read(conn, gp, new)
    assert view.versions[0].content is not None and view.versions[0].content.text == "new"


async def test_no_statistics_on_key_and_ciphertext_columns(conn, rec, make_staff, make_patient,
                                                           make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    for i in range(5):
        await _note(conn, rec, gp, make_booking, patient, f"note {i}")
    await conn.execute("ANALYZE note_versions")
    await conn.execute("ANALYZE break_glass")
    stats = {(r["tablename"], r["attname"]) for r in await conn.fetch(
        "SELECT tablename, attname FROM pg_stats WHERE tablename IN "
        "('note_versions', 'break_glass')")}
    assert ("note_versions", "version") in stats  # ANALYZE did run
    assert not stats & {("note_versions", "ciphertext"), ("note_versions", "wrapped_key"),
                        ("break_glass", "reason"), ("break_glass", "reason_ciphertext"),
                        ("break_glass", "reason_wrapped_key")}


def test_saving_the_keyring_scrubs_the_file_it_replaces(tmp_path):
    path = tmp_path / "keyring.json"
    ring = keyring.generate(path)
    ring.add_sealed("p1-abcdef", os.urandom(32))
    keyring.save(ring, path)
    with path.open("rb") as old:  # a reader, or a deleted file's blocks, holding the old inode
        ring.remove_sealed({"p1-abcdef"})
        keyring.save(ring, path)
        stale = old.read()
    assert stale and stale == bytes(len(stale))
    assert "p1-abcdef" not in keyring.load(path).sealed


def test_a_first_layout_keyring_file_is_still_read(tmp_path):
    path = tmp_path / "keyring.json"
    path.write_text('{"version": 1, "current": "k20261127-3f9a", '
                    '"keys": {"k20261127-3f9a": "' + "A" * 43 + '="}}')
    path.chmod(0o600)
    ring = keyring.load(path)
    assert ring.current == "k20261127-3f9a" and ring.sealed == {}
    path.write_text('{"version": 2, "current": "k20261127-3f9a", '
                    '"keys": {"k20261127-3f9a": "' + "A" * 43 + '="}, '
                    '"sealed": {"p1-abcdef": "k-missing:AAAA"}}')
    with pytest.raises(KeyringError, match="lacks"):
        keyring.load(path)


async def test_a_keyring_pointed_at_another_database_loses_nothing(config, conn, rec,
                                                                   make_staff, make_patient,
                                                                   make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    await _note(conn, rec, gp, make_booking, patient, "kept")
    before = set(keyring.load(config.keyring_path).sealed)
    await conn.execute("ALTER TABLE record_keys DISABLE TRIGGER record_keys_guard")
    await conn.execute("DELETE FROM record_keys")  # as a fresh or wrong database would be
    await conn.execute("ALTER TABLE record_keys ENABLE TRIGGER record_keys_guard")
    assert await subkeys.sweep(conn, rec.env.ring) == 0
    assert set(keyring.load(config.keyring_path).sealed) == before


async def test_migration_0220_clears_statistics_gathered_before_it(conn, rec, make_staff,
                                                                   make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    for i in range(5):
        await _note(conn, rec, gp, make_booking, patient, f"note {i}")
    # As before the migration: the column sampled by ANALYZE.
    await conn.execute("ALTER TABLE note_versions ALTER COLUMN wrapped_key SET STATISTICS -1")
    await conn.execute("ANALYZE note_versions")
    sampled = "SELECT count(*) FROM pg_stats WHERE tablename = 'note_versions' " \
              "AND attname = 'wrapped_key'"
    assert await conn.fetchval(sampled) == 1
    sql = (Path(db.MIGRATIONS_DIR) / "0220_records_erasure_keys.sql").read_text()
    start = sql.index("DO $$")
    await conn.execute(sql[start:sql.index("END $$;", start) + len("END $$;")])
    assert await conn.fetchval(sampled) == 0
