"""What staff can do about a booking's invitation: see its state per channel, send it again,
issue a new join code to read over the phone or to print.

The 6-digit code is stored only as an HMAC, so nobody can look it up: "read it over the phone"
and "print" issue a new one (the old code stops working; links are not touched, so every
message the patient holds still opens the consultation). The new code is shown once: it is
sealed into ``join_code_reveals`` in the transaction that issues it, and the page that shows it
deletes the row in the statement that reads it (``DELETE ... RETURNING``), so a reload, Back
or a second tab finds nothing and says so. The row is bound to the booking, the staff member
and the purpose, and is purged unread after ``REVEAL_TTL``. Every action is audited in the
same transaction (who, which booking, which channel or purpose; never the code).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from records import audit
from server import errors
from server.bookings import bookings, invitations, workflow
from server.bookings.errors import (
    BOOKING_NOT_FOUND,
    INVITATION_CLOSED,
    NO_CODE,
    NO_EMAIL,
    NO_PHONE,
)
from server.bookings.model import Booking
from server.consultations import status, store
from server.consultations.languages import UI_LANGUAGES

CHANNELS = ("sms", "email")
PURPOSES = ("phone", "print")
# Between the POST that issues a code and the GET that shows it: a redirect, a slow network.
REVEAL_TTL = timedelta(minutes=2)



@dataclass(frozen=True)
class ChannelState:
    """The latest invitation on one channel, as the booking page shows it."""

    channel: str
    state: str  # queued, waiting (no sender), retrying, sent, failed, expired, replaced
    recipient: str
    queued_at: datetime
    sent_at: datetime | None
    attempts: int
    error: str | None  # senders.ERRORS code, without the HTTP status
    status_code: int | None  # the provider's HTTP status, when it gave one
    next_attempt_at: datetime | None
    resent: bool  # sent again by staff (not the booking's own invitation)


LATEST = """
SELECT DISTINCT ON (channel) channel, kind, recipient, created_at, sent_at, attempts,
       last_error, failed_at, next_attempt_at
