"""Sealing relays that cross instances through the database (``signaling_relay``): AES-256-GCM
under a key derived with HKDF-SHA256 from the server's secret key (``CASA_SECRET_KEY``),
which every instance of a deployment already shares (it signs their CSRF tokens and probe
tokens). The table is UNLOGGED and each row lives milliseconds, but its pages, a backup or
a dump could still show it: sealed, they show nothing of the SDP or text inside."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Binds the key to this use: the same secret key signs other things elsewhere.
_INFO = b"casa/signaling/relay/v1"
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed relay did not open: another key, another context, or altered bytes."""


def relay_key(secret_key: str) -> bytes:
    """The relay-sealing key of a deployment (32 bytes)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return hkdf.derive(secret_key.encode())


def seal(key: bytes, plaintext: str, context: str) -> bytes:
    """nonce || ciphertext || tag; ``context`` (sender and reader) is authenticated, not
    stored: a row replayed under another context does not open."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())


def unseal(key: bytes, sealed: bytes, context: str) -> str:
    try:
        plain = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                    context.encode())
    except (InvalidTag, ValueError):
        raise SealError("relay does not open") from None
    return plain.decode()
