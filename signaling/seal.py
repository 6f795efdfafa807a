"""Sealing what crosses instances through PostgreSQL: AES-256-GCM under keys derived with
HKDF-SHA256 from the server's secret key (``CASA_SECRET_KEY``), which every instance of a
deployment already shares (it signs their CSRF tokens and probe tokens) and the database never
sees. Two keys, one per use: bus payloads (``signaling.envelope``, every NOTIFY) and the
relays too large for a NOTIFY, stored in ``signaling_relay``. The table is UNLOGGED and each
row lives milliseconds, and NOTIFY payloads live in pg_notify until every listener has read
them, but pages, a backup or a dump could still show them: sealed, they show nothing of the
chat, SDP or text inside."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Bind each key to its use: the same secret key signs other things elsewhere.
_RELAY_INFO = b"casa/signaling/relay/v1"
_BUS_INFO = b"casa/signaling/bus/v1"
NONCE_BYTES = 12
TAG_BYTES = 16
# What sealing adds to a plaintext: the nonce before it, the tag after it.
OVERHEAD = NONCE_BYTES + TAG_BYTES


class SealError(Exception):
    """A seal did not open: another key, another context, or altered bytes."""


def _derive(secret_key: str, info: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return hkdf.derive(secret_key.encode())


def relay_key(secret_key: str) -> bytes:
    """The key of the relays stored in ``signaling_relay`` (32 bytes)."""
    return _derive(secret_key, _RELAY_INFO)


def bus_key(secret_key: str) -> bytes:
    """The key of bus payloads, every NOTIFY on the signalling channel (32 bytes)."""
    return _derive(secret_key, _BUS_INFO)


def seal(key: bytes, plaintext: bytes, context: str) -> bytes:
    """nonce || ciphertext || tag; ``context`` is authenticated, not stored: sealed bytes
    replayed under another context do not open."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def unseal(key: bytes, sealed: bytes, context: str) -> bytes:
    """The plaintext, or ``SealError``."""
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                   context.encode())
    except (InvalidTag, ValueError):
        raise SealError("seal does not open") from None
