"""Patient keys and day keys: made on first use, destroyed by erasure, kept only in the keyring.

Every note's data keys (and its break-glass reasons') are wrapped by a key derived from the
patient's key and the key of the note's UTC creation day (``records.crypto``). Both live only
in the keyring file, sealed under its master key; the table ``record_keys`` holds their ids
and whether they were destroyed, never key material.

- A patient's erasure marks the patient's key destroyed, then (after the commit) ``sweep``
  removes it from the file: every version, draft and break-glass reason of that patient, in
  the database, its WAL and every backup of it, can no longer be unwrapped.
- Retention marks destroyed every day key older than the retention cutoff once no live row
  uses it: old notes go, the patient's newer notes (other days) live on.

Use and destruction are serialised by the database: a writer reads its keys ``FOR SHARE``
(day keys only when retention could destroy them), so an erasure's UPDATE waits for it, and a
writer that comes after sees the key destroyed and makes a new one. Every change of the file
happens under one advisory lock, on a copy read afresh from the file, so no instance writes
back a key that another one destroyed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg

from records import keyring
from records.crypto import pair_key_id
from records.errors import ErasedError
from records.keyring import KEY_BYTES, Keyring

# Held (transaction-level) by every change of the keyring file, on every instance. A writer
# that creates a key holds it until its note commits, so a sweep never sees its key as
# unknown to the database.
KEYRING_LOCK_ID = 0x0CA5A202
LOCK = "SELECT pg_advisory_xact_lock($1)"

PATIENT_KEY = """
SELECT id FROM record_keys WHERE patient_id = $1 AND destroyed_at IS NULL FOR SHARE
"""
DAY_KEY = "SELECT id, destroyed_at FROM record_keys WHERE day = $1"
# Only a day that retention may destroy is locked against it: retention keeps at least one
# whole day (--older-than-days >= 1), so today's and yesterday's keys are never destroyed.
# Skipping the lock there spares every note written today a share lock on one row, which
# many concurrent writers would turn into MultiXact churn.
DAY_KEY_LOCKED = DAY_KEY + " FOR SHARE"
UNLOCKED_DAYS = timedelta(days=1)
INSERT_PATIENT_KEY = "INSERT INTO record_keys (id, patient_id) VALUES ($1, $2)"
INSERT_DAY_KEY = "INSERT INTO record_keys (id, day) VALUES ($1, $2)"


def note_day(created_at: datetime) -> date:
    """The day whose key a note's data keys are wrapped with: its UTC creation day."""
    return created_at.astimezone(UTC).date()


async def note_key_id(conn: asyncpg.Connection, ring: Keyring, patient_id: int,
                      created_at: datetime) -> str:
    """The ``kek_id`` for a new data key of a note of ``patient_id`` created at
    ``created_at``, making the patient's or the day's key if there is none yet. Call it in
    the transaction that writes the row: the keys stay locked against erasure until commit."""
    return pair_key_id(await _patient_key(conn, ring, patient_id),
                       await _day_key(conn, ring, note_day(created_at)))


async def patient_key_id(conn: asyncpg.Connection, ring: Keyring, patient_id: int) -> str:
    """The id of the patient's live key, made if there is none yet (monitoring readings are
    wrapped by it alone, ``records.readings``). In the writing transaction, as ``note_key_id``."""
    return await _patient_key(conn, ring, patient_id)


async def _patient_key(conn: asyncpg.Connection, ring: Keyring, patient_id: int) -> str:
    found: str | None = await conn.fetchval(PATIENT_KEY, patient_id)
    if found is not None:
        return found
    await conn.execute(LOCK, KEYRING_LOCK_ID)
    found = await conn.fetchval(PATIENT_KEY, patient_id)  # made while we waited?
    if found is not None:
        return found
    kid = f"p{patient_id}-{secrets.token_hex(6)}"
    await _add(conn, ring, kid)
    await conn.execute(INSERT_PATIENT_KEY, kid, patient_id)
    return kid


async def _day_key(conn: asyncpg.Connection, ring: Keyring, day: date) -> str:
    recent = day >= datetime.now(UTC).date() - UNLOCKED_DAYS
    query = DAY_KEY if recent else DAY_KEY_LOCKED
    r = await conn.fetchrow(query, day)
    if r is None:
        await conn.execute(LOCK, KEYRING_LOCK_ID)
        r = await conn.fetchrow(query, day)
    if r is None:
        kid = f"d{day:%Y%m%d}-{secrets.token_hex(6)}"
        await _add(conn, ring, kid)
        await conn.execute(INSERT_DAY_KEY, kid, day)
        return kid
    if r["destroyed_at"] is not None:
        raise ErasedError(f"the key of {day} was destroyed by retention")
    return str(r["id"])


