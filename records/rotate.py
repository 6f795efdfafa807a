"""Key rotation and verification over every note version.

Rotation re-wraps data keys only (``wrapped_key`` and ``kek_id``): ciphertext is untouched. It
runs in batches, each its own short transaction that locks its rows with SKIP LOCKED, so the
server keeps writing notes meanwhile; an interrupted run is resumed by re-running with the
same current key, since the work left is exactly the rows still on an old key id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from records.crypto import Envelope, RowId, Sealed
from records.errors import RecordsError
from records.keyring import Keyring

# Held (session-level) by ``casa keys rotate`` for its whole run: one rotation at a time.
ROTATE_LOCK_ID = 0x0CA5A201
# Big enough to amortise round trips, small enough that a batch holds its row locks briefly.
BATCH = 1000
# Running servers re-read the keyring file on their next note operation; after the last
# batch, wait this long and look again so a write that began with the old key is caught.
SETTLE_S = 1.0

REMAINING = "SELECT count(*) FROM note_versions WHERE wrapped_key IS NOT NULL AND kek_id <> $1"
CLAIM = """
SELECT nv.note_id, nv.version, n.patient_id, nv.wrapped_key, nv.kek_id
FROM note_versions nv JOIN notes n ON n.id = nv.note_id
WHERE nv.wrapped_key IS NOT NULL AND nv.kek_id <> $1
LIMIT $2 FOR UPDATE OF nv SKIP LOCKED
"""
# The rows are locked by CLAIM in the same transaction: no writer changed them meanwhile.
APPLY = """
UPDATE note_versions nv SET wrapped_key = u.wrapped, kek_id = $4
FROM unnest($1::bigint[], $2::int[], $3::bytea[]) AS u(note_id, version, wrapped)
WHERE nv.note_id = u.note_id AND nv.version = u.version AND nv.wrapped_key IS NOT NULL
"""

Progress = Callable[[int, int], None]


async def rewrap_all(pool: asyncpg.Pool, ring: Keyring, *, batch: int = BATCH,
                     settle_s: float = SETTLE_S, progress: Progress | None = None) -> int:
    """Re-wrap every data key not under ``ring.current``; returns how many were re-wrapped.
    ``progress(done, total)`` is called after each batch."""
    env = Envelope(ring)
    target = ring.current
    total = int(await pool.fetchval(REMAINING, target))
    done = 0
    settled = False
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM, target, batch)
            if rows:
                ids, versions, wrapped = [], [], []
                for r in rows:
                    new = env.rewrap(Sealed(b"", bytes(r["wrapped_key"]), r["kek_id"]),
                                     RowId(r["note_id"], r["version"], r["patient_id"]), target)
                    ids.append(r["note_id"])
                    versions.append(r["version"])
                    wrapped.append(new.wrapped_key)
                await conn.execute(APPLY, ids, versions, wrapped, target)
        if rows:
            done += len(rows)
            total = max(total, done)
            settled = False
            if progress is not None:
                progress(done, total)
            continue
        left = int(await pool.fetchval(REMAINING, target))
        if left == 0 and settled:
            return done
        if left:
            total = done + left
        # Rows locked by a writer, or a writer that has not re-read the keyring yet.
        await asyncio.sleep(settle_s if left == 0 else 0.05)
        settled = left == 0


@dataclass
class VerifyReport:
    checked: int = 0
    erased: int = 0
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # note, version, why
    by_key: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


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
            report.by_key[r["kek_id"]] = report.by_key.get(r["kek_id"], 0) + 1
            try:
                env.open(Sealed(bytes(r["ciphertext"]), bytes(r["wrapped_key"]), r["kek_id"]),
                         RowId(r["note_id"], r["version"], r["patient_id"]))
            except RecordsError as exc:
                report.failures.append((r["note_id"], r["version"], str(exc)))
        last = (rows[-1]["note_id"], rows[-1]["version"])
        if progress is not None:
            progress(report.checked + report.erased, total)
