"""Envelope encryption of note versions: AES-256-GCM with a fresh data key per version.

- ``ciphertext = nonce || AESGCM(dek).encrypt(nonce, plaintext, content_aad)``
- ``wrapped_key = nonce || AESGCM(kek).encrypt(nonce, dek, wrap_aad)``

``content_aad`` binds the ciphertext to (note id, version, patient id); ``wrap_aad`` binds the
wrapped data key to the same three and to the key id of the KEK that wraps it. A ciphertext or
key copied to another row, or a kek_id edited in the database, fails authentication with an
``IntegrityError`` naming the row. Rotation re-wraps data keys only; the ciphertext is never
touched, so a note version keeps its single data key for life, and erasure destroys it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from records.errors import ErasedError, IntegrityError
from records.keyring import Keyring

NONCE_BYTES = 12  # the GCM standard nonce; random is safe because every data key is fresh
DEK_BYTES = 32


@dataclass(frozen=True)
class RowId:
    """Where a ciphertext belongs: it decrypts only there."""

    note_id: int
    version: int
    patient_id: int

    def content_aad(self) -> bytes:
        return f"casa-note-v1|{self.note_id}|{self.version}|{self.patient_id}".encode()

    def wrap_aad(self, kek_id: str) -> bytes:
        return f"casa-dek-v1|{self.note_id}|{self.version}|{self.patient_id}|{kek_id}".encode()


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    wrapped_key: bytes | None
    kek_id: str


class Envelope:
    """Seals and opens note versions with the keys of ``ring``."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring

    def seal(self, plaintext: bytes, row: RowId) -> Sealed:
        self.ring.refresh()
        kek_id = self.ring.current
        dek = AESGCM.generate_key(bit_length=DEK_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = nonce + AESGCM(dek).encrypt(nonce, plaintext, row.content_aad())
        return Sealed(ciphertext, self._wrap(dek, kek_id, row), kek_id)

    def open(self, sealed: Sealed, row: RowId) -> bytes:
        if sealed.wrapped_key is None:
            raise ErasedError(f"note {row.note_id} version {row.version} was erased")
        dek = self._unwrap(sealed.wrapped_key, sealed.kek_id, row)
        ct = sealed.ciphertext
        try:
            return AESGCM(dek).decrypt(ct[:NONCE_BYTES], ct[NONCE_BYTES:], row.content_aad())
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"note {row.note_id} version {row.version}: ciphertext failed authentication "
                "(tampered, or moved from another row)") from None

    def rewrap(self, sealed: Sealed, row: RowId, to_kek: str) -> Sealed:
        """The same data key wrapped by ``to_kek``; the ciphertext is unchanged."""
        if sealed.wrapped_key is None:
            raise ErasedError(f"note {row.note_id} version {row.version} was erased")
        dek = self._unwrap(sealed.wrapped_key, sealed.kek_id, row)
        return Sealed(sealed.ciphertext, self._wrap(dek, to_kek, row), to_kek)

    def _wrap(self, dek: bytes, kek_id: str, row: RowId) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.ring.key(kek_id)).encrypt(nonce, dek, row.wrap_aad(kek_id))

    def _unwrap(self, wrapped: bytes, kek_id: str, row: RowId) -> bytes:
        kek = self.ring.key(kek_id)  # UnknownKeyError names the key id
        try:
            return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                       row.wrap_aad(kek_id))
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"note {row.note_id} version {row.version}: data key failed authentication "
                f"under key {kek_id} (tampered, or moved from another row)") from None
