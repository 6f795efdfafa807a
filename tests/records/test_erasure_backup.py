"""A thief of a backup: a raw copy of pgdata taken before an erasure (a base backup), the live
pgdata after it (pg_wal, TOAST, pg_statistic, dead tuples) and the keyring file as it is after
the erasure. Nothing of the erased patient may decrypt; a control patient's notes still do,
which proves the attacker's routine finds and tries the keys."""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from records import content, keyring
from records.access import Category
from records.crypto import Envelope
from records.service import Records
from server import db
from server.config import Config
from server.staff import Role
from tests.conftest import SECRET_KEY, StaffFactory
from tests.pg import OwnServer
from tests.pg import own_server as running
from tests.records.conftest import BookingFactory, PatientFactory, api_headers, login_as

WRAPPED_BYTES = 12 + 32 + 16  # nonce || AES-GCM(32-byte data key) || tag
REASON_MARKER = b"GLASS-REASON-PLAINTEXT-51c2"
# A 60-byte bytea stored inline has the one-byte varlena header (60 + 1) << 1 | 1; the key id
# column written right after it is a short text: (len + 1) << 1 | 1, then the id itself.
WRAPPED_AT = re.compile(rb"(?=\x7b(.{60}))", re.DOTALL)
KEY_ID = re.compile(rb"[a-z0-9/+-]{4,120}")


@dataclass(frozen=True)
class Sealed:
    """What the thief learned from the copy: every note version and break-glass row by id."""

    versions: list[tuple[int, int, int]]  # note, version, patient
    glasses: list[tuple[int, int, int]]  # break_glass id, note, patient


def wrapped_keys_in(data: bytes) -> Iterator[tuple[bytes, str]]:
    """Every (wrapped key, key id) pair as PostgreSQL lays a row out, in heap pages, TOAST
    and WAL records alike (wal_compression is off, checked below)."""
    for m in WRAPPED_AT.finditer(data):
        end = m.start() + 1 + WRAPPED_BYTES
        if end >= len(data):
            continue
        header = data[end]
        if not header & 1:
            continue
        length = (header >> 1) - 1
        kid = data[end + 1:end + 1 + length]
        if 4 <= length <= 120 and KEY_ID.fullmatch(kid):
            yield m.group(1), kid.decode()


def keys_in_keyring(path: Path) -> list[bytes]:
    """Every key the keyring file yields: its master keys, every key sealed under them, and
    every key derivable from two of those (the derivation is public)."""
    raw = json.loads(path.read_text())
    masters = {k: base64.b64decode(v) for k, v in raw["keys"].items()}
    found = list(masters.values())
    sealed: list[bytes] = []
    for entry_id, entry in raw.get("sealed", {}).items():
        blob = base64.b64decode(entry.partition(":")[2])
        for kid, master in masters.items():
            aad = f"casa-sealed-v1|{entry_id}|{kid}".encode()
            try:
                sealed.append(AESGCM(master).decrypt(blob[:12], blob[12:], aad))
            except InvalidTag:
                continue
    found += sealed
    for a in sealed:
        for b in sealed:
            found.append(HKDF(hashes.SHA256(), 32, None, b"casa-wrap-v2").derive(a + b))
    return found


def attack(files: list[Path], keys: list[bytes], known: Sealed) -> set[tuple[str, int, int]]:
    """Try every wrapped key found in ``files`` against every key, bound to every row the
    copy names: which (kind, id, patient) opened."""
    candidates: set[tuple[bytes, str]] = set()
    for f in files:
        try:
            candidates.update(wrapped_keys_in(f.read_bytes()))
        except OSError:
            continue  # a socket or a file removed while we walked
    opened: set[tuple[str, int, int]] = set()
    for wrapped, kid in candidates:
        aads = [(("note", n, p), f"casa-dek-v1|{n}|{v}|{p}|{kid}".encode())
                for n, v, p in known.versions]
        aads += [(("glass", g, p), f"casa-glass-dek-v1|{g}|{n}|{p}|{kid}".encode())
                 for g, n, p in known.glasses]
        for what, aad in aads:
            for key in keys:
                try:
                    AESGCM(key).decrypt(wrapped[:12], wrapped[12:], aad)
                except InvalidTag:
                    continue
                opened.add(what)
    assert candidates, "the routine found no wrapped key at all"
    return opened


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
async def own_server() -> AsyncIterator[OwnServer]:
    """A PostgreSQL of this test alone, so its data directory can be copied."""
    async with running("casa-test-erasure-") as own:
        yield own


