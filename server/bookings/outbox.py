"""The invitation outbox: messages are written in the booking's transaction and sent later by
a background task through a pluggable sender. A failed send is retried with back-off while it
is still of use. A message's body and attachment hold the join link and code, which must not
outlive their purpose in the database: they are blanked once sent, and an unsent message
expires (blanked, ``last_error = 'expired'``, never tried again) as soon as it is of no more
use: its booking was changed after it was queued (rescheduled: a new invitation replaces it;
cancelled; arrived), its join window closed (or, without a video consultation, the booking
ended), or its booking is gone. So a message on a channel nobody can send (SMS without a
gateway) never lasts beyond its appointment. A message the provider refused for good (an
invalid number) is blanked too and never tried again (``failed_at``); the booking page shows
it, and staff can resend to a corrected number (``server/bookings/invitation_actions.py``).
How a sender says what a failure means is in ``server/bookings/senders.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from server import background
from server.bookings.keys import OUTBOX_WAKE, SENDERS
from server.bookings.senders import (
    ConsoleSender,
    Message,
    Sender,
    SmtpSender,
    classify,
    close_all,
    default_senders,
)
from server.keys import CONFIG, POOL

# Where they always were, for the callers of ``outbox.Message`` and friends.
__all__ = ["ConsoleSender", "Message", "Sender", "SmtpSender", "enqueue", "enqueue_many",
           "expire", "send_due"]

log = logging.getLogger("casa.bookings.outbox")

# A claimed message is someone else's for this long (a crashed sender's claim expires).
CLAIM = timedelta(minutes=5)
# Retry after 1, 2, 4 ... minutes, at most hourly: a mail server down for a night loses nothing.
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(hours=1)
BATCH = 20
# How often the sender looks for due messages when nobody wakes it.
POLL_S = 30.0
# What a message is (``outbox.kind``): the booking page shows the invitation's state from these.
KINDS = ("invitation", "resend", "cancellation")


INSERT = """
INSERT INTO outbox (booking_id, channel, recipient, subject, body, ics, kind)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


async def enqueue(conn: asyncpg.Connection, booking_id: int | None, channel: str,
                  recipient: str, subject: str | None, body: str, ics: str | None, *,
                  kind: str | None = None) -> None:
    """Queue a message in the caller's transaction: it is sent only if the booking commits.
    ``kind`` (one of ``KINDS``) marks invitations and cancellations for the booking page."""
    await conn.execute(INSERT, booking_id, channel, recipient, subject, body, ics, kind)


async def enqueue_many(conn: asyncpg.Connection,
                       messages: list[tuple[int | None, str, str, str | None, str, str | None]],
                       *, kind: str | None = None) -> None:
    """``enqueue`` for several messages in one pipelined round trip."""
    if messages:
        await conn.executemany(INSERT, [(*m, kind) for m in messages])


CLAIM_DUE = """
UPDATE outbox SET next_attempt_at = $4::timestamptz + $2::interval
WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $4
             AND channel = ANY($3::text[])
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, channel, recipient, subject, body, ics
"""
SENT = "UPDATE outbox SET sent_at = $2, attempts = attempts + 1, body = '', ics = NULL, " \
       "last_error = NULL WHERE id = $1"
# A transient failure: tried again after the back-off (1, 2, 4 ... minutes), or not before the
# provider's Retry-After when it gave one ($5, seconds).
FAILED = """
UPDATE outbox SET attempts = attempts + 1, last_error = $2,
    next_attempt_at = $6::timestamptz
        + CASE WHEN $5::float8 IS NOT NULL THEN make_interval(secs => $5)
               ELSE least($3::interval * power(2, attempts), $4::interval) END
WHERE id = $1
"""
# A permanent failure (the provider refused this message): never tried again, and blanked,
# as a sent message is: nothing will read its link and code now.
FAILED_FOR_GOOD = """
UPDATE outbox SET attempts = attempts + 1, last_error = $2, failed_at = $3, body = '',
    ics = NULL, next_attempt_at = 'infinity'
WHERE id = $1
"""
# A claimed message not tried because its channel is rate-limited: back in the queue for when
# the provider said, with no attempt counted.
POSTPONED = "UPDATE outbox SET next_attempt_at = $2 WHERE id = $1"


