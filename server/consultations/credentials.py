"""Patient credentials: the invitation link token, the 6-digit code, the patient session.

All three are stored only as hashes. Link and session tokens carry 256 random bits, so a plain
SHA-256 is enough; a six-digit code is easy to reverse from its SHA-256, so it is stored as an
HMAC under the server's secret key. A code opens nothing alone: it must come with the patient's
date of birth, wrong attempts are counted per code (the code is revoked after a few) and per
client address (in the foundation's ``login_throttle`` table, so every instance sees them).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from server.auth import throttle
from server.auth.throttle import Rule
from server.consultations import status, store
from server.consultations.store import Consultation, hash_credential

log = logging.getLogger("casa.consultations.credentials")

# The patient session's cookie: set when a link or code opens (bookings' join pages), read by
# the call page, the WebSocket and the pre-call check.
PATIENT_COOKIE = "casa_patient"

CODE_DIGITS = 6
# Six digits give a million codes; at ten wrong tries per address per quarter hour, guessing a
# live code together with its owner's date of birth is hopeless.
MAX_FAILURES_PER_IP = 10
FAILURE_WINDOW = timedelta(minutes=15)
# A known code with a wrong date of birth this many times is someone else trying: revoke it.
MAX_FAILURES_PER_CODE = 5
# Codes collide now and then; retries pick another.
CODE_RETRIES = 20


def code_hash(secret_key: str, code: str) -> bytes:
    return hmac.new(secret_key.encode(), b"casa-join-code:" + code.encode(),
                    hashlib.sha256).digest()


INSERT = """
INSERT INTO patient_credentials (consultation_id, kind, token_hash, valid_from, valid_until)
VALUES ($1, $2, $3, $4, $5)
"""
REVOKE = """
UPDATE patient_credentials SET revoked_at = now()
WHERE consultation_id = $1 AND kind = ANY($2::text[]) AND revoked_at IS NULL
"""


async def _window(conn: asyncpg.Connection, which: int | Consultation) -> Consultation:
    if isinstance(which, Consultation):
        return which
    c = await store.get(conn, which)
    if c is None:
        raise LookupError(f"no consultation {which}")
    return c


async def issue_link(conn: asyncpg.Connection, consultation: int | Consultation) -> str:
    """A new invitation link token, valid for the consultation's join window."""
    c = await _window(conn, consultation)
    token = secrets.token_urlsafe(32)
    await conn.execute(INSERT, c.id, "link", hash_credential(token), c.join_opens_at,
                       c.join_closes_at)
    return token


async def issue_code(conn: asyncpg.Connection, secret_key: str,
                     consultation: int | Consultation) -> str:
    """A new 6-digit code, unique among codes whose windows overlap (the database checks)."""
    c = await _window(conn, consultation)
    for _ in range(CODE_RETRIES):
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        try:
            async with conn.transaction():
                await conn.execute(INSERT, c.id, "code", code_hash(secret_key, code),
                                   c.join_opens_at, c.join_closes_at)
            return code
        except asyncpg.ExclusionViolationError:
            continue
    raise RuntimeError("could not find a free join code")


# A new consultation's link and code in one statement. ON CONFLICT DO NOTHING: a code that
# collides with a live one (the exclusion constraint) is skipped, not raised, and retried alone.
INSERT_LINK_AND_CODE = """
INSERT INTO patient_credentials (consultation_id, kind, token_hash, valid_from, valid_until)
VALUES ($1, 'link', $2, $4, $5), ($1, 'code', $3, $4, $5)
ON CONFLICT DO NOTHING RETURNING kind
"""
INSERT_CODE_OR_NOTHING = INSERT.rstrip() + " ON CONFLICT DO NOTHING RETURNING kind"


async def issue_link_and_code(conn: asyncpg.Connection, secret_key: str, consultation_id: int,
                              valid_from: datetime, valid_until: datetime) -> tuple[str, str]:
    """A brand-new consultation's link token and 6-digit code, in one round trip when the
    code does not collide (nearly always)."""
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    kinds = {r["kind"] for r in await conn.fetch(
        INSERT_LINK_AND_CODE, consultation_id, hash_credential(token),
        code_hash(secret_key, code), valid_from, valid_until)}
    if "link" not in kinds:
        raise RuntimeError("link token collision")  # 256 random bits: never
    for _ in range(CODE_RETRIES):
        if "code" in kinds:
            return token, code
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        kinds = {r["kind"] for r in await conn.fetch(
            INSERT_CODE_OR_NOTHING, consultation_id, "code", code_hash(secret_key, code),
            valid_from, valid_until)}
    raise RuntimeError("could not find a free join code")


async def issue_session(conn: asyncpg.Connection, consultation_id: int, now: datetime) -> str:
    """A patient session token (the ``casa_patient`` cookie) valid until the window closes (or
    later, for a consultation under way: ``Consultation.open_until``)."""
    c = await _window(conn, consultation_id)
    token = secrets.token_urlsafe(32)
    until = max(c.open_until(), now + timedelta(minutes=1))
    await conn.execute(INSERT, consultation_id, "session", hash_credential(token), now, until)
    return token


async def revoke(conn: asyncpg.Connection, consultation_id: int,
                 kinds: tuple[str, ...] = ("link", "code", "session")) -> None:
    """Revoke a consultation's credentials (cancellation, reschedule)."""
    await conn.execute(REVOKE, consultation_id, list(kinds))


