"""Storage of notes and their versions; the only code that writes note ciphertext.

Functions take a connection and an ``Envelope``; the caller owns the transaction and has
already applied the access rules (``records.service`` does both).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from records import subkeys
from records.access import Category
from records.content import NoteContent
from records.crypto import Envelope, RowId, Sealed
from records.errors import NoteStateError


@dataclass(frozen=True)
class Note:
    id: int
    booking_id: int
    patient_id: int
    category: Category
    author_id: int
    created_at: datetime
    erased_at: datetime | None


@dataclass(frozen=True)
class Version:
    note_id: int
    version: int
    author_id: int
    amends_version: int | None
    status: str
    saved_at: datetime
    signed_at: datetime | None
    erased_at: datetime | None
    content: NoteContent | None  # None when erased or not decrypted

    @property
    def signed(self) -> bool:
        return self.status == "signed"


NOTE_COLUMNS = "id, booking_id, patient_id, category::text AS category, author_id, created_at, " \
               "erased_at"
INSERT_NOTE = f"""
INSERT INTO notes (booking_id, patient_id, category, author_id) VALUES ($1, $2, $3, $4)
RETURNING {NOTE_COLUMNS}
"""
INSERT_VERSION = """
INSERT INTO note_versions (note_id, version, author_id, amends_version, status, ciphertext,
                           wrapped_key, kek_id)
VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7)
"""
GET_NOTE = f"SELECT {NOTE_COLUMNS} FROM notes WHERE id = $1"
LIST_FOR_PATIENT = f"SELECT {NOTE_COLUMNS} FROM notes WHERE patient_id = $1 ORDER BY created_at, id"
LIST_FOR_BOOKING = f"SELECT {NOTE_COLUMNS} FROM notes WHERE booking_id = $1 ORDER BY id"
VERSIONS = """
SELECT note_id, version, author_id, amends_version, status, saved_at, signed_at, erased_at,
       ciphertext, wrapped_key, kek_id
FROM note_versions WHERE note_id = $1 ORDER BY version
"""


def _note(r: asyncpg.Record) -> Note:
    return Note(r["id"], r["booking_id"], r["patient_id"], Category(r["category"]),
                r["author_id"], r["created_at"], r["erased_at"])


async def create_note(conn: asyncpg.Connection, env: Envelope, *, booking_id: int,
                      patient_id: int, category: Category, author_id: int,
                      content: NoteContent) -> Note:
    """A new note with its first version as a draft."""
    note = _note(await conn.fetchrow(INSERT_NOTE, booking_id, patient_id, category.value,
                                     author_id))
    sealed = env.seal(content.to_bytes(), RowId(note.id, 1, patient_id),
                      await key_id(conn, env, note))
    await conn.execute(INSERT_VERSION, note.id, 1, author_id, None, sealed.ciphertext,
                       sealed.wrapped_key, sealed.kek_id)
    return note


async def key_id(conn: asyncpg.Connection, env: Envelope, note: Note) -> str:
    """The key id new data keys of ``note`` are wrapped under: its patient's and its
    creation day's keys (``records.subkeys``), so erasing either erases every version."""
    return await subkeys.note_key_id(conn, env.ring, note.patient_id, note.created_at)


async def get_note(conn: asyncpg.Connection | asyncpg.Pool, note_id: int) -> Note | None:
    r = await conn.fetchrow(GET_NOTE, note_id)
    return _note(r) if r else None


async def notes_for_patient(conn: asyncpg.Connection, patient_id: int) -> list[Note]:
    return [_note(r) for r in await conn.fetch(LIST_FOR_PATIENT, patient_id)]


async def notes_for_booking(conn: asyncpg.Connection, booking_id: int) -> list[Note]:
    return [_note(r) for r in await conn.fetch(LIST_FOR_BOOKING, booking_id)]


@dataclass(frozen=True)
class NotePage:
    """One page of a patient's notes, newest first, with the cursors of its neighbours: the
    id of the note to read ``before`` (older notes) or ``after`` (newer notes), or None."""

    notes: list[Note]
    older: int | None
    newer: int | None


# Keyset paging on (created_at, id), newest first (index notes_patient_page, migration 0230).
# A cursor is a note id of the same patient; any other id gives an empty page.
PAGE_OLDER = f"""
SELECT {NOTE_COLUMNS} FROM notes WHERE patient_id = $1
  AND ($2::bigint IS NULL OR (created_at, id) <
       (SELECT created_at, id FROM notes WHERE id = $2 AND patient_id = $1))
ORDER BY created_at DESC, id DESC LIMIT $3
"""
PAGE_NEWER = f"""
SELECT {NOTE_COLUMNS} FROM notes WHERE patient_id = $1
  AND (created_at, id) > (SELECT created_at, id FROM notes WHERE id = $2 AND patient_id = $1)
ORDER BY created_at, id LIMIT $3
"""


async def notes_page(conn: asyncpg.Connection, patient_id: int, *, size: int,
                     before: int | None = None, after: int | None = None) -> NotePage:
    """At most ``size`` notes of the patient, newest first: the newest ones, those older than
    note ``before``, or those newer than note ``after``."""
    if after is not None:
        rows = await conn.fetch(PAGE_NEWER, patient_id, after, size + 1)
        notes = [_note(r) for r in rows[:size]][::-1]
        return NotePage(notes, older=notes[-1].id if notes else None,
                        newer=notes[0].id if len(rows) > size else None)
    rows = await conn.fetch(PAGE_OLDER, patient_id, before, size + 1)
    notes = [_note(r) for r in rows[:size]]
    return NotePage(notes, older=notes[-1].id if len(rows) > size else None,
                    newer=notes[0].id if before is not None and notes else None)