# The booking's last change is stamped with its transaction's time, as are the messages queued
# in that transaction: a message queued before a change was overtaken by it.
EXPIRE = """
UPDATE outbox o SET body = '', ics = NULL, last_error = 'expired', next_attempt_at = 'infinity'
WHERE o.sent_at IS NULL AND o.next_attempt_at <> 'infinity'
  AND (o.booking_id IS NULL
       OR EXISTS (SELECT 1 FROM bookings b LEFT JOIN consultations c ON c.booking_id = b.id
                  WHERE b.id = o.booking_id
                    AND (b.updated_at > o.created_at
                         OR coalesce(c.join_closes_at, upper(b.during)) <= $1)))
RETURNING o.id
"""
EXPIRED = "expired"


async def expire(pool: asyncpg.Pool | asyncpg.Connection, now: datetime | None = None) -> int:
    """Blank and retire every unsent message that is of no more use; returns how many."""
    n = len(await pool.fetch(EXPIRE, now or datetime.now(UTC)))
    if n:
        log.info("invitations expired unsent", extra={"count": n})
    return n


async def send_due(pool: asyncpg.Pool, senders: dict[str, Sender],
                   now: datetime | None = None) -> tuple[int, int]:
    """Send every due message whose channel has a sender; returns (sent, failed). Messages of
    no more use are expired first, so an overtaken invitation is never sent. ``now`` (the
    clock, injectable for tests) decides what is due and when a retry is. A provider that
    asks to wait (Retry-After) pauses its channel for this pass: the channel's other claimed
    messages go back to wait as long, without an attempt counted."""
    now = now or datetime.now(UTC)
    await expire(pool, now)
    sent = failed = 0
    paused: dict[str, datetime] = {}
    while True:
        channels = [c for c in senders if c not in paused]
        rows = await pool.fetch(CLAIM_DUE, BATCH, CLAIM, channels, now) if channels else []
        if not rows:
            return sent, failed
        for r in rows:
            msg = Message(**dict(r))
            if msg.channel in paused:
                await pool.execute(POSTPONED, msg.id, paused[msg.channel])
                continue
            try:
                await senders[msg.channel].send(msg)
            except Exception as exc:  # any failure of any sender: classified, kept or retired
                err = classify(exc)
                if err.permanent:
                    await pool.execute(FAILED_FOR_GOOD, msg.id, err.recorded, now)
                else:
                    await pool.execute(FAILED, msg.id, err.recorded, FIRST_BACKOFF, MAX_BACKOFF,
                                       err.retry_after, now)
                    if err.retry_after is not None:
                        paused[msg.channel] = now + timedelta(seconds=err.retry_after)
                log.warning("invitation send failed", extra={
                    "outbox_id": msg.id, "error": err.recorded, "permanent": err.permanent})
                failed += 1
            else:
                await pool.execute(SENT, msg.id, now)
                sent += 1


async def run_sender(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: a background task that expires stale messages and sends due ones, woken
    at each booking change (so a cancellation or reschedule blanks the old invitation at once)
    and every ``POLL_S`` seconds."""
    if SENDERS not in app:
        app[SENDERS] = default_senders(app[CONFIG])
    wake = app[OUTBOX_WAKE] = asyncio.Event()

    async def woken_or_after(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)
        wake.clear()

    async def step() -> None:
        # send_due expires first; with no sender expiry still runs: an SMS nobody can send
        # must not keep its link.
        if app[SENDERS]:
            await send_due(app[POOL], app[SENDERS])
        else:
            await expire(app[POOL])

    # Any failure (the database away, a bug) is logged and retried after a back-off; the
    # loop never ends before the app does.
    async with background.running("outbox") as tasks:
        tasks.every(POLL_S, step, "outbox pass", wait=woken_or_after, first_after=POLL_S)
        yield
    await close_all(app[SENDERS])


def wake_sender(app: web.Application) -> None:
    if OUTBOX_WAKE in app:
        app[OUTBOX_WAKE].set()
