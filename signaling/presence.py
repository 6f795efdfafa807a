"""Who is where in a consultation, in PostgreSQL (tables of migration 0300; the relay table's
SQL is in ``signaling.relaystore``).

A person's row outlives their socket: while its instance beats, or for ``GRACE_S`` after the
socket dropped (or the instance died), the person keeps their place (waiting or in the call).
Every instance reads the same rows, so the waiting room is right everywhere and survives a
restart."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from signaling.states import Place, Role

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"

# A reload or a network switch takes a few seconds; 30 s covers a server restart too.
GRACE_S = 30.0
# An instance that has not beaten for this long is dead; its sockets count as dropped.
INSTANCE_DEAD_S = 5.0

# The row's place is kept: its socket is on a live instance, or it dropped within GRACE_S.
_KEPT = f"""(p.status <> 'left' AND (
    (p.instance_id IS NOT NULL
     AND i.heartbeat_at > now() - make_interval(secs => {INSTANCE_DEAD_S}))
    OR greatest(p.last_seen_at, i.heartbeat_at) > now() - make_interval(secs => {GRACE_S})))
"""
_CONNECTED = ("(p.instance_id IS NOT NULL AND i.heartbeat_at > now() - "
              f"make_interval(secs => {INSTANCE_DEAD_S}))")


@dataclass(frozen=True)
class Member:
    peer_id: str
    participant: str
    role: Role
    status: Place
    instance_id: str | None   # None while disconnected
    arrived_at: datetime
    detail: dict[str, Any]
    # The row's version: every write raises it, so the newest of two views of a member wins.
    version: int = 0

    @property
    def staff_id(self) -> int | None:
        return int(self.participant[6:]) if self.participant.startswith("staff:") else None


@dataclass(frozen=True)
class Arrival:
    member: Member
    resumed: bool                  # the place was kept: same status as before the drop
    previous_instance: str | None  # where the replaced socket lives, if still connected


HEARTBEAT = """
INSERT INTO signaling_instances (id) VALUES ($1)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
"""


async def heartbeat(conn: Conn, instance_id: str) -> None:
    await conn.execute(HEARTBEAT, instance_id)


# One instance takes the dead ones' rows (DELETE is atomic), so each drop is announced once.
REAP_DEAD = f"""
WITH dead AS (
    DELETE FROM signaling_instances
    WHERE heartbeat_at < now() - make_interval(secs => {INSTANCE_DEAD_S}) RETURNING id, heartbeat_at
)
UPDATE signaling_participants p SET instance_id = NULL, last_seen_at = d.heartbeat_at,
    version = p.version + 1
FROM dead d WHERE p.instance_id = d.id
RETURNING p.consultation_id, p.peer_id
"""


async def reap_dead_instances(conn: Conn) -> list[tuple[int, str]]:
    """Mark the sockets of dead instances as dropped; returns (consultation, peer) pairs."""
    return [(r["consultation_id"], r["peer_id"]) for r in await conn.fetch(REAP_DEAD)]


DROP_INSTANCE = """
UPDATE signaling_participants SET instance_id = NULL, last_seen_at = now(),
    version = version + 1
WHERE instance_id = $1
"""
DEREGISTER = "DELETE FROM signaling_instances WHERE id = $1"


async def deregister(conn: Conn, instance_id: str) -> None:
    """A clean shutdown: this instance's sockets dropped now (their places are kept)."""
    await conn.execute(DROP_INSTANCE, instance_id)
    await conn.execute(DEREGISTER, instance_id)


SELECT_FOR_ARRIVAL = f"""
SELECT p.peer_id, p.status, p.instance_id, {_KEPT} AS kept, {_CONNECTED} AS connected
FROM signaling_participants p LEFT JOIN signaling_instances i ON i.id = p.instance_id
WHERE p.consultation_id = $1 AND p.participant = $2
FOR UPDATE OF p
"""
UPSERT = """
INSERT INTO signaling_participants AS p
    (consultation_id, participant, peer_id, role, status, instance_id, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (consultation_id, participant) DO UPDATE SET
    status = EXCLUDED.status, instance_id = EXCLUDED.instance_id, role = EXCLUDED.role,
    arrived_at = CASE WHEN $8 THEN p.arrived_at ELSE now() END,
    last_seen_at = now(),
    -- A resumed place keeps what was said meanwhile (the answer to "safe to talk?").
    detail = CASE WHEN $8 THEN p.detail || EXCLUDED.detail ELSE EXCLUDED.detail END,
    version = p.version + 1
RETURNING peer_id, participant, role, status, instance_id, arrived_at, detail, version
"""