async def test_erasure_holds_against_pgdata_a_base_backup_and_the_keyring(
        own_server: OwnServer, tmp_path: Path, password_hash: str,
        aiohttp_client: Any) -> None:
    server, url = own_server.server, own_server.url
    make_staff = StaffFactory(url, password_hash)
    make_patient, make_booking = PatientFactory(url), BookingFactory(url)
    config = Config(secret_key=SECRET_KEY, data_dir=tmp_path / "casa",
                    database_url=own_server.serving_url)
    keyring.save(keyring.generate(config.keyring_path), config.keyring_path)
    rec = Records(Envelope(keyring.load(config.keyring_path)))

    gp = await make_staff(Role.GP, ("san-siro",))
    psy = await make_staff(Role.PSYCHOLOGIST, ("san-siro",))
    admin = await make_staff(Role.ADMIN, ("san-siro",))
    victim, control = await make_patient("san-siro"), await make_patient("san-siro")

    pool = await db.create_pool(url)
    try:
        async with pool.acquire() as conn:
            async def write(patient: int, author: Any, category: Category, service: str,
                            drafts: int, amend: bool) -> int:
                booking = await make_booking(patient, author.id, service, started=True)
                async with conn.transaction():
                    note = await rec.create(conn, author, booking_id=booking, patient_id=patient,
                                            category=category,
                                            content=content.parse({"text": "first draft"}))
                for i in range(drafts):  # superseded drafts: each one a row version
                    async with conn.transaction():
                        await rec.save_draft(conn, author, note.id,
                                             content.parse({"text": f"draft {i}"}))
                async with conn.transaction():
                    await rec.sign(conn, author, note.id)
                if amend:
                    async with conn.transaction():
                        await rec.amend(conn, author, note.id, "a correction")
                        await rec.save_draft(conn, author, note.id,
                                             content.parse({"text": "amended"}))
                return note.id

            await write(victim, gp, Category.GP, "gp_visit", 3, True)
            restricted = await write(victim, psy, Category.VIOLENCE_SUPPORT, "violence_support",
                                     1, False)
            await write(control, gp, Category.GP, "gp_visit", 2, True)
            async with conn.transaction():
                await rec.break_glass(conn, gp, restricted,
                                      REASON_MARKER.decode() + " she told me about the bruises")
            await conn.execute("ANALYZE")  # pg_statistic now samples every column
            assert await conn.fetchval("SHOW wal_compression") == "off"
            await conn.execute("CHECKPOINT")
            backup = tmp_path / "base-backup"
            shutil.copytree(server.pgdata, backup, ignore_dangling_symlinks=True,
                            ignore=shutil.ignore_patterns("postmaster.pid", ".s.PGSQL.*"))

            # More of the victim's work after the backup: only in the live pgdata's WAL.
            await write(victim, gp, Category.GP, "gp_visit", 1, False)
            known = Sealed(
                [(r["note_id"], r["version"], r["patient_id"]) for r in await conn.fetch(
                    "SELECT v.note_id, v.version, n.patient_id FROM note_versions v "
                    "JOIN notes n ON n.id = v.note_id")],
                [(r["id"], r["note_id"], r["patient_id"]) for r in await conn.fetch(
                    "SELECT g.id, g.note_id, n.patient_id FROM break_glass g "
                    "JOIN notes n ON n.id = g.note_id")])
            control_notes = {n for n, _, p in known.versions if p == control}

        # The admin erases the victim's notes through the API, as the page does.
        from server import app as app_module
        from server import centres

        client = await aiohttp_client(app_module.create_app(config))
        async with pool.acquire() as conn:
            await centres.sync(conn, centres.load_data())
        await login_as(client, admin, url)
        resp = await client.post(f"/api/v1/records/patients/{victim}/erase",
                                 headers=await api_headers(client),
                                 json={"reason": "patient_request"})
        assert resp.status == 200 and len((await resp.json())["erased"]) == 3
        await client.close()

        async with pool.acquire() as conn:
            await conn.execute("VACUUM")
            await conn.execute("ANALYZE")
            await conn.execute("CHECKPOINT")
    finally:
        await pool.close()

    keys = keys_in_keyring(config.keyring_path)
    files = files_under(server.pgdata) + files_under(backup)
    opened = attack(files, keys, known)
    # The control patient's notes open: the routine finds wrapped keys and tries them right.
    assert {i for kind, i, p in opened if kind == "note" and p == control} == control_notes
    leaked = sorted((kind, i) for kind, i, p in opened if p == victim)
    assert not leaked, f"erased data still opens from a copy of pgdata: {leaked}"
    # The break-glass reason was never stored in plaintext, not even before the erasure.
    assert not [f for f in files if f.is_file() and REASON_MARKER in f.read_bytes()]
