"""``casa keys init`` and ``casa records erase-expired``."""

from __future__ import annotations

from records import content, keyring
from records.access import Category
from server.staff import Role
from tests.records.conftest import run_cli_async


async def test_keys_init_creates_once_and_never_overwrites(config):
    config.keyring_path.unlink()
    made = await run_cli_async(config, "keys", "init")
    assert made.returncode == 0 and "created keyring" in made.stdout
    kid = keyring.load(config.keyring_path).current
    again = await run_cli_async(config, "keys", "init")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert keyring.load(config.keyring_path).current == kid
    assert kid not in made.stderr  # the key id is fine to print; the key itself never is
    assert keyring.load(config.keyring_path).keys[kid].hex() not in made.stdout


async def test_erase_expired_destroys_old_notes_only(config, conn, rec, make_staff,
                                                     make_patient, make_booking):
    gp = await make_staff(Role.GP, ("san-siro",))
    patient = await make_patient("san-siro")
    booking = await make_booking(patient, gp.id)
    old = await rec.create(conn, gp, booking_id=booking, patient_id=patient, category=Category.GP,
                           content=content.parse({"text": "old"}))
    new = await rec.create(conn, gp, booking_id=booking, patient_id=patient, category=Category.GP,
                           content=content.parse({"text": "new"}))
    await conn.execute("ALTER TABLE notes DISABLE TRIGGER notes_guard")
    await conn.execute("UPDATE notes SET created_at = now() - interval '11 years' WHERE id = $1",
                       old.id)
    await conn.execute("ALTER TABLE notes ENABLE TRIGGER notes_guard")
    bad = await run_cli_async(config, "records", "erase-expired", "--older-than-days", "0")
    assert bad.returncode == 2
    done = await run_cli_async(config, "records", "erase-expired", "--older-than-days", "3650")
    assert done.returncode == 0 and "erased 1 note(s)" in done.stdout, done.stderr
    erased = {r["note_id"] for r in await conn.fetch(
        "SELECT note_id FROM note_versions WHERE wrapped_key IS NULL")}
    assert erased == {old.id} and new.id not in erased
    why = await conn.fetchval("SELECT detail->>'why' FROM audit_log WHERE action = 'erasure'")
    assert why == "retention"
