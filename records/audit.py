"""The audit log: append-only (the database refuses UPDATE, DELETE and TRUNCATE) and hash-chained.

Each row stores ``prev_hash`` (the previous row's hash, 32 zero bytes for the first) and
``hash = sha256(prev_hash || canonical JSON of the row)``. Appends are serialised by a
transaction-level advisory lock so the chain has no forks. ``verify`` walks the chain and
reports the first broken link: an edited row fails its own hash, a deleted row breaks the
next row's ``prev_hash``.

``detail`` carries ids and kinds only, never clinical content, names or tokens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

# Arbitrary but fixed: every appender in every instance takes the same lock.
AUDIT_LOCK_ID = 0x0CA5A200
GENESIS = bytes(32)
ACTOR_KINDS = ("staff", "patient", "system", "cli")
MAX_DETAIL_BYTES = 4096
# Rows read per round trip while verifying.
VERIFY_BATCH = 5000



@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    action: str
    actor_staff_id: int | None
    actor_kind: str
    patient_id: int | None
    booking_id: int | None
    detail: dict[str, Any]


def canonical(at: datetime, action: str, actor_staff_id: int | None, actor_kind: str,
              patient_id: int | None, booking_id: int | None, detail: dict[str, Any]) -> bytes:
    """The bytes hashed for one row: stable across a round trip through jsonb."""
    body = {"at": at.astimezone(UTC).isoformat(timespec="microseconds"), "action": action,
            "actor_staff_id": actor_staff_id, "actor_kind": actor_kind,
            "patient_id": patient_id, "booking_id": booking_id, "detail": detail}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _check_detail(detail: dict[str, Any]) -> None:
    # Scalars and flat lists of scalars only: they survive jsonb unchanged, so hashes verify;
    # floats are refused because jsonb may print them differently.
    for k, v in detail.items():
        values = v if isinstance(v, list) else [v]
        if not isinstance(k, str) or not all(
                x is None or isinstance(x, str | int | bool) for x in values):
            raise ValueError(f"audit detail {k!r} must be a string, integer, boolean or null")
    if len(json.dumps(detail)) > MAX_DETAIL_BYTES:
        raise ValueError("audit detail too large")


LAST_HASH = "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1"
INSERT = """
INSERT INTO audit_log (at, action, actor_staff_id, actor_kind, patient_id, booking_id, detail,
                       prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
"""


async def append(conn: asyncpg.Connection, *, action: str, actor_staff_id: int | None,
                 actor_kind: str, patient_id: int | None, booking_id: int | None,
                 detail: dict[str, Any]) -> None:
    """Append one row to the audit log, inside the caller's transaction if there is one.

    ``action`` is a short snake_case verb (``read``, ``consultation_join``...); ``actor_kind``
    one of staff, patient, system, cli. ``detail`` holds ids and kinds only (strings, integers,
    booleans, null, or flat lists of them) - never clinical content, names or tokens.
    The append waits for any other append in flight (advisory lock held to commit)."""
    if actor_kind not in ACTOR_KINDS:
        raise ValueError(f"actor_kind must be one of {', '.join(ACTOR_KINDS)}")
    _check_detail(detail)
    at = datetime.now(UTC)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK_ID)
        prev = await conn.fetchval(LAST_HASH) or GENESIS
        row = canonical(at, action, actor_staff_id, actor_kind, patient_id, booking_id, detail)
        digest = hashlib.sha256(prev + row).digest()
        await conn.execute(INSERT, at, action, actor_staff_id, actor_kind, patient_id,
                           booking_id, json.dumps(detail), prev, digest)


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    broken_at: int | None  # id of the first row whose link or hash is wrong
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


WALK = """
SELECT id, at, action, actor_staff_id, actor_kind, patient_id, booking_id, detail::text,
       prev_hash, hash
FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2
"""


async def _walk(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Record]:
    last = 0
    while True:
        rows = await conn.fetch(WALK, last, VERIFY_BATCH)
        if not rows:
            return
        for r in rows:
            yield r
        last = rows[-1]["id"]


async def verify(conn: asyncpg.Connection) -> VerifyResult:
    """Walk the whole chain; stop at the first row that does not link or does not hash."""
    expected_prev = GENESIS
    n = 0
    async for r in _walk(conn):
        n += 1
        if bytes(r["prev_hash"]) != expected_prev:
            return VerifyResult(n, r["id"], "previous-hash link broken (a row before it was "
                                            "deleted, inserted or edited)")
        body = canonical(r["at"], r["action"], r["actor_staff_id"], r["actor_kind"],
                         r["patient_id"], r["booking_id"], json.loads(r["detail"]))
        if hashlib.sha256(expected_prev + body).digest() != bytes(r["hash"]):
            return VerifyResult(n, r["id"], "row content does not match its hash (edited)")
        expected_prev = bytes(r["hash"])
    return VerifyResult(n, None)


SEARCH = """
SELECT id, at, action, actor_staff_id, actor_kind, patient_id, booking_id, detail::text
FROM audit_log
WHERE ($1::bigint IS NULL OR patient_id = $1)
  AND ($2::bigint IS NULL OR actor_staff_id = $2)
  AND ($3::timestamptz IS NULL OR at >= $3)
  AND ($4::timestamptz IS NULL OR at < $4)
  AND ($5::text IS NULL OR action = $5)
ORDER BY id DESC LIMIT $6
"""


async def search(conn: asyncpg.Connection | asyncpg.Pool, *, patient_id: int | None = None,
                 staff_id: int | None = None, since: datetime | None = None,
                 until: datetime | None = None, action: str | None = None,
                 limit: int = 200) -> list[Entry]:
    """Newest first, filtered by patient, acting staff member, time range and action."""
    rows = await conn.fetch(SEARCH, patient_id, staff_id, since, until, action, limit)
    return [Entry(r["id"], r["at"], r["action"], r["actor_staff_id"], r["actor_kind"],
                  r["patient_id"], r["booking_id"], json.loads(r["detail"])) for r in rows]
