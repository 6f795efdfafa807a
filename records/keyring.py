"""The keyring, kept in a file and never in the database: master keys, and the patient and
day keys sealed under them.

File format (JSON, mode 0600)::

    {"version": 2, "current": "k20261127-3f9a",
     "keys": {"k20261127-3f9a": "<base64 32 bytes>"},
     "sealed": {"p42-1a2b3c": "k20261127-3f9a:<base64 nonce || AES-GCM(master, key)>",
                "d20261207-4d5e6f": "k20261127-3f9a:<...>"}}

``keys`` are the master keys; the current one seals new entries of ``sealed``. A sealed entry
is a patient key (``p<patient id>-<random>``) or a day key (``d<UTC day>-<random>``); every
note's data keys are wrapped by a key derived from its patient's key and its day's key
(``records.crypto``), so removing an entry from this file is what makes erased notes
unrecoverable from any copy of the database (``records.subkeys``). Version 1 files (master
keys only, every data key wrapped directly by one) are still read.

A running server re-reads the file when it changes (``refresh``); every change is made by
re-reading the file under a database lock (``records.subkeys.update_file``), never by writing
back a copy held in memory, so one instance cannot restore a key another one destroyed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from records.errors import KeyringError, UnknownKeyError

log = logging.getLogger("casa.records")
KEY_BYTES = 32  # AES-256
KEY_ID_RE = re.compile(r"^[a-z0-9-]{4,40}$")
SEALED_ID_RE = re.compile(r"^(p[0-9]{1,19}|d[0-9]{8})-[0-9a-f]{6,32}$")
NONCE_BYTES = 12
# A reader that opened the file just before a replace may find the old inode scrubbed: it
# reads again, from the new file, this many times before calling the file broken.
READ_ATTEMPTS = 3


def sealed_under(value: str) -> str:
    """The master key id a sealed entry (``"<kek>:<base64>"``) is sealed under."""
    return value.partition(":")[0]


def _sealed_aad(entry_id: str, kek: str) -> bytes:
    return f"casa-sealed-v1|{entry_id}|{kek}".encode()


def new_key_id() -> str:
    """Dated for people reading the file, random so two rotations never collide."""
    return f"k{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(3)}"


@dataclass
class Keyring:
    """Key id -> 32-byte key, one of them current; optionally backed by a file."""

    current: str
    keys: dict[str, bytes] = field(repr=False)  # never in a traceback or a log line
    path: Path | None = None
    # entry id -> "<master key id>:<base64>", kept as read: tens of thousands of entries
    # are read on every change of the file, and only the few in use are ever opened.
    sealed: dict[str, str] = field(default_factory=dict, repr=False)
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _opened: dict[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for kid, key in self.keys.items():
            if not KEY_ID_RE.match(kid) or len(key) != KEY_BYTES:
                raise KeyringError(f"keyring entry {kid!r} is malformed")
        if self.current not in self.keys:
            raise KeyringError("keyring's current key id is not among its keys")
        if not {sealed_under(v) for v in self.sealed.values()} <= self.keys.keys():
            raise KeyringError("a keyring entry is sealed under a key the keyring lacks")

    def subkey(self, entry_id: str) -> bytes:
        """The patient or day key ``entry_id``, unsealed; re-reads the file once if it is not
        known. ``UnknownKeyError`` when it is not there: never created, or destroyed."""
        if entry_id not in self.sealed:
            self.refresh()
        entry = self.sealed.get(entry_id)
        if entry is None:
            raise UnknownKeyError(f"key id {entry_id!r} is not in the keyring")
        opened = self._opened.get(entry_id)
        if opened is None:
            kek, _, encoded = entry.partition(":")
            try:
                if not SEALED_ID_RE.match(entry_id):
                    raise ValueError(entry_id)
                blob = base64.b64decode(encoded, validate=True)
                opened = AESGCM(self.keys[kek]).decrypt(
                    blob[:NONCE_BYTES], blob[NONCE_BYTES:], _sealed_aad(entry_id, kek))
            except (InvalidTag, ValueError, KeyError):
                raise KeyringError(f"keyring entry {entry_id!r} failed authentication") from None
            self._opened[entry_id] = opened
        return opened

    def add_sealed(self, entry_id: str, key: bytes) -> None:
        """Seal ``key`` under the current master key as ``entry_id`` (in memory)."""
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + AESGCM(self.keys[self.current]).encrypt(
            nonce, key, _sealed_aad(entry_id, self.current))
        self.sealed[entry_id] = f"{self.current}:{base64.b64encode(blob).decode()}"
        self._opened[entry_id] = key

    def remove_sealed(self, entry_ids: set[str]) -> set[str]:
        """Forget these entries (in memory); the ids that were present."""
        gone = entry_ids & self.sealed.keys()
        for entry_id in gone:
            del self.sealed[entry_id]
            self._opened.pop(entry_id, None)
        return gone

    def reseal_all(self) -> int:
        """Seal every entry under the current master key (after a rotation); how many moved."""
        moved = [e for e, s in self.sealed.items() if sealed_under(s) != self.current]
        for entry_id in moved:
            self.add_sealed(entry_id, self.subkey(entry_id))
        return len(moved)

    def key(self, kid: str) -> bytes:
        """The key with id ``kid``; re-reads the file once if it is not known (rotated)."""
        if kid not in self.keys:
            self.refresh()
        try:
            return self.keys[kid]
        except KeyError:
            raise UnknownKeyError(f"key id {kid!r} is not in the keyring") from None

    def refresh(self) -> None:
        """Reload from the file if it changed since it was read (cheap: one stat)."""
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except OSError:
            return  # keep serving with what we have; a missing file is reported at start
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self._stamp:
            self.adopt(load(self.path))

    def adopt(self, fresh: Keyring) -> None:
        """Take over ``fresh``'s keys: a destroyed entry leaves memory too."""
        self.current, self.keys, self.sealed = fresh.current, fresh.keys, fresh.sealed
        self._opened = {k: v for k, v in self._opened.items() if k in self.sealed
                        and sealed_under(self.sealed[k]) in self.keys}
        self._stamp = fresh._stamp

    def with_new_key(self) -> tuple[Keyring, str]:
        """A copy with a fresh master key made current; sealed entries are not moved yet
        (``reseal_all``)."""
        kid = new_key_id()
        while kid in self.keys:
            kid = new_key_id()
        keys = {**self.keys, kid: secrets.token_bytes(KEY_BYTES)}
        return Keyring(kid, keys, self.path, dict(self.sealed)), kid

    def to_json(self) -> str:
        # Compact: json's C encoder only runs without indent (10x faster on a big keyring).
        return json.dumps({"version": 2, "current": self.current,
                           "keys": {k: base64.b64encode(v).decode() for k, v in
                                    sorted(self.keys.items())},
                           "sealed": dict(sorted(self.sealed.items()))},
                          separators=(",", ":"))


