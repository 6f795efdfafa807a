"""Key rotation, the move of first-layout rows to patient and day keys, and verification.

Rotating the master key re-seals the patient and day keys in the keyring file under a new
master key: no database row changes, because data keys are wrapped by keys derived from the
patient and day keys (``records.crypto``). Rows of the first layout (data keys wrapped by a
master key directly) and break-glass reasons stored before they were sealed are moved to the
new layout by ``rewrap_all`` and ``seal_reasons``, in batches, each its own short transaction
that locks its rows with SKIP LOCKED, so the server keeps writing meanwhile; an interrupted
run is resumed by running again, since the work left is exactly the rows still in the first
layout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from records import subkeys
from records.crypto import Envelope, GlassId, RowId, Sealed
from records.errors import RecordsError
from records.keyring import Keyring, sealed_under

# Held (session-level) by ``casa keys rotate`` for its whole run: one rotation at a time.
ROTATE_LOCK_ID = 0x0CA5A201
# Big enough to amortise round trips, small enough that a batch holds its row locks briefly.
BATCH = 1000
# A server still running the code of the first layout may write a row with a master key
# after the last batch: wait this long and look again.
SETTLE_S = 1.0

# First-layout rows: their kek_id names a master key, not a patient/day pair.
LEGACY = "nv.wrapped_key IS NOT NULL AND strpos(nv.kek_id, '/') = 0"
REMAINING = f"SELECT count(*) FROM note_versions nv WHERE {LEGACY}"
CLAIM = f"""
SELECT nv.note_id, nv.version, n.patient_id, n.created_at, nv.wrapped_key, nv.kek_id
FROM note_versions nv JOIN notes n ON n.id = nv.note_id
WHERE {LEGACY}
LIMIT $1 FOR UPDATE OF nv SKIP LOCKED
"""
# The rows are locked by CLAIM in the same transaction: no writer changed them meanwhile.
APPLY = """
UPDATE note_versions nv SET wrapped_key = u.wrapped, kek_id = u.kek_id
FROM unnest($1::bigint[], $2::int[], $3::bytea[], $4::text[])
     AS u(note_id, version, wrapped, kek_id)
WHERE nv.note_id = u.note_id AND nv.version = u.version AND nv.wrapped_key IS NOT NULL
"""

Progress = Callable[[int, int], None]


async def rotate_master(conn: asyncpg.Connection, ring: Keyring) -> str:
    """Add a new master key, make it current and re-seal every patient and day key under it
    (one atomic rewrite of the file); the new key id."""
    new: list[str] = []

    def change(r: Keyring) -> None:
        fresh, kid = r.with_new_key()
        r.keys, r.current = fresh.keys, kid
        r.reseal_all()
        new.append(kid)

    async with conn.transaction():
        await subkeys.update_file(conn, ring, change)
    return new[0]


async def rewrap_all(pool: asyncpg.Pool, ring: Keyring, *, batch: int = BATCH,
                     settle_s: float = SETTLE_S, progress: Progress | None = None) -> int:
    """Move every first-layout data key to its note's patient and day keys; how many moved.
    ``progress(done, total)`` is called after each batch."""
    env = Envelope(ring)
    total = int(await pool.fetchval(REMAINING))
    done = 0
    settled = False
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM, batch)
            if rows:
                targets: dict[tuple[int, datetime], str] = {}
                ids, versions, wrapped, keks = [], [], [], []
                for r in rows:
                    at = (r["patient_id"], r["created_at"])
                    if at not in targets:
                        targets[at] = await subkeys.note_key_id(conn, ring, *at)
                    new = env.rewrap(Sealed(b"", bytes(r["wrapped_key"]), r["kek_id"]),
                                     RowId(r["note_id"], r["version"], r["patient_id"]),
                                     targets[at])
                    ids.append(r["note_id"])
                    versions.append(r["version"])
                    wrapped.append(new.wrapped_key)
                    keks.append(new.kek_id)
                await conn.execute(APPLY, ids, versions, wrapped, keks)
        if rows:
            done += len(rows)
            total = max(total, done)
            settled = False
            if progress is not None:
                progress(done, total)
            continue
        left = int(await pool.fetchval(REMAINING))
        if left == 0 and settled:
            return done
        if left:
            total = done + left
        # Rows locked by a writer, or a writer still on the first layout.
        await asyncio.sleep(settle_s if left == 0 else 0.05)
        settled = left == 0


MASTERS_IN_USE = f"SELECT DISTINCT nv.kek_id FROM note_versions nv WHERE {LEGACY}"


async def prune_masters(conn: asyncpg.Connection, ring: Keyring) -> list[str]:
    """Remove from the keyring file every master key that is not current, seals no patient
    or day key and wraps no data key left in the database; the ids removed. What they opened
    in older database backups (data keys wrapped directly by a master key, before migration
    0220) is then unreadable: erasures hold against those backups too."""
    in_use = {r["kek_id"] for r in await conn.fetch(MASTERS_IN_USE)}
    removed: list[str] = []

    def change(r: Keyring) -> None:
        used = in_use | {sealed_under(v) for v in r.sealed.values()} | {r.current}
        for kid in sorted(r.keys.keys() - used):
            del r.keys[kid]
            removed.append(kid)

    async with conn.transaction():
        await subkeys.update_file(conn, ring, change)
    return removed


CLAIM_REASONS = """
SELECT g.id, g.note_id, n.patient_id, n.created_at, g.reason
FROM break_glass g JOIN notes n ON n.id = g.note_id
WHERE g.reason IS NOT NULL LIMIT $1 FOR UPDATE OF g SKIP LOCKED
"""
SEAL_REASON = """
UPDATE break_glass SET reason = NULL, reason_ciphertext = $2, reason_wrapped_key = $3,
                       reason_kek_id = $4
