"""``casa keys init`` and ``casa records erase-expired``."""

from __future__ import annotations

import base64

from records import content, keyring
from records.access import Category
from server.cli import main
from server.staff import Role
from tests.records.conftest import run_cli_async


def _env(monkeypatch, config) -> None:
    monkeypatch.setenv("CASA_SECRET_KEY", config.secret_key)
    monkeypatch.setenv("CASA_KEYRING_FILE", str(config.keyring_path))
    monkeypatch.setenv("CASA_DATA_DIR", str(config.data_dir))


def test_keys_init_creates_once_and_never_overwrites(config, monkeypatch, capsys):
    # In-process: these paths touch no database.
    _env(monkeypatch, config)
    config.keyring_path.unlink()
    assert main(["keys", "init"]) == 0
    made = capsys.readouterr()
    assert "created keyring" in made.out
    ring = keyring.load(config.keyring_path)
    assert main(["keys", "init"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert keyring.load(config.keyring_path).current == ring.current
    key = ring.keys[ring.current]
    assert key.hex() not in made.out and base64.b64encode(key).decode() not in made.out
    assert main(["records", "erase-expired", "--older-than-days", "0"]) == 2


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
    done = await run_cli_async(config, "records", "erase-expired", "--older-than-days", "3650")
    assert done.returncode == 0 and "erased 1 note(s)" in done.stdout, done.stderr
    erased = {r["note_id"] for r in await conn.fetch(
        "SELECT note_id FROM note_versions WHERE wrapped_key IS NULL")}
    assert erased == {old.id} and new.id not in erased
    why = await conn.fetchval("SELECT detail->>'why' FROM audit_log WHERE action = 'erasure'")
    assert why == "retention"