def generate(path: Path | None = None) -> Keyring:
    kid = new_key_id()
    return Keyring(kid, {kid: secrets.token_bytes(KEY_BYTES)}, path)


def _parse(text: str, path: Path) -> Keyring:
    raw = json.loads(text)
    if raw.get("version") not in (1, 2):
        raise ValueError("unknown version")
    keys = {str(k): base64.b64decode(v, validate=True) for k, v in raw["keys"].items()}
    sealed = raw.get("sealed", {})
    if not isinstance(sealed, dict) or not all(isinstance(v, str) for v in sealed.values()):
        raise ValueError("sealed entries")
    return Keyring(str(raw["current"]), keys, path, sealed)


def load(path: Path) -> Keyring:
    """Read the keyring file; ``KeyringError`` names the problem, never a key."""
    for attempt in range(READ_ATTEMPTS):
        try:
            with path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                text = fh.read()
        except FileNotFoundError:
            raise KeyringError(f"keyring file {path} does not exist") from None
        except OSError as exc:
            raise KeyringError(f"keyring file {path} is not valid ({type(exc).__name__})") \
                from None
        try:
            ring = _parse(text.decode(), path)
        except KeyringError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Read while it was being replaced (``save`` scrubs the old inode)? Read again.
            if _inode(path) == st.st_ino or attempt == READ_ATTEMPTS - 1:
                raise KeyringError(
                    f"keyring file {path} is not valid ({type(exc).__name__})") from None
            continue
        ring._stamp = (st.st_ino, st.st_mtime_ns)
        if st.st_mode & 0o077:
            log.warning("keyring file %s is readable by other users; chmod 600 it", path)
        return ring
    raise KeyringError(f"keyring file {path} could not be read")


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def save(ring: Keyring, path: Path) -> None:
    """Write atomically (temp file + fsync + rename + fsync of the directory, so a crash
    cannot bring back the old file) with owner-only permissions, then overwrite the replaced
    file's blocks with zeros: a destroyed key should not linger in free space on the disk.
    (Best effort: journaling, copy-on-write file systems and SSDs may keep old blocks; see
    docs/records.md.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(ring.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    try:
        old = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        old = None
    try:
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            size = os.fstat(old).st_size
            os.pwrite(old, bytes(size), 0)
            os.fsync(old)
    finally:
        if old is not None:
            os.close(old)
    ring.path = path
    st = path.stat()
    ring._stamp = (st.st_ino, st.st_mtime_ns)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create(path: Path) -> Keyring:
    """For the demo: the keyring at ``path``, created on first use."""
    if not path.exists():
        save(generate(path), path)
    return load(path)