@dataclass(frozen=True)
class JoinResult:
    """``outcome`` is 'ok', 'too_early', 'expired', 'cancelled', 'unknown', 'rate_limited' or
    'moved' (a link of a booking since moved: ``moved_link``; it opens nothing)."""

    outcome: str
    consultation: Consultation | None = None
    retry_after: int = 0


def judge(c: Consultation, now: datetime) -> str:
    """Whether a credential's consultation can be entered ``now``."""
    if c.booking_status in status.CALLED_OFF:
        return "cancelled"
    if now < c.join_opens_at:
        return "too_early"
    if c.state == "ended" or not c.open_at(now):
        return "expired"
    return "ok"


LINK = """
SELECT consultation_id FROM patient_credentials
WHERE token_hash = $1 AND kind = 'link' AND revoked_at IS NULL
"""
TOUCH = "UPDATE patient_credentials SET last_used_at = now() WHERE token_hash = $1"


async def open_link(conn: asyncpg.Connection, token: str, now: datetime) -> JoinResult:
    """Check an invitation link token. It keeps working, for rejoining, all through the window."""
    if not token or len(token) > store.MAX_CREDENTIAL_CHARS:
        return JoinResult("unknown")
    cid = await conn.fetchval(LINK, hash_credential(token))
    c = await store.get(conn, cid) if cid is not None else None
    if c is None:
        return JoinResult("unknown")
    await conn.execute(TOUCH, hash_credential(token))
    return JoinResult(judge(c, now), c)


# A link revoked while its window was not the consultation's present one: it was revoked by a
# reschedule (which moves the window and issues a new link), not by a cancellation or a resend.
MOVED_LINK = """
SELECT pc.consultation_id FROM patient_credentials pc
JOIN consultations c ON c.id = pc.consultation_id
WHERE pc.token_hash = $1 AND pc.kind = 'link' AND pc.revoked_at IS NOT NULL
  AND (pc.valid_from, pc.valid_until) IS DISTINCT FROM (c.join_opens_at, c.join_closes_at)
"""


async def moved_link(conn: asyncpg.Connection, token: str, now: datetime) -> JoinResult | None:
    """An invitation link of a booking that was moved since (rescheduling revokes it): 'moved'
    with the consultation, so the page can say when it is now; 'cancelled' or 'expired' when
    that is what became of the new time. It grants nothing. None for any other token."""
    if not token or len(token) > store.MAX_CREDENTIAL_CHARS:
        return None
    cid = await conn.fetchval(MOVED_LINK, hash_credential(token))
    c = await store.get(conn, cid) if cid is not None else None
    if c is None:
        return None
    outcome = judge(c, now)
    return JoinResult(outcome if outcome in ("cancelled", "expired") else "moved", c)


# Join-code attempts per client address, counted atomically before the code is looked up.
JOIN_IP = Rule("join", window=FAILURE_WINDOW, limit=MAX_FAILURES_PER_IP)
# Claims one attempt on a live code before its date of birth is compared: the row lock makes
# parallel guesses at a known code queue, so no more than MAX_FAILURES_PER_CODE are compared.
CLAIM_CODE = """
WITH live AS (
    SELECT id FROM patient_credentials
    WHERE kind = 'code' AND token_hash = $1 AND revoked_at IS NULL AND valid_until > $2
    ORDER BY valid_from LIMIT 1
    FOR UPDATE
)
UPDATE patient_credentials pc SET failed_attempts = pc.failed_attempts + 1
FROM live
WHERE pc.id = live.id AND pc.failed_attempts < $3 AND pc.revoked_at IS NULL
RETURNING pc.id, pc.consultation_id, pc.failed_attempts
"""
DATE_OF_BIRTH = """
SELECT p.date_of_birth FROM consultations c
JOIN bookings b ON b.id = c.booking_id
JOIN patients p ON p.id = b.patient_id
WHERE c.id = $1
"""
# A right date of birth gives its claimed attempt back.
CODE_USED = """
UPDATE patient_credentials SET failed_attempts = greatest(failed_attempts - 1, 0),
    last_used_at = now()
WHERE id = $1
"""
REVOKE_GUESSED = "UPDATE patient_credentials SET revoked_at = now() WHERE id = $1"


async def check_code(conn: asyncpg.Connection, secret_key: str, code: str, date_of_birth: date,
                     ip: str, now: datetime) -> JoinResult:
    """Check a 6-digit code with the patient's date of birth. The attempt is counted on the
    address, and on the code when it is a live one, before anything is compared."""
    refused = await throttle.reserve(conn, [(JOIN_IP, ip)], now)
    if refused is not None:
        return JoinResult("rate_limited", retry_after=refused.retry_after)
    digits = "".join(ch for ch in code if ch.isdigit())
    found = None
    if len(digits) == CODE_DIGITS:
        found = await conn.fetchrow(CLAIM_CODE, code_hash(secret_key, digits), now,
                                    MAX_FAILURES_PER_CODE)
    if found is None or await conn.fetchval(DATE_OF_BIRTH,
                                            found["consultation_id"]) != date_of_birth:
        if found is not None and found["failed_attempts"] >= MAX_FAILURES_PER_CODE:
            await conn.execute(REVOKE_GUESSED, found["id"])
        log.info("join code refused", extra={"known_code": found is not None})
        return JoinResult("unknown")
    await conn.execute(CODE_USED, found["id"])
    await throttle.refund(conn, JOIN_IP, ip)
    c = await store.get(conn, found["consultation_id"])
    assert c is not None
    return JoinResult(judge(c, now), c)
