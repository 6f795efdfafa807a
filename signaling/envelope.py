"""A bus event as it crosses PostgreSQL in a NOTIFY payload: sealed, and bound to its channel,
its sender and its place in the sender's sequence.

Chat, SDP and ICE candidates (the addresses of a patient's devices), notices and members'
states all cross the bus. PostgreSQL keeps NOTIFY payloads in its queue until every listener
has read them; the queue's pages reach ``pg_notify`` on disk once it outgrows the server's
buffers and stay there after a checkpoint and a shutdown. Any role allowed to LISTEN reads them
too. So every payload is sealed with AES-256-GCM (``signaling.seal``) under a key derived from
``CASA_SECRET_KEY``, which the database never sees::

    <sender>.<seq>.<sent_ms>.<base64url(nonce || ciphertext || tag)>

The header is in clear (NOTIFY shows who sent when anyway) and authenticated, with the
channel, as associated data. The receiver opens only what the key's holders sealed for this
channel, unaltered; it refuses a sequence number it has already passed for that sender (a
payload replayed into the channel) and a payload sent more than ``MAX_AGE_S`` ago or ahead
(a replay from an instance that has stopped since: its sequence is no longer known).

The sealed plaintext is the event as compact JSON; a frame that the event relays (its
``text``) follows a newline as it is, rather than escaped a second time inside the JSON, which
would cost a chat of emoji or an SDP a sixth more."""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from signaling import seal

# NOTIFY refuses payloads of 8000 bytes or more.
MAX_PAYLOAD_BYTES = 7999
# Instance ids are 14 characters ("i_" and 12 url-safe ones); the header keeps room for 40,
# a 20-digit sequence and a 13-digit time, and its dots.
MAX_SENDER_CHARS = 40
_HEADER_BYTES = MAX_SENDER_CHARS + 20 + 13 + 3
# The largest plaintext whose sealed payload fits one NOTIFY (base64 makes 4 of every 3
# bytes); a larger event goes by reference through ``signaling_relay``.
MAX_BODY_BYTES = (MAX_PAYLOAD_BYTES - _HEADER_BYTES) // 4 * 3 - seal.OVERHEAD
# Older (or later) payloads are refused: instances' clocks agree within seconds, and a live
# event is delivered in milliseconds.
MAX_AGE_S = 60.0
# Senders silent for this long are forgotten: any payload of theirs is stale by then.
FORGET_AFTER_S = 2 * MAX_AGE_S



class EnvelopeError(Exception):
    """A payload refused; ``reason`` (malformed, forged, replayed, stale) names why for the
    metric and the log, which never show the payload."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Envelope:
    """Seals this instance's payloads in sequence, and opens the others'."""

    def __init__(self, secret_key: str, channel: str, sender: str,
                 clock: Callable[[], float] = time.time) -> None:
        """``clock``: wall-clock seconds, as ``time.time`` (instances compare theirs)."""
        if not 1 <= len(sender) <= MAX_SENDER_CHARS or "." in sender:
            raise ValueError("sender id")
        self.channel = channel
        self.sender = sender
        self._aead = AESGCM(seal.bus_key(secret_key))
        self._clock = clock
        self._seq = itertools.count(1)
        # The last sequence accepted from each sender, and when.
        self._last: dict[str, tuple[int, float]] = {}

    def _aad(self, header: str) -> bytes:
        return f"casa-bus/v1|{self.channel}|{header}".encode()

    def seal(self, body: bytes) -> str:
        """The NOTIFY payload of ``body`` (at most ``MAX_BODY_BYTES``)."""
        if len(body) > MAX_BODY_BYTES:
            raise ValueError("body too large for one NOTIFY")
        header = f"{self.sender}.{next(self._seq)}.{int(self._clock() * 1000)}"
        nonce = os.urandom(seal.NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, body, self._aad(header))
        return f"{header}.{base64.urlsafe_b64encode(sealed).decode()}"

    def open(self, payload: str, received_at: float | None = None) -> tuple[str, bytes] | None:
        """(sender, body) of another instance's payload; None for one of this instance's own.
        ``received_at`` (the clock's time when the payload arrived) is what its age is measured
        against, so that a backlog here does not make live events stale. Raises
        ``EnvelopeError``."""
        parts = payload.split(".")
        if len(parts) != 4:
            raise EnvelopeError("malformed")
        sender, seq_text, sent_text, sealed_text = parts
        if sender == self.sender:
            return None
        if not (1 <= len(sender) <= MAX_SENDER_CHARS and seq_text.isdigit()
                and sent_text.isdigit() and len(seq_text) <= 20 and len(sent_text) <= 13):
            raise EnvelopeError("malformed")
        try:
            sealed = base64.urlsafe_b64decode(sealed_text)
            body = self._aead.decrypt(sealed[:seal.NONCE_BYTES], sealed[seal.NONCE_BYTES:],
                                      self._aad(f"{sender}.{seq_text}.{sent_text}"))
        except (binascii.Error, ValueError):
            raise EnvelopeError("malformed") from None
        except InvalidTag:
            raise EnvelopeError("forged") from None
        now = self._clock() if received_at is None else received_at
        if abs(now - int(sent_text) / 1000) > MAX_AGE_S:
            raise EnvelopeError("stale")
        seq = int(seq_text)
        last = self._last.get(sender)
        if last is not None and seq <= last[0]:
            raise EnvelopeError("replayed")
        if last is None:
            self._forget_silent(now)
        self._last[sender] = (seq, now)
        return sender, body

    def _forget_silent(self, now: float) -> None:
        for sender, (_seq, seen) in list(self._last.items()):
            if now - seen > FORGET_AFTER_S:
                del self._last[sender]