async def _add(conn: asyncpg.Connection, ring: Keyring, kid: str) -> None:
    key = secrets.token_bytes(KEY_BYTES)
    await update_file(conn, ring, lambda r: r.add_sealed(kid, key))


async def update_file(conn: asyncpg.Connection, ring: Keyring,
                      change: Callable[[Keyring], object]) -> None:
    """Apply ``change`` to the keyring file as it is now (read under the lock, never the copy
    in memory), write it atomically and take it into ``ring``. Inside a transaction."""
    await conn.execute(LOCK, KEYRING_LOCK_ID)
    path = ring.path
    if path is None:  # a keyring without a file (tools, tests): memory is all there is
        change(ring)
        return

    def rewrite() -> Keyring:
        fresh = keyring.load(path)
        change(fresh)
        keyring.save(fresh, path)
        return fresh

    ring.adopt(await asyncio.to_thread(rewrite))


DESTROY_PATIENT = """
UPDATE record_keys SET destroyed_at = now()
WHERE patient_id = $1 AND destroyed_at IS NULL RETURNING id
"""


async def destroy_patient(conn: asyncpg.Connection, patient_id: int) -> list[str]:
    """Mark the patient's keys destroyed (waits for notes being written with them); the file
    loses them in ``sweep``, after the commit."""
    return [r["id"] for r in await conn.fetch(DESTROY_PATIENT, patient_id)]


# A day strictly before the cutoff's UTC day holds only notes older than the cutoff (all
# erased by the same retention run); a row still using the key keeps it (checked, not assumed).
DESTROY_DAYS = """
UPDATE record_keys k SET destroyed_at = now()
WHERE k.day < ((now() - $1::interval) AT TIME ZONE 'UTC')::date AND k.destroyed_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM note_versions v WHERE v.wrapped_key IS NOT NULL
                  AND v.kek_id LIKE '%/' || k.id)
  AND NOT EXISTS (SELECT 1 FROM break_glass g WHERE g.reason_wrapped_key IS NOT NULL
                  AND g.reason_kek_id LIKE '%/' || k.id)
RETURNING id
"""


async def destroy_expired_days(conn: asyncpg.Connection, older_than: timedelta) -> list[str]:
    """Retention: mark destroyed the keys of days wholly older than ``older_than``."""
    if older_than < UNLOCKED_DAYS:
        raise ValueError("retention keeps at least one day")  # see UNLOCKED_DAYS
    return [r["id"] for r in await conn.fetch(DESTROY_DAYS, older_than)]


DESTROYED = "SELECT id FROM record_keys WHERE destroyed_at IS NOT NULL"
LIVE = "SELECT id FROM record_keys WHERE destroyed_at IS NULL"


def _doomed(ring: Keyring, destroyed: set[str], live: set[str]) -> set[str]:
    # Also a patient key the database never recorded (its note rolled back) of an erased
    # patient: it may still open that note's draft in the WAL.
    erased_patients = {d.split("-")[0] for d in destroyed if d.startswith("p")}
    return (destroyed | {e for e in ring.sealed if e.split("-")[0] in erased_patients
                         and e not in live}) & ring.sealed.keys()


async def sweep(conn: asyncpg.Connection, ring: Keyring) -> int:
    """Remove from the keyring file every key the database marks destroyed; how many were
    removed. Run after every erasure's commit; at start-up and by ``casa keys rotate`` and
    ``casa records erase-expired`` too, so an erasure interrupted after its commit finishes.
    Only keys the database names as destroyed go: a keyring pointed at the wrong database
    loses nothing."""
    async with conn.transaction():
        await conn.execute(LOCK, KEYRING_LOCK_ID)
        destroyed = {r["id"] for r in await conn.fetch(DESTROYED)}
        live = {r["id"] for r in await conn.fetch(LIVE)}
        ring.refresh()
        if not _doomed(ring, destroyed, live):
            return 0
        removed: set[str] = set()
        await update_file(conn, ring, lambda r: removed.update(
            r.remove_sealed(_doomed(r, destroyed, live))))
        return len(removed)


async def pending(conn: asyncpg.Connection | asyncpg.Pool, ring: Keyring) -> int:
    """How many keys the database marks destroyed are still in the keyring file."""
    destroyed = {r["id"] for r in await conn.fetch(DESTROYED)}
    live = {r["id"] for r in await conn.fetch(LIVE)}
    ring.refresh()
    return len(_doomed(ring, destroyed, live))