FROM outbox WHERE booking_id = $1 AND kind IN ('invitation', 'resend')
ORDER BY channel, id DESC
"""


def _state(r: asyncpg.Record, senders: frozenset[str]) -> ChannelState:
    code, _, http = (r["last_error"] or "").partition(":")
    if r["sent_at"] is not None:
        state = "sent"
    elif code in ("expired", "replaced"):
        state = code
    elif r["failed_at"] is not None:
        state = "failed"
    elif r["attempts"]:
        state = "retrying"
    else:
        state = "queued" if r["channel"] in senders else "waiting"
    return ChannelState(
        channel=r["channel"], state=state, recipient=r["recipient"], queued_at=r["created_at"],
        sent_at=r["sent_at"], attempts=r["attempts"],
        error=code if state in ("failed", "retrying") else None,
        status_code=int(http) if http.isdigit() else None,
        next_attempt_at=r["next_attempt_at"] if state == "retrying" else None,
        resent=r["kind"] == "resend")


async def states(pool: asyncpg.Pool | asyncpg.Connection, booking_id: int,
                 senders: frozenset[str]) -> list[ChannelState]:
    """The latest invitation per channel; ``senders`` are the channels that can send now."""
    return [_state(r, senders) for r in await pool.fetch(LATEST, booking_id)]


def _actionable(b: Booking, c: store.Consultation | None, now: datetime) -> None:
    """Refuse a booking nobody can come to any more: called off, fulfilled, or over."""
    until = c.open_until() if c is not None else b.ends_at
    if b.status in status.CLOSED_TO_JOINING or until <= now:
        raise errors.ApiError(INVITATION_CLOSED)


async def _booking(conn: asyncpg.Connection,
                   booking_id: int) -> tuple[Booking, store.Consultation | None]:
    b = await bookings.get(conn, booking_id)
    if b is None:
        raise errors.ApiError(BOOKING_NOT_FOUND)
    c = await store.get_by_booking(conn, b.id)
    _actionable(b, c, datetime.now(UTC))
    return b, c


async def resend(ctx: workflow.Context, booking_id: int, channel: str, *, by: int) -> None:
    """Queue the invitation again on ``channel`` (see ``workflow.requeue_invitation``), audited
    as ``invitation_resent``. Refused for a booking that can no longer be joined, or a patient
    without that phone or e-mail."""
    if channel not in CHANNELS:
        raise errors.ApiError(errors.FORBIDDEN)

    async def work(conn: asyncpg.Connection) -> None:
        b, _c = await _booking(conn, booking_id)
        if not await workflow.requeue_invitation(conn, ctx, b, channel):
            raise errors.ApiError(NO_PHONE if channel == "sms" else NO_EMAIL)
        await audit.append(conn, action="invitation_resent", actor_staff_id=by,
                           actor_kind="staff", patient_id=b.patient_id, booking_id=b.id,
                           detail={"channel": channel})

    await bookings.with_retry(ctx.pool, work)
    if ctx.wake is not None:
        ctx.wake()


def _key(secret_key: str) -> bytes:
    return hashlib.sha256(b"casa-code-reveal-v1:" + secret_key.encode()).digest()


def _aad(booking_id: int, staff_id: int, purpose: str) -> bytes:
    return f"{booking_id}:{staff_id}:{purpose}".encode()


def seal(secret_key: str, code: str, booking_id: int, staff_id: int, purpose: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(secret_key)).encrypt(nonce, code.encode(),
                                                      _aad(booking_id, staff_id, purpose))


def unseal(secret_key: str, sealed: bytes, booking_id: int, staff_id: int,
           purpose: str) -> str | None:
    try:
        return AESGCM(_key(secret_key)).decrypt(sealed[:12], sealed[12:],
                                                _aad(booking_id, staff_id, purpose)).decode()
    except InvalidTag:
        return None


PURGE = "DELETE FROM join_code_reveals WHERE expires_at <= $1"
FORGET_MINE = """
DELETE FROM join_code_reveals WHERE booking_id = $1 AND staff_id = $2 AND purpose = $3
"""
INSERT_REVEAL = """
INSERT INTO join_code_reveals (booking_id, staff_id, purpose, language, sealed_code, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
"""
# Read and gone in one statement: two GETs racing cannot both see it.
TAKE = """
DELETE FROM join_code_reveals WHERE booking_id = $1 AND staff_id = $2 AND purpose = $3
RETURNING language, sealed_code, expires_at
"""


async def issue(ctx: workflow.Context, booking_id: int, purpose: str, language: str | None,
                *, by: int) -> None:
    """A new join code for ``purpose`` ('phone': to read aloud; 'print': the printed
    invitation, in ``language``), waiting to be shown once to ``by``. Audited as
    ``join_code_issued`` (or ``invitation_printed`` for a booking without a code), never with
    the code. Reading a code aloud needs a video booking; printing does not."""
    if purpose not in PURPOSES:
        raise errors.ApiError(errors.FORBIDDEN)

    async def work(conn: asyncpg.Connection) -> None:
        b, c = await _booking(conn, booking_id)
        if c is None and purpose == "phone":
            raise errors.ApiError(NO_CODE)
        now = datetime.now(UTC)
        await conn.execute(PURGE, now)
        await conn.execute(FORGET_MINE, b.id, by, purpose)
        code = await workflow.new_code(conn, ctx, b)
        lang = language
        if lang is None or lang not in UI_LANGUAGES:
            lang = invitations.message_language(await conn.fetchval(
                "SELECT language FROM patients WHERE id = $1", b.patient_id))
        sealed = seal(ctx.secret_key, code, b.id, by, purpose) if code else None
        await conn.execute(INSERT_REVEAL, b.id, by, purpose, lang, sealed, now + REVEAL_TTL)
        action = "join_code_issued" if code else "invitation_printed"
        await audit.append(conn, action=action, actor_staff_id=by, actor_kind="staff",
                           patient_id=b.patient_id, booking_id=b.id,
                           detail={"purpose": purpose})

    await bookings.with_retry(ctx.pool, work)


@dataclass(frozen=True)
class Reveal:
    language: str
    code: str | None


async def take(pool: asyncpg.Pool, secret_key: str, booking_id: int, staff_id: int,
               purpose: str) -> Reveal | None:
    """What ``staff_id`` issued for ``purpose`` on this booking and has not seen yet, removed
    as it is read; None when there is nothing (already shown, expired, never issued)."""
    rows = await pool.fetch(TAKE, booking_id, staff_id, purpose)
    now = datetime.now(UTC)
    live = [r for r in rows if r["expires_at"] > now]
    if not live:
        return None
    r = live[-1]
    code = None
    if r["sealed_code"] is not None:
        code = unseal(secret_key, r["sealed_code"], booking_id, staff_id, purpose)
        if code is None:
            return None
    return Reveal(r["language"], code)


async def printable(ctx: workflow.Context, booking_id: int,
                    code: str | None) -> invitations.Appointment:
    """The facts of the printed invitation."""
    async with ctx.pool.acquire() as conn:
        b = await bookings.get(conn, booking_id)
        if b is None:
            raise errors.ApiError(BOOKING_NOT_FOUND)
        a, _lang = await workflow.appointment(conn, ctx, b, code)
    return a