WHERE id = $1
"""


async def seal_reasons(pool: asyncpg.Pool, ring: Keyring, *, batch: int = BATCH) -> int:
    """Seal break-glass reasons stored in plaintext before migration 0220; how many. The old
    plaintext stays in dead tuples and WAL until VACUUM and checkpoints (docs/records.md)."""
    env = Envelope(ring)
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM_REASONS, batch)
            for r in rows:
                kek_id = await subkeys.note_key_id(conn, ring, r["patient_id"], r["created_at"])
                sealed = env.seal(r["reason"].encode(),
                                  GlassId(r["id"], r["note_id"], r["patient_id"]), kek_id)
                await conn.execute(SEAL_REASON, r["id"], sealed.ciphertext,
                                   sealed.wrapped_key, sealed.kek_id)
        if not rows:
            return done
        done += len(rows)


@dataclass
class VerifyReport:
    checked: int = 0
    erased: int = 0
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # note, version, why
    # Patient and day keys are counted together ("patient+day"); first-layout rows by the
    # master key that wraps them.
    by_key: dict[str, int] = field(default_factory=dict)
    reasons: int = 0  # sealed break-glass reasons that open
    reason_failures: list[tuple[int, str]] = field(default_factory=list)  # break-glass, why
    pending: int = 0  # keys marked destroyed still in the keyring file

    @property
    def ok(self) -> bool:
        return not self.failures and not self.reason_failures and not self.pending


WALK = """
SELECT nv.note_id, nv.version, n.patient_id, nv.ciphertext, nv.wrapped_key, nv.kek_id
FROM note_versions nv JOIN notes n ON n.id = nv.note_id
WHERE (nv.note_id, nv.version) > ($1, $2) ORDER BY nv.note_id, nv.version LIMIT $3
"""


async def verify_all(pool: asyncpg.Pool, ring: Keyring, *, batch: int = BATCH,
                     progress: Progress | None = None) -> VerifyReport:
    """Decrypt every note version that is not erased; report each one that fails and why."""
    env = Envelope(ring)
    report = VerifyReport()
    total = int(await pool.fetchval("SELECT count(*) FROM note_versions"))
    last = (0, 0)
    while True:
        rows = await pool.fetch(WALK, last[0], last[1], batch)
        if not rows:
            return report
        for r in rows:
            if r["wrapped_key"] is None:
                report.erased += 1
                continue
            report.checked += 1
            label = "patient+day" if "/" in r["kek_id"] else r["kek_id"]
            report.by_key[label] = report.by_key.get(label, 0) + 1
            try:
                env.open(Sealed(bytes(r["ciphertext"]), bytes(r["wrapped_key"]), r["kek_id"]),
                         RowId(r["note_id"], r["version"], r["patient_id"]))
            except RecordsError as exc:
                report.failures.append((r["note_id"], r["version"], str(exc)))
        last = (rows[-1]["note_id"], rows[-1]["version"])
        if progress is not None:
            progress(report.checked + report.erased, total)


REASONS = """
SELECT g.id, g.note_id, n.patient_id, g.reason_ciphertext, g.reason_wrapped_key,
       g.reason_kek_id
FROM break_glass g JOIN notes n ON n.id = g.note_id
WHERE g.reason_wrapped_key IS NOT NULL AND g.id > $1 ORDER BY g.id LIMIT $2
"""


async def verify_reasons(pool: asyncpg.Pool, ring: Keyring, report: VerifyReport, *,
                         batch: int = BATCH) -> None:
    """Open every sealed break-glass reason, and count destroyed keys left in the file."""
    env = Envelope(ring)
    last = 0
    while rows := await pool.fetch(REASONS, last, batch):
        for r in rows:
            try:
                env.open(Sealed(bytes(r["reason_ciphertext"]), bytes(r["reason_wrapped_key"]),
                                r["reason_kek_id"]), GlassId(r["id"], r["note_id"],
                                                             r["patient_id"]))
                report.reasons += 1
            except RecordsError as exc:
                report.reason_failures.append((r["id"], str(exc)))
        last = rows[-1]["id"]
    report.pending = await subkeys.pending(pool, ring)
