"""The invitation outbox: messages are written in the booking's transaction and sent later by
a background task through a pluggable sender. A failed send is retried with back-off while it
is still of use. A message's body and attachment hold the join link and code, which must not
outlive their purpose in the database: they are blanked once sent, and an unsent message
expires (blanked, ``last_error = 'expired'``, never tried again) as soon as it is of no more
use: its booking was changed after it was queued (rescheduled: a new invitation replaces it;
cancelled; arrived), its join window closed (or, without a video consultation, the booking
ended), or its booking is gone. So a message on a channel nobody can send (SMS without a
gateway) never lasts beyond its appointment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import asyncpg
from aiohttp import web

from server import background
from server.bookings.keys import OUTBOX_WAKE, SENDERS
from server.keys import CONFIG, POOL

log = logging.getLogger("casa.bookings.outbox")

# A claimed message is someone else's for this long (a crashed sender's claim expires).
CLAIM = timedelta(minutes=5)
# Retry after 1, 2, 4 ... minutes, at most hourly: a mail server down for a night loses nothing.
MAX_BACKOFF = timedelta(hours=1)
BATCH = 20
# How often the sender looks for due messages when nobody wakes it.
POLL_S = 30.0
SMTP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Message:
    id: int
    channel: str
    recipient: str
    subject: str | None
    body: str
    ics: str | None


class Sender(Protocol):
    async def send(self, message: Message) -> None: ...


class ConsoleSender:
    """Demo: prints the message, so the join link and code can be tried at once."""

    async def send(self, message: Message) -> None:
        print(f"--- {message.channel} to {message.recipient} ---\n"
              f"{message.subject or ''}\n{message.body}\n", flush=True)


class SmtpSender:
    """E-mail through an SMTP server: ``smtp[s]://user:password@host:port?from=addr``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("CASA_SMTP_URL must look like smtp://user:pass@host:587?from=...")
        self.host = parts.hostname
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = parse_qs(parts.query).get("from", ["casa@localhost"])[0]

    async def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or "Casa"
        mail.set_content(message.body)
        if message.ics:
            mail.add_attachment(message.ics.encode(), maintype="text", subtype="calendar",
                                filename="appointment.ics", params={"method": "REQUEST"})
        await aiosmtplib.send(mail, hostname=self.host, port=self.port, username=self.username,
                              password=self.password, use_tls=self.tls,
                              start_tls=None if self.tls else True, timeout=SMTP_TIMEOUT_S)


INSERT = """
INSERT INTO outbox (booking_id, channel, recipient, subject, body, ics)
VALUES ($1, $2, $3, $4, $5, $6)
"""


async def enqueue(conn: asyncpg.Connection, booking_id: int | None, channel: str,
                  recipient: str, subject: str | None, body: str, ics: str | None) -> None:
    """Queue a message in the caller's transaction: it is sent only if the booking commits."""
    await conn.execute(INSERT, booking_id, channel, recipient, subject, body, ics)


async def enqueue_many(conn: asyncpg.Connection,
                       messages: list[tuple[int | None, str, str, str | None, str, str | None]]
                       ) -> None:
    """``enqueue`` for several messages in one pipelined round trip."""
    if messages:
        await conn.executemany(INSERT, messages)


CLAIM_DUE = """
UPDATE outbox SET next_attempt_at = now() + $2::interval
WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= now()
             AND channel = ANY($3::text[])
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, channel, recipient, subject, body, ics
"""
SENT = "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, body = '', ics = NULL, " \
       "last_error = NULL WHERE id = $1"
FAILED = """
UPDATE outbox SET attempts = attempts + 1, last_error = $2,
    next_attempt_at = now() + least($3::interval * power(2, attempts), $4::interval)
WHERE id = $1
"""


# The booking's last change is stamped with its transaction's time, as are the messages queued
# in that transaction: a message queued before a change was overtaken by it.
EXPIRE = """
UPDATE outbox o SET body = '', ics = NULL, last_error = 'expired', next_attempt_at = 'infinity'
WHERE o.sent_at IS NULL AND o.next_attempt_at <> 'infinity'
  AND (o.booking_id IS NULL
       OR EXISTS (SELECT 1 FROM bookings b LEFT JOIN consultations c ON c.booking_id = b.id
                  WHERE b.id = o.booking_id
                    AND (b.updated_at > o.created_at
                         OR coalesce(c.join_closes_at, upper(b.during)) <= now())))
RETURNING o.id
"""
EXPIRED = "expired"


async def expire(pool: asyncpg.Pool | asyncpg.Connection) -> int:
    """Blank and retire every unsent message that is of no more use; returns how many."""
    n = len(await pool.fetch(EXPIRE))
    if n:
        log.info("invitations expired unsent", extra={"count": n})
    return n


async def send_due(pool: asyncpg.Pool, senders: dict[str, Sender]) -> tuple[int, int]:
    """Send every due message whose channel has a sender; returns (sent, failed). Messages of
    no more use are expired first, so an overtaken invitation is never sent."""
    await expire(pool)
    sent = failed = 0
    while True:
        rows = await pool.fetch(CLAIM_DUE, BATCH, CLAIM, list(senders))
        if not rows:
            return sent, failed
        for r in rows:
            msg = Message(**dict(r))
            try:
                await senders[msg.channel].send(msg)
            except Exception as exc:  # any failure of any sender: keep the message, retry
                await pool.execute(FAILED, msg.id, type(exc).__name__, timedelta(minutes=1),
                                   MAX_BACKOFF)
                log.warning("invitation send failed", extra={"outbox_id": msg.id,
                                                             "error": type(exc).__name__})
                failed += 1
            else:
                await pool.execute(SENT, msg.id)
                sent += 1


def default_senders(app: web.Application) -> dict[str, Sender]:
    """Console in demo (only there: outside demo nothing is printed); SMTP e-mail when
    configured. SMS needs a gateway plugged in here; without one SMS messages wait in the
    outbox until they expire."""
    config = app[CONFIG]
    senders: dict[str, Sender] = {}
    if config.demo:
        senders = {"sms": ConsoleSender(), "email": ConsoleSender()}
    if config.smtp_url:
        senders["email"] = SmtpSender(config.smtp_url)
    return senders


async def run_sender(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: a background task that expires stale messages and sends due ones, woken
    at each booking change (so a cancellation or reschedule blanks the old invitation at once)
    and every ``POLL_S`` seconds."""
    if SENDERS not in app:
        app[SENDERS] = default_senders(app)
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


def wake_sender(app: web.Application) -> None:
    if OUTBOX_WAKE in app:
        app[OUTBOX_WAKE].set()