async def versions(conn: asyncpg.Connection, env: Envelope | None, note: Note) -> list[Version]:
    """Every version, oldest first, decrypted when ``env`` is given (and not erased)."""
    out = []
    for r in await conn.fetch(VERSIONS, note.id):
        content = None
        if env is not None and r["wrapped_key"] is not None:
            raw = env.open(Sealed(bytes(r["ciphertext"]), bytes(r["wrapped_key"]), r["kek_id"]),
                           RowId(note.id, r["version"], note.patient_id))
            content = NoteContent.from_bytes(raw)
        out.append(Version(r["note_id"], r["version"], r["author_id"], r["amends_version"],
                           r["status"], r["saved_at"], r["signed_at"], r["erased_at"], content))
    return out


LOCK_DRAFT = """
SELECT version, amends_version, ciphertext, wrapped_key, kek_id FROM note_versions
WHERE note_id = $1 AND status = 'draft' FOR UPDATE
"""
UPDATE_DRAFT = """
UPDATE note_versions SET ciphertext = $3, wrapped_key = $4, kek_id = $5, saved_at = now()
WHERE note_id = $1 AND version = $2 AND status = 'draft'
"""


HAS_SIGNED = "SELECT EXISTS (SELECT 1 FROM note_versions WHERE note_id = $1 AND status = 'signed')"


async def has_signed(conn: asyncpg.Connection, note_id: int) -> bool:
    """Whether the note has a signed version (without decrypting anything)."""
    return bool(await conn.fetchval(HAS_SIGNED, note_id))


async def save_draft(conn: asyncpg.Connection, env: Envelope, note: Note,
                     content: NoteContent) -> int:
    """Re-seal the open draft with a fresh data key (autosave); the draft's version number."""
    r = await conn.fetchrow(LOCK_DRAFT, note.id)
    if r is None:
        raise NoteStateError("no draft to save: the note is signed; amend it instead")
    version = r["version"]
    if r["amends_version"] is not None and not content.amend_reason and r["wrapped_key"]:
        # The editor does not resend the amendment's reason with every autosave: keep it.
        old = NoteContent.from_bytes(env.open(
            Sealed(bytes(r["ciphertext"]), bytes(r["wrapped_key"]), r["kek_id"]),
            RowId(note.id, version, note.patient_id)))
        content = replace(content, amend_reason=old.amend_reason)
    sealed = env.seal(content.to_bytes(), RowId(note.id, version, note.patient_id),
                      await key_id(conn, env, note))
    await conn.execute(UPDATE_DRAFT, note.id, version, sealed.ciphertext, sealed.wrapped_key,
                       sealed.kek_id)
    return int(version)


SIGN = """
UPDATE note_versions SET status = 'signed', signed_at = now()
WHERE note_id = $1 AND status = 'draft' RETURNING version
"""


async def sign(conn: asyncpg.Connection, note: Note) -> int:
    version = await conn.fetchval(SIGN, note.id)
    if version is None:
        raise NoteStateError("nothing to sign: the note has no draft")
    return int(version)


LATEST = """
SELECT max(version) AS last, max(version) FILTER (WHERE status = 'signed') AS signed,
       bool_or(status = 'draft') AS has_draft
FROM note_versions WHERE note_id = $1
"""


async def amend(conn: asyncpg.Connection, env: Envelope, note: Note, author_id: int,
                reason: str) -> int:
    """Open a new draft version correcting the latest signed one, starting from its content."""
    await conn.execute("SELECT 1 FROM notes WHERE id = $1 FOR UPDATE", note.id)
    r = await conn.fetchrow(LATEST, note.id)
    if r["has_draft"] or r["signed"] is None:
        raise NoteStateError("only a signed note without an open draft can be amended")
    previous = next(v for v in await versions(conn, env, note) if v.version == r["signed"])
    base = previous.content or NoteContent()
    version = int(r["last"]) + 1
    sealed = env.seal(replace(base, amend_reason=reason).to_bytes(),
                      RowId(note.id, version, note.patient_id), await key_id(conn, env, note))
    await conn.execute(INSERT_VERSION, note.id, version, author_id, r["signed"],
                       sealed.ciphertext, sealed.wrapped_key, sealed.kek_id)
    return version


ERASE_VERSIONS = """
UPDATE note_versions SET wrapped_key = NULL, erased_at = now()
WHERE note_id = $1 AND erased_at IS NULL
"""
ERASE_NOTE = "UPDATE notes SET erased_at = now() WHERE id = $1 AND erased_at IS NULL"
# Break-glass reasons are about the note's patient: they go with the note.
ERASE_REASONS = """
UPDATE break_glass SET reason = NULL, reason_wrapped_key = NULL
WHERE note_id = $1 AND (reason IS NOT NULL OR reason_wrapped_key IS NOT NULL)
"""
PATIENT_LIVE_NOTES = "SELECT id FROM notes WHERE patient_id = $1 AND erased_at IS NULL ORDER BY id"
EXPIRED = "SELECT id FROM notes WHERE erased_at IS NULL AND created_at < now() - $1::interval"


async def erase(conn: asyncpg.Connection, note_id: int) -> None:
    """Destroy every data key of the note in the database (and its break-glass reasons). A
    copy of the database taken before still holds them: what makes them useless there is
    destroying the patient's or the day's key in the keyring (``records.subkeys``)."""
    await conn.execute(ERASE_VERSIONS, note_id)
    await conn.execute(ERASE_NOTE, note_id)
    await conn.execute(ERASE_REASONS, note_id)
