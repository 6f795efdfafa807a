"""The records layer: every operation on notes checks ``records.access`` and writes the audit
log in the caller's transaction, so an access that is not audited does not happen."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from records import access, audit, readings, sharing, store, subkeys
from records.access import Category, Facts, Op
from records.content import NoteContent
from records.crypto import Envelope, GlassId
from records.errors import (
    NOTE_NOT_FOUND,
    Denied,
    ErasedError,
    InvalidContent,
    NoteStateError,
    RecordsError,
)
from records.store import Note, Version
from server import staff as staff_store
from server.consultations import care
from server.errors import NotFound
from server.staff import Staff

log = logging.getLogger("casa.records")


@dataclass(frozen=True)
class NoteView:
    """A note as one person may see it: versions decrypted only when they may read it."""

    note: Note
    readable: bool
    can_edit: bool
    can_break_glass: bool
    versions: list[Version]

    @property
    def latest(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    @property
    def latest_signed(self) -> Version | None:
        return next((v for v in reversed(self.versions) if v.signed), None)


async def _audit(conn: asyncpg.Connection, action: str, user: Staff | None, note: Note | None,
                 patient_id: int | None = None, **detail: str | int | bool | list[int] | None
                 ) -> None:
    await audit.append(conn, action=action, actor_staff_id=user.id if user else None,
                       actor_kind="staff" if user else "system",
                       patient_id=note.patient_id if note else patient_id,
                       booking_id=note.booking_id if note else None,
                       detail=({"note_id": note.id} if note else {}) | detail)


# Notes on one page of the patient's record: a screenful a clinician reads, and few enough that
# the page stays small (a note may carry several versions) and its audit row one row.
RECORD_PAGE = 50
# Note ids in one audit row: 150 ids of even 19 digits (21 bytes each in JSON) keep the row's
# detail well under the audit log's 4 KiB limit. A longer list (an export) is several rows.
AUDIT_IDS_PER_ROW = 150


async def _audit_read(conn: asyncpg.Connection, action: str, user: Staff, patient_id: int,
                      note_ids: list[int], **detail: str | int | None) -> None:
    """The notes ``user`` was shown, as bounded rows: ``part`` k of ``parts`` when the list
    is longer than one row holds, so every id read is in the log and no row outgrows it."""
    chunks = [note_ids[i:i + AUDIT_IDS_PER_ROW]
              for i in range(0, len(note_ids), AUDIT_IDS_PER_ROW)] or [[]]
    for k, chunk in enumerate(chunks, 1):
        parts: dict[str, int] = {"part": k, "parts": len(chunks)} if len(chunks) > 1 else {}
        await _audit(conn, action, user, None, patient_id, note_ids=chunk, **detail, **parts)


def _visible(versions: list[Version], author: bool) -> list[Version]:
    """A draft is its author's until signed: others see signed versions only."""
    return versions if author else [v for v in versions if v.signed]