def new_peer_id() -> str:
    return "p_" + secrets.token_urlsafe(12)


async def arrive(conn: asyncpg.Connection, consultation_id: int, participant: str, role: Role,
                 instance_id: str, detail: dict[str, Any], *, waits: bool = False) -> Arrival:
    """Register a socket for this person (in the caller's transaction). A patient whose place
    was kept resumes it; one arriving fresh waits. Staff are always in the call; guests too,
    unless ``waits`` (a sensitive consultation: they are admitted like the patient)."""
    old = await conn.fetchrow(SELECT_FOR_ARRIVAL, consultation_id, participant)
    resumed = bool(old and old["kept"])
    status = Place.WAITING if role == Role.PATIENT or (waits and role == Role.GUEST) \
        else Place.IN_CALL
    if resumed and old is not None:
        status = Place(old["status"])
    previous = old["instance_id"] if old is not None and old["connected"] else None
    r = await conn.fetchrow(UPSERT, consultation_id, participant,
                            old["peer_id"] if old else new_peer_id(), role, status, instance_id,
                            json.dumps(detail), resumed)
    return Arrival(_member(r), resumed, previous)


def _member(r: asyncpg.Record) -> Member:
    detail = r["detail"]
    return Member(r["peer_id"], r["participant"], Role(r["role"]), Place(r["status"]),
                  r["instance_id"], r["arrived_at"],
                  json.loads(detail) if isinstance(detail, str) else detail, r["version"])


MEMBERS = f"""
SELECT p.peer_id, p.participant, p.role, p.status,
       CASE WHEN {_CONNECTED} THEN p.instance_id END AS instance_id, p.arrived_at, p.detail,
       p.version, {_KEPT} AS kept
FROM signaling_participants p LEFT JOIN signaling_instances i ON i.id = p.instance_id
WHERE p.consultation_id = $1
ORDER BY p.arrived_at, p.peer_id
"""


async def members(conn: Conn, consultation_id: int) -> list[tuple[Member, bool]]:
    """Everyone who came to the consultation, and whether they hold a place (connected or
    within the grace)."""
    return [(_member(r), bool(r["kept"])) for r in await conn.fetch(MEMBERS, consultation_id)]


PATIENT_ROWS = f"""
SELECT p.consultation_id, p.peer_id, p.participant, p.role, p.status,
       CASE WHEN {_CONNECTED} THEN p.instance_id END AS instance_id, p.arrived_at, p.detail,
       p.version, {_KEPT} AS kept
FROM signaling_participants p LEFT JOIN signaling_instances i ON i.id = p.instance_id
WHERE p.consultation_id = ANY($1::bigint[]) AND p.participant = 'patient'
"""


async def patients(conn: Conn, consultation_ids: list[int]) -> dict[int, tuple[Member, bool]]:
    """Each consultation's patient row, whatever its state, and whether their place is kept
    (False: they left, or did not come back within the grace). None before they first came."""
    rows = await conn.fetch(PATIENT_ROWS, consultation_ids)
    return {r["consultation_id"]: (_member(r), bool(r["kept"])) for r in rows}


GUEST_LABEL = "SELECT detail->>'label' FROM signaling_participants WHERE peer_id = $1"


async def guest_label(conn: Conn, peer_id: str) -> str:
    """A guest's label (free text: it never travels on the bus)."""
    value: str | None = await conn.fetchval(GUEST_LABEL, peer_id)
    return value or ""


# What a write hands back: the row as it now is, so the caller announces the database's truth
# (with its version), not its own guess.
_ROW = "peer_id, participant, role, status, instance_id, arrived_at, detail, version"

DROP = f"""
UPDATE signaling_participants SET instance_id = NULL, last_seen_at = now(), version = version + 1
WHERE peer_id = $1 AND instance_id = $2 RETURNING {_ROW}
"""


async def drop(conn: Conn, peer_id: str, instance_id: str) -> Member | None:
    """The socket on this instance closed; None when it had already been replaced."""
    r = await conn.fetchrow(DROP, peer_id, instance_id)
    return _member(r) if r is not None else None


LEAVE = f"""
UPDATE signaling_participants SET status = 'left', instance_id = NULL, last_seen_at = now(),
    version = version + 1
WHERE peer_id = $1 AND status <> 'left' RETURNING {_ROW}
"""


async def leave(conn: Conn, peer_id: str) -> Member | None:
    r = await conn.fetchrow(LEAVE, peer_id)
    return _member(r) if r is not None else None


