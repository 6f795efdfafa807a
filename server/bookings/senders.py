"""How an outbox message leaves Casa: the ``Sender`` interface, what a failed send means, and
the senders Casa has (console in demo, SMTP e-mail, an SMS gateway over HTTP).

A sender raises ``SendError`` to say how a failure should be treated: ``permanent`` (the
provider refused this message, e.g. an invalid number: trying again would fail the same way,
so it is not retried and the booking page says why), or transient with an optional
``retry_after`` (the provider asked to wait: no attempt on the channel before then). Any other
exception is transient and retried with the outbox's back-off. ``code`` is one of ``ERRORS``:
it is all the outbox keeps of a failure (never the provider's answer, which may quote the
message), and the booking page puts it in plain words.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import aiosmtplib

from server.config import Config

log = logging.getLogger("casa.bookings.senders")

SMTP_TIMEOUT_S = 20.0
# A provider's Retry-After is honoured up to this; a longer one is taken as this (the outbox
# expires the message anyway once its appointment's window closes).
MAX_RETRY_AFTER_S = 6 * 3600.0

# What the outbox records of a failure (``outbox.last_error``); the booking page words them.
ERRORS = ("timeout", "unreachable", "unavailable", "rate_limited", "credentials",
          "invalid_recipient", "rejected", "error")


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


@runtime_checkable
class Closing(Protocol):
    """A sender holding a connection pool, closed with the app."""

    async def close(self) -> None: ...


class SendError(Exception):
    """A send that failed, and how the outbox should treat it (see the module's docstring)."""

    def __init__(self, code: str, *, permanent: bool = False,
                 retry_after: float | None = None, status: int | None = None) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown send error {code!r}")
        super().__init__(code)
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status

    @property
    def recorded(self) -> str:
        """What ``outbox.last_error`` keeps: the code, and the provider's HTTP status."""
        return f"{self.code}:{self.status}" if self.status else self.code


def classify(exc: BaseException) -> SendError:
    """Any failure of any sender as a ``SendError`` (unknown failures are transient)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return SendError("invalid_recipient", permanent=True)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return SendError("credentials")
    if isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError):
        return SendError("timeout")
    if isinstance(exc, OSError | aiosmtplib.SMTPConnectError
                  | aiosmtplib.SMTPServerDisconnected):
        return SendError("unreachable")
    return SendError("error")


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


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """An HTTP ``Retry-After`` (seconds, or an HTTP date) as seconds from ``now``, capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class HttpSmsSender:
    """SMS through a gateway's HTTP API: ``POST url`` with the JSON
    ``{"to": number, "text": body, "from": sender?, "reference": "casa-<id>"}``, the token as
    ``Authorization: Bearer``, and ``Idempotency-Key: casa-outbox-<id>`` so a retry after a
    timeout (the provider may have accepted) is not sent twice by a provider that honours it.

    Answers: 2xx sent; 429 rate-limited (``Retry-After`` honoured); 408 and 5xx, a timeout or
    no connection: transient, retried with back-off; 401 and 403: Casa's credentials are wrong,
    which is no fault of the message (retried, and logged so the operator sees it); any other
    4xx: the provider refused this message (an invalid number, usually): permanent. Nothing of
    the token or the text is logged."""

    def __init__(self, url: str, token: str, *, sender_id: str | None = None,
                 timeout_s: float = 10.0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("CASA_SMS_URL must start with https://")
        self.url = url
        self._token = token
        self.sender_id = sender_id
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._now = now
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never the token
        return f"HttpSmsSender({self.url!r})"

    async def send(self, message: Message) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        body: dict[str, str] = {"to": message.recipient, "text": message.body,
                                "reference": f"casa-{message.id}"}
        if self.sender_id:
            body["from"] = self.sender_id
        headers = {"Authorization": f"Bearer {self._token}",
                   "Idempotency-Key": f"casa-outbox-{message.id}"}
        try:
            async with self._session.post(self.url, json=body, headers=headers) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise SendError("timeout") from None
        except aiohttp.ClientError:
            raise SendError("unreachable") from None
        if 200 <= status < 300:
            return
        raise self._refusal(status, retry_after, message.id)

    def _refusal(self, status: int, retry_after: str | None, outbox_id: int) -> SendError:
        if status == 429:
            return SendError("rate_limited", status=status, retry_after=retry_after_seconds(
                retry_after, self._now()))
        if status in (401, 403):
            log.error("the SMS gateway refused Casa's credentials",
                      extra={"outbox_id": outbox_id, "status": status})
            return SendError("credentials", status=status)
        if status == 408 or status >= 500:
            return SendError("unavailable", status=status)
        if 400 <= status < 500:
            return SendError("rejected", permanent=True, status=status)
        return SendError("error", status=status)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def default_senders(config: Config) -> dict[str, Sender]:
    """Console in demo (only there: outside demo nothing is printed); SMTP e-mail and the SMS
    gateway when configured. Without a sender, a channel's messages wait in the outbox until
    they expire."""
    senders: dict[str, Sender] = {}
    if config.demo:
        senders = {"sms": ConsoleSender(), "email": ConsoleSender()}
    if config.smtp_url:
        senders["email"] = SmtpSender(config.smtp_url)
    if config.sms_url and config.sms_token:
        senders["sms"] = HttpSmsSender(config.sms_url, config.sms_token,
                                       sender_id=config.sms_sender_id,
                                       timeout_s=config.sms_timeout_s)
    return senders


async def close_all(senders: dict[str, Sender]) -> None:
    for sender in {id(s): s for s in senders.values()}.values():
        if isinstance(sender, Closing):
            try:
                await sender.close()
            except Exception as exc:  # closing must not stop the app's clean-up
                log.warning("sender close failed", extra={"error": type(exc).__name__})
