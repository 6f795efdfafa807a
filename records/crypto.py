"""Envelope encryption of note versions and break-glass reasons: AES-256-GCM with a fresh
data key per sealed value.

- ``ciphertext = nonce || AESGCM(dek).encrypt(nonce, plaintext, content_aad)``
- ``wrapped_key = nonce || AESGCM(kek).encrypt(nonce, dek, wrap_aad)``

The key id (``kek_id`` column) says what ``kek`` is:

- ``p<patient>-<r>/d<day>-<r>`` (the layout since migration 0220):
  ``kek = HKDF-SHA256(patient key || day key, info="casa-wrap-v2")``, both keys sealed in the
  keyring file. Destroying either in the file makes every data key wrapped with it useless,
  in the database and in every copy of it.
- anything else (``k20261127-3f9a``): the master key of that id itself (the first layout;
  still read, and moved to the new one by ``casa keys rotate``).

``content_aad`` binds the ciphertext to its row (note id, version, patient id; or break-glass
id, note id, patient id); ``wrap_aad`` binds the wrapped data key to the same and to the key
id. A ciphertext or key copied to another row, or a kek_id edited in the database, fails
authentication with an ``IntegrityError`` naming the row. The ciphertext is never re-sealed,
so a note version keeps its single data key for life.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from records.errors import ErasedError, IntegrityError
from records.keyring import Keyring

NONCE_BYTES = 12  # the GCM standard nonce; random is safe because every data key is fresh
DEK_BYTES = 32
WRAP_INFO = b"casa-wrap-v2"


def pair_key_id(patient_key: str, day_key: str) -> str:
    """The ``kek_id`` of data keys wrapped under a patient key and a day key."""
    return f"{patient_key}/{day_key}"


def derive_wrap_key(patient_key: bytes, day_key: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, WRAP_INFO).derive(patient_key + day_key)


class Binding(Protocol):
    """Where a sealed value belongs: it opens only there."""

    def content_aad(self) -> bytes: ...
    def wrap_aad(self, kek_id: str) -> bytes: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class RowId:
    """A note version."""

    note_id: int
    version: int
    patient_id: int

    def content_aad(self) -> bytes:
        return f"casa-note-v1|{self.note_id}|{self.version}|{self.patient_id}".encode()

    def wrap_aad(self, kek_id: str) -> bytes:
        return f"casa-dek-v1|{self.note_id}|{self.version}|{self.patient_id}|{kek_id}".encode()

    def describe(self) -> str:
        return f"note {self.note_id} version {self.version}"


@dataclass(frozen=True)
class GlassId:
    """The reason given for one break-glass on a note."""

    glass_id: int
    note_id: int
    patient_id: int

    def content_aad(self) -> bytes:
        return f"casa-glass-v1|{self.glass_id}|{self.note_id}|{self.patient_id}".encode()

    def wrap_aad(self, kek_id: str) -> bytes:
        return (f"casa-glass-dek-v1|{self.glass_id}|{self.note_id}|{self.patient_id}|"
                f"{kek_id}").encode()

    def describe(self) -> str:
        return f"break-glass {self.glass_id} on note {self.note_id}"


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    wrapped_key: bytes | None
    kek_id: str


class Envelope:
    """Seals and opens note versions with the keys of ``ring``."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring

    def seal(self, plaintext: bytes, row: Binding, kek_id: str | None = None) -> Sealed:
        """Seal under ``kek_id`` (``records.subkeys.note_key_id``); without one, under the
        current master key (the first layout, kept for tools that have no database)."""
        self.ring.refresh()
        kek_id = kek_id or self.ring.current
        dek = AESGCM.generate_key(bit_length=DEK_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = nonce + AESGCM(dek).encrypt(nonce, plaintext, row.content_aad())
        return Sealed(ciphertext, self._wrap(dek, kek_id, row), kek_id)

    def open(self, sealed: Sealed, row: Binding) -> bytes:
        if sealed.wrapped_key is None:
            raise ErasedError(f"{row.describe()} was erased")
        dek = self._unwrap(sealed.wrapped_key, sealed.kek_id, row)
        ct = sealed.ciphertext
        try:
            return AESGCM(dek).decrypt(ct[:NONCE_BYTES], ct[NONCE_BYTES:], row.content_aad())
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"{row.describe()}: ciphertext failed authentication "
                "(tampered, or moved from another row)") from None

    def rewrap(self, sealed: Sealed, row: Binding, to_kek: str) -> Sealed:
        """The same data key wrapped by ``to_kek``; the ciphertext is unchanged."""
        if sealed.wrapped_key is None:
            raise ErasedError(f"{row.describe()} was erased")
        dek = self._unwrap(sealed.wrapped_key, sealed.kek_id, row)
        return Sealed(sealed.ciphertext, self._wrap(dek, to_kek, row), to_kek)

    def wrapping_key(self, kek_id: str) -> bytes:
        """The key that wraps data keys under ``kek_id``; ``UnknownKeyError`` names a key id
        the keyring lacks (never created, or destroyed by an erasure)."""
        if "/" not in kek_id:
            return self.ring.key(kek_id)
        patient_key, _, day_key = kek_id.partition("/")
        return derive_wrap_key(self.ring.subkey(patient_key), self.ring.subkey(day_key))

    def _wrap(self, dek: bytes, kek_id: str, row: Binding) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.wrapping_key(kek_id)).encrypt(nonce, dek,
                                                                 row.wrap_aad(kek_id))

    def _unwrap(self, wrapped: bytes, kek_id: str, row: Binding) -> bytes:
        kek = self.wrapping_key(kek_id)
        try:
            return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                       row.wrap_aad(kek_id))
        except (InvalidTag, ValueError):
            raise IntegrityError(
                f"{row.describe()}: data key failed authentication "
                f"under key {kek_id} (tampered, or moved from another row)") from None