class Records:
    """Operations on clinical notes for one running app (or CLI, or benchmark)."""

    def __init__(self, env: Envelope) -> None:
        self.env = env
        self.readings = readings.Readings(readings.ReadingEnvelope(env.ring))

    async def _note(self, conn: asyncpg.Connection, note_id: int) -> Note:
        note = await store.get_note(conn, note_id)
        if note is None:
            raise NotFound(NOTE_NOT_FOUND, f"note {note_id}")
        return note

    async def _check(self, conn: asyncpg.Connection, user: Staff, op: Op,
                     note: Note) -> Facts:
        facts = await access.note_facts(conn, user, note.id, note.author_id, note.patient_id)
        if not access.allowed(user.role, op, note.category, facts):
            raise Denied(f"{op.value} refused on note {note.id}")
        return facts

    async def create(self, conn: asyncpg.Connection, user: Staff, *, booking_id: int,
                     patient_id: int, category: Category, content: NoteContent) -> Note:
        """Start a note (version 1, draft) in a consultation: only its clinician, nurse or an
        invited participant, caring for the patient, writes there."""
        facts = Facts()
        if user.role.clinical:
            facts = Facts(caring=await access.caring_for(conn, user.id, patient_id),
                          on_booking=await access.on_booking(conn, user.id, booking_id))
        if not access.allowed(user.role, Op.CREATE, category, facts):
            raise Denied("create refused")
        note = await store.create_note(conn, self.env, booking_id=booking_id,
                                       patient_id=patient_id, category=category,
                                       author_id=user.id, content=content)
        await _audit(conn, "write", user, note, version=1)
        return note

    async def read(self, conn: asyncpg.Connection, user: Staff, note_id: int) -> NoteView:
        """Decrypt every version of a note the user may read; audited."""
        note = await self._note(conn, note_id)
        facts = await self._check(conn, user, Op.READ, note)
        versions = _visible(await store.versions(conn, self.env, note), facts.author)
        if not versions:
            raise Denied(f"note {note.id} has no signed version yet")
        await _audit(conn, "read", user, note, break_glass=facts.glass and not facts.author
                     and not facts.shared)
        return NoteView(note, True, facts.author and note.erased_at is None, False, versions)

    async def save_draft(self, conn: asyncpg.Connection, user: Staff, note_id: int,
                         content: NoteContent) -> int:
        note = await self._note(conn, note_id)
        await self._check(conn, user, Op.EDIT, note)
        if note.erased_at is not None:
            raise ErasedError(f"note {note.id} was erased")
        version = await store.save_draft(conn, self.env, note, content)
        await _audit(conn, "write", user, note, version=version)
        return version

    async def sign(self, conn: asyncpg.Connection, user: Staff, note_id: int) -> int:
        note = await self._note(conn, note_id)
        await self._check(conn, user, Op.EDIT, note)
        version = await store.sign(conn, note)
        await _audit(conn, "sign", user, note, version=version)
        return version

    async def amend(self, conn: asyncpg.Connection, user: Staff, note_id: int,
                    reason: str) -> int:
        """Open a correcting version of a signed note; ``reason`` is stored encrypted."""
        note = await self._note(conn, note_id)
        await self._check(conn, user, Op.EDIT, note)
        if note.erased_at is not None:
            raise ErasedError(f"note {note.id} was erased")
        if not reason.strip():
            raise InvalidContent({"reason": "required"})
        version = await store.amend(conn, self.env, note, user.id, reason.strip())
        await _audit(conn, "amend", user, note, version=version)
        return version

    async def share(self, conn: asyncpg.Connection, user: Staff, note_id: int,
                    with_staff_id: int) -> None:
        """Share a restricted note with another clinician."""
        note = await self._note(conn, note_id)
        await self._check(conn, user, Op.SHARE, note)
        target = await staff_store.get(conn, with_staff_id)
        if target is None or not target.role.clinical or target.id == user.id:
            raise Denied("notes are shared only with another active clinician")
        await sharing.share(conn, note.id, target.id, user.id)
        await _audit(conn, "share", user, note, with_staff_id=target.id)

    async def refer(self, conn: asyncpg.Connection, user: Staff, patient_id: int,
                    to_staff_id: int) -> None:
        """A clinician caring for the patient refers her to a colleague, who then cares for
        her too (``server.consultations.care``); audited as ``referral``."""
        if not (user.role.clinical and await access.caring_for(conn, user.id, patient_id)):
            raise Denied(f"patient {patient_id}: referral refused")
        target = await staff_store.get(conn, to_staff_id)
        if target is None or not target.role.clinical or target.id == user.id:
            raise Denied("patients are referred only to another active clinician")
        await care.refer(conn, patient_id, target.id, user.id)
        await _audit(conn, "referral", user, None, patient_id, to_staff_id=target.id)

    async def break_glass(self, conn: asyncpg.Connection, user: Staff, note_id: int,
                          reason: str) -> None:
        """Emergency read access to a restricted note: logged, and the author is told."""
        reason = reason.strip()
        if not sharing.MIN_REASON_CHARS <= len(reason) <= sharing.MAX_REASON_CHARS:
            raise InvalidContent({"reason": "10 to 1000 characters"})
        note = await self._note(conn, note_id)
        await self._check(conn, user, Op.BREAK_GLASS, note)
        if not await store.has_signed(conn, note.id):
            raise NoteStateError("only a signed note can be opened by breaking the glass")
        glass_id = await sharing.next_glass_id(conn)
        sealed = self.env.seal(reason.encode(), GlassId(glass_id, note.id, note.patient_id),
                               await store.key_id(conn, self.env, note))
        await sharing.break_glass(conn, glass_id, note.id, user.id, note.author_id, sealed)
        await _audit(conn, "break_glass", user, note, break_glass_id=glass_id,
                     author_id=note.author_id)
        log.warning("break glass", extra={"note_id": note.id, "staff_id": user.id})

    async def notifications(self, conn: asyncpg.Connection | asyncpg.Pool,
                            user: Staff) -> list[sharing.Notification]:
        """What ``user`` must be told about their notes, break-glass reasons opened: they are
        written to the note's author, who may read them. An erased one reads as empty."""
        out = []
        for n in await sharing.notifications(conn, user.id):
            reason = n.legacy_reason or ""
            if n.reason is not None and n.glass_id is not None:
                try:
                    reason = self.env.open(n.reason, GlassId(n.glass_id, n.note_id,
                                                             n.patient_id)).decode()
                except ErasedError:
                    reason = ""
                except RecordsError:
                    log.error("break-glass reason does not open",
                              extra={"break_glass_id": n.glass_id, "note_id": n.note_id})
                    reason = ""
            out.append(sharing.Notification(n.id, n.kind, n.note_id, n.patient_id,
                                            n.actor_name, reason, n.created_at, n.read))
        return out

    async def summary_link(self, conn: asyncpg.Connection, user: Staff, note_id: int) -> str:
        """A token for the patient's link to the summary of the latest signed version."""
        note = await self._note(conn, note_id)
        await self._check(conn, user, Op.SUMMARY_LINK, note)
        signed = [v for v in await store.versions(conn, None, note) if v.signed]
        if not signed or note.erased_at is not None:
            raise NoteStateError("only a signed note's summary can be shared")
        token = await sharing.new_summary_link(conn, note.id, signed[-1].version, user.id)
        await _audit(conn, "share", user, note, version=signed[-1].version, to="patient")
        return token

    async def read_summary(self, conn: asyncpg.Connection, token: str) -> tuple[Note, str] | None:
        """What the patient reads through their link; None when invalid, expired or erased."""
        found = await sharing.summary_link(conn, token)
        if found is None:
            return None
        note = await self._note(conn, found[0])
        if note.erased_at is not None:
            return None
        version = next(v for v in await store.versions(conn, self.env, note)
                       if v.version == found[1])
        await audit.append(conn, action="read", actor_staff_id=None, actor_kind="patient",
                           patient_id=note.patient_id, booking_id=note.booking_id,
                           detail={"note_id": note.id, "version": version.version,
                                   "part": "summary"})
        return note, version.content.summary if version.content else ""

    async def _views(self, conn: asyncpg.Connection, user: Staff,
                     notes: list[Note]) -> list[NoteView]:
        """``notes`` as ``user`` may see them: readable ones decrypted, restricted ones they may
        break the glass on as closed entries, the rest left out."""
        out: list[NoteView] = []
        for note in notes:
            facts = await access.note_facts(conn, user, note.id, note.author_id,
                                            note.patient_id)
            readable = access.allowed(user.role, Op.READ, note.category, facts)
            versions = (_visible(await store.versions(conn, self.env, note), facts.author)
                        if readable else [])
            if versions:
                out.append(NoteView(note, True, facts.author and note.erased_at is None,
                                    False, versions))
            elif access.allowed(user.role, Op.BREAK_GLASS, note.category, facts) \
                    and await store.has_signed(conn, note.id):
                # A draft is its author's alone: breaking the glass on it would open nothing.
                out.append(NoteView(note, False, False, True, []))
        return out

    async def history(self, conn: asyncpg.Connection, user: Staff, patient_id: int,
                      booking_id: int | None = None, *, action: str = "read",
                      fmt: str | None = None) -> list[NoteView]:
        """All the patient's notes (or the consultation's) as ``user`` may see them; audited
        as the notes read, in rows of at most ``AUDIT_IDS_PER_ROW`` ids."""
        notes = (await store.notes_for_booking(conn, booking_id) if booking_id is not None
                 else await store.notes_for_patient(conn, patient_id))
        out = await self._views(conn, user, notes)
        await _audit_read(conn, action, user, patient_id, [v.note.id for v in out if v.readable],
                          booking=booking_id, format=fmt)
        return out

    async def record_page(self, conn: asyncpg.Connection, user: Staff, patient_id: int, *,
                          before: int | None = None, after: int | None = None
                          ) -> tuple[list[NoteView], store.NotePage]:
        """One page of the patient's record (``RECORD_PAGE`` notes, newest first, see
        ``store.notes_page``) as ``user`` may see it; one audit row names the notes read."""
        page = await store.notes_page(conn, patient_id, size=RECORD_PAGE, before=before,
                                      after=after)
        out = await self._views(conn, user, page.notes)
        await _audit_read(conn, "read", user, patient_id,
                          [v.note.id for v in out if v.readable],
                          page_before=before, page_after=after)
        return out, page

    async def erase_note(self, conn: asyncpg.Connection, user: Staff | None, note_id: int,
                         why: str) -> None:
        """Destroy the note's data keys in the database (``why``: 'patient_request' or
        'retention'). Alone this does not hold against a copy of the database: that needs
        the patient's or the day's key destroyed too (``erase_patient``, ``erase_expired``)."""
        note = await self._note(conn, note_id)
        if user is not None and not access.allowed(user.role, Op.ERASE, None, Facts()):
            raise Denied("erase refused")
        await store.erase(conn, note.id)
        await _audit(conn, "erasure", user, note, why=why)

    async def export(self, conn: asyncpg.Connection, user: Staff,
                     patient_id: int, fmt: str) -> list[NoteView]:
        """The notes ``user`` may read, for an export in format ``fmt``; audited as export."""
        caring = user.role.clinical and await access.caring_for(conn, user.id, patient_id)
        if not access.allowed(user.role, Op.EXPORT, None, Facts(caring=caring)):
            raise Denied("export refused")
        views = await self.history(conn, user, patient_id, action="export", fmt=fmt)
        return [v for v in views if v.readable]

    async def erase_patient(self, conn: asyncpg.Connection, user: Staff, patient_id: int,
                            why: str) -> list[int]:
        """Erase every note of a patient (their request); the ids erased. The patient's key
        is marked destroyed: call ``sweep`` after the commit to remove it from the keyring."""
        if not access.allowed(user.role, Op.ERASE, None, Facts()):
            raise Denied("erase refused")
        # The key first: this waits for notes being written with it, which the list below
        # then includes; a note begun after it gets a new key.
        await subkeys.destroy_patient(conn, patient_id)
        ids = [r["id"] for r in await conn.fetch(store.PATIENT_LIVE_NOTES, patient_id)]
        await self._erase_many(conn, user, ids, why)
        # Monitoring readings are wrapped by the same patient key: blanked here, unreadable
        # from any copy once ``sweep`` removes the key from the file.
        gone = await readings.erase_patient(conn, patient_id)
        if gone:
            await _audit(conn, "erasure", user, None, patient_id, why=why, readings=len(gone))
        return ids

    async def sweep(self, pool: asyncpg.Pool) -> int:
        """After an erasure commits: remove its keys from the keyring file (the step that
        makes it hold against copies of the database); how many keys went."""
        async with pool.acquire() as conn:
            return await subkeys.sweep(conn, self.env.ring)

    async def _erase_many(self, conn: asyncpg.Connection, user: Staff | None, ids: list[int],
                          why: str) -> None:
        # Every row lock first, then the audit rows: taking the audit lock between erasures
        # could deadlock with an author autosaving one of these notes.
        notes = [await self._note(conn, note_id) for note_id in ids]
        for note in notes:
            await store.erase(conn, note.id)
        for note in notes:
            await _audit(conn, "erasure", user, note, why=why)

    async def erase_expired(self, conn: asyncpg.Connection, older_than: timedelta) -> int:
        """Retention: erase every note created more than ``older_than`` ago, and mark
        destroyed the keys of the days they were written on (``sweep`` after the commit)."""
        ids = [r["id"] for r in await conn.fetch(store.EXPIRED, older_than)]
        await self._erase_many(conn, None, ids, "retention")
        await subkeys.destroy_expired_days(conn, older_than)
        return len(ids)
