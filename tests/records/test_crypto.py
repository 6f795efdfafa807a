"""Envelope encryption: every kind of tampering fails with a clear, specific error."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from records import content, keyring, store
from records.access import Category
from records.crypto import Envelope, RowId, Sealed
from records.errors import ErasedError, IntegrityError, KeyringError, UnknownKeyError
from server.staff import Role


async def _two_notes(conn: Any, rec: Any, make_staff: Any, make_patient: Any,
                     make_booking: Any) -> Any:
    gp = await make_staff(Role.GP, ("san-siro",))
    p1, p2 = await make_patient(), await make_patient()
    b1, b2 = await make_booking(p1, gp.id), await make_booking(p2, gp.id)
    a = await rec.create(conn, gp, booking_id=b1, patient_id=p1, category=Category.GP,
                         content=content.parse({"text": "note A"}))
    b = await rec.create(conn, gp, booking_id=b2, patient_id=p2, category=Category.GP,
                         content=content.parse({"text": "note B"}))
    return gp, a, b


async def test_round_trip_and_fresh_data_key_per_seal(ring):
    env = Envelope(ring)
    row = RowId(1, 1, 7)
    s1, s2 = env.seal(b"hello", row), env.seal(b"hello", row)
    assert s1.ciphertext != s2.ciphertext and s1.wrapped_key != s2.wrapped_key
    assert env.open(s1, row) == b"hello"
    assert b"hello" not in s1.ciphertext


async def test_swapped_ciphertexts_fail_with_integrity_error(conn, rec, make_staff, make_patient,
                                                             make_booking):
    gp, a, b = await _two_notes(conn, rec, make_staff, make_patient, make_booking)
    # Drafts may be re-saved, so the swap is possible in SQL; decryption must catch it.
    await conn.execute("""
        UPDATE note_versions SET ciphertext = x.ciphertext, wrapped_key = x.wrapped_key
        FROM (SELECT ciphertext, wrapped_key FROM note_versions WHERE note_id = $2) x
        WHERE note_id = $1""", a.id, b.id)
    with pytest.raises(IntegrityError, match=f"note {a.id} version 1: data key failed"):
        await rec.read(conn, gp, a.id)


async def test_swapped_ciphertext_alone_fails_on_content(conn, rec, make_staff, make_patient,
                                                         make_booking):
    gp, a, b = await _two_notes(conn, rec, make_staff, make_patient, make_booking)
    await conn.execute("""
        UPDATE note_versions SET ciphertext = (SELECT ciphertext FROM note_versions
                                               WHERE note_id = $2) WHERE note_id = $1""",
                       a.id, b.id)
    with pytest.raises(IntegrityError, match="ciphertext failed authentication"):
        await rec.read(conn, gp, a.id)


async def test_tampered_tag_fails(conn, rec, make_staff, make_patient, make_booking):
    gp, a, _b = await _two_notes(conn, rec, make_staff, make_patient, make_booking)
    ct = bytearray(await conn.fetchval("SELECT ciphertext FROM note_versions WHERE note_id=$1",
                                       a.id))
    ct[-1] ^= 0x01  # last byte of the GCM tag
    await conn.execute("UPDATE note_versions SET ciphertext = $2 WHERE note_id = $1", a.id,
                       bytes(ct))
    with pytest.raises(IntegrityError, match="tampered"):
        await rec.read(conn, gp, a.id)


async def test_wrong_associated_data_fails(ring):
    env = Envelope(ring)
    sealed = env.seal(b"text", RowId(5, 1, 100))
    for other in (RowId(5, 1, 101), RowId(5, 2, 100), RowId(6, 1, 100)):
        with pytest.raises(IntegrityError):
            env.open(sealed, other)
    # The key id is bound too: claiming another (existing) key id fails authentication.
    ring2, kid = ring.with_new_key()
    env2 = Envelope(ring2)
    with pytest.raises(IntegrityError, match=f"under key {kid}"):
        env2.open(Sealed(sealed.ciphertext, sealed.wrapped_key, kid), RowId(5, 1, 100))


async def test_unknown_key_id_fails_clearly(conn, rec, make_staff, make_patient, make_booking):
    gp, a, _b = await _two_notes(conn, rec, make_staff, make_patient, make_booking)
    await conn.execute("UPDATE note_versions SET kek_id = 'k-nosuchkey' WHERE note_id = $1",
                       a.id)
    with pytest.raises(UnknownKeyError, match="'k-nosuchkey' is not in the keyring"):
        await rec.read(conn, gp, a.id)


async def test_erased_note_cannot_be_read_and_stays_erased(conn, rec, make_staff, make_patient,
                                                           make_booking):
    gp, a, _b = await _two_notes(conn, rec, make_staff, make_patient, make_booking)
    await rec.sign(conn, gp, a.id)
    await rec.erase_note(conn, None, a.id, "patient_request")
    view = await rec.read(conn, gp, a.id)
    assert view.versions[0].content is None and view.versions[0].erased_at is not None
    with pytest.raises(ErasedError):
        Envelope(rec.env.ring).open(Sealed(b"x", None, "k"), RowId(a.id, 1, a.patient_id))
    # Nobody can put a key back.
    with pytest.raises(asyncpg.IntegrityConstraintViolationError,
                       match="erased note version cannot change") as refused:
        await conn.execute("UPDATE note_versions SET wrapped_key = 'x'::bytea, erased_at = NULL"
                           " WHERE note_id = $1", a.id)
    assert refused.value.sqlstate == "23000"
    actions = await conn.fetch("SELECT action, detail->>'why' AS why FROM audit_log "
                               "WHERE action = 'erasure'")
    assert [(r["action"], r["why"]) for r in actions] == [("erasure", "patient_request")]
    note = await store.get_note(conn, a.id)
    assert note is not None and note.erased_at is not None


def test_malformed_keyring_files_are_refused(tmp_path):
    path = tmp_path / "ring.json"
    with pytest.raises(KeyringError, match="does not exist"):
        keyring.load(path)
    path.write_text("{not json")
    with pytest.raises(KeyringError, match="not valid"):
        keyring.load(path)
    path.write_text('{"current": "k-a", "keys": {"k-a": "c2hvcnQ="}}')
    with pytest.raises(KeyringError, match="malformed"):
        keyring.load(path)
    r = keyring.generate()
    keyring.save(r, path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert keyring.load(path).current == r.current