EXPIRE = f"""
UPDATE signaling_participants SET status = 'left', version = version + 1
WHERE peer_id = $1 AND status <> 'left' AND instance_id IS NULL
  AND last_seen_at <= now() - make_interval(secs => $2)
RETURNING {_ROW}
"""


async def expire(conn: Conn, peer_id: str, grace_s: float = GRACE_S) -> Member | None:
    """After the grace: the person has left (None if they came back meanwhile)."""
    r = await conn.fetchrow(EXPIRE, peer_id, grace_s - 0.05)
    return _member(r) if r is not None else None


SET_STATUS = f"""
UPDATE signaling_participants SET status = $4, arrived_at = now(), version = version + 1
WHERE consultation_id = $1 AND peer_id = $2 AND status = $3 AND role IN ('patient', 'guest')
RETURNING {_ROW}
"""


async def move_patient(conn: Conn, consultation_id: int, peer_id: str, from_status: Place,
                       to_status: Place) -> Member | None:
    """Admit (waiting -> in_call) or send back (in_call -> waiting) a patient or a waiting
    guest; None if not in from."""
    r = await conn.fetchrow(SET_STATUS, consultation_id, peer_id, from_status, to_status)
    return _member(r) if r is not None else None


SET_NURSE_PRESENT = f"""
UPDATE signaling_participants
SET detail = jsonb_set(detail, '{{nurse_present}}', to_jsonb($2::boolean)), version = version + 1
WHERE consultation_id = $1 AND participant = 'patient' AND status <> 'left'
  AND (detail->'nurse_present') IS DISTINCT FROM to_jsonb($2::boolean)
RETURNING {_ROW}
"""


SET_DETAIL = f"""
UPDATE signaling_participants SET detail = detail || $3::jsonb, version = version + 1
WHERE consultation_id = $1 AND peer_id = $2 AND status <> 'left'
RETURNING {_ROW}
"""


async def set_nurse_present(conn: Conn, consultation_id: int, present: bool) -> Member | None:
    """The patient's waiting entry says (or no longer says) that a nurse is with her; None
    when the patient holds no place or the entry already says so."""
    r = await conn.fetchrow(SET_NURSE_PRESENT, consultation_id, present)
    return _member(r) if r is not None else None


async def set_detail(conn: Conn, consultation_id: int, peer_id: str,
                     values: dict[str, Any]) -> Member | None:
    """Merge ``values`` into a present member's detail (``safe``); None if they left."""
    r = await conn.fetchrow(SET_DETAIL, consultation_id, peer_id, json.dumps(values))
    return _member(r) if r is not None else None


END_ALL = """
UPDATE signaling_participants SET status = 'left', instance_id = NULL, last_seen_at = now(),
    version = version + 1
WHERE consultation_id = $1 AND status <> 'left'
"""


async def end_all(conn: Conn, consultation_id: int) -> None:
    await conn.execute(END_ALL, consultation_id)


# --- guests (one-off links for an interpreter without an account) ---

INSERT_GUEST = """
INSERT INTO signaling_guests (consultation_id, token_hash, label, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5) RETURNING id
"""
GUEST_PREFIX = "g_"


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_guest(conn: Conn, consultation_id: int, staff_id: int, label: str | None,
                       expires_at: datetime) -> tuple[str, int]:
    """A new guest token (returned once, stored only as its hash) and the link's id."""
    token = GUEST_PREFIX + secrets.token_urlsafe(32)
    guest_id = await conn.fetchval(INSERT_GUEST, consultation_id, _hash(token), label, staff_id,
                                   expires_at)
    return token, int(guest_id)


RESOLVE_GUEST = """
SELECT id, consultation_id, label FROM signaling_guests
WHERE token_hash = $1 AND expires_at > now() AND revoked_at IS NULL
"""


async def resolve_guest(conn: Conn, token: str) -> tuple[int, int, str | None] | None:
    """(guest id, consultation id, label) for a live guest token."""
    r = await conn.fetchrow(RESOLVE_GUEST, _hash(token))
    return (r["id"], r["consultation_id"], r["label"]) if r else None


REVOKE_GUEST = """
UPDATE signaling_guests SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1 AND consultation_id = $2 RETURNING id
"""


async def revoke_guest(conn: Conn, guest_id: int, consultation_id: int) -> bool:
    """Revoke a guest link of this consultation; False when it is no link of it."""
    return await conn.fetchval(REVOKE_GUEST, guest_id, consultation_id) is not None
