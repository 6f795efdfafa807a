"""The keyring of key-encryption keys (KEKs), kept in a file and never in the database.

File format (JSON, mode 0600)::

    {"version": 1, "current": "k20261127-3f9a", "keys": {"k20261127-3f9a": "<base64 32 bytes>"}}

The current key wraps new data keys; older keys stay to unwrap what is not re-wrapped yet and
old backups. A running server re-reads the file when it changes (``refresh``), so ``casa keys
rotate`` takes effect without a restart.
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

from records.errors import KeyringError, UnknownKeyError

log = logging.getLogger("casa.records")
KEY_BYTES = 32  # AES-256
KEY_ID_RE = re.compile(r"^[a-z0-9-]{4,40}$")


def new_key_id() -> str:
    """Dated for people reading the file, random so two rotations never collide."""
    return f"k{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(3)}"


@dataclass
class Keyring:
    """Key id -> 32-byte key, one of them current; optionally backed by a file."""

    current: str
    keys: dict[str, bytes]
    path: Path | None = None
    _stamp: tuple[int, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for kid, key in self.keys.items():
            if not KEY_ID_RE.match(kid) or len(key) != KEY_BYTES:
                raise KeyringError(f"keyring entry {kid!r} is malformed")
        if self.current not in self.keys:
            raise KeyringError("keyring's current key id is not among its keys")

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
            fresh = load(self.path)
            self.current, self.keys, self._stamp = fresh.current, fresh.keys, fresh._stamp

    def with_new_key(self) -> tuple[Keyring, str]:
        """A copy with a fresh key made current."""
        kid = new_key_id()
        while kid in self.keys:
            kid = new_key_id()
        keys = {**self.keys, kid: secrets.token_bytes(KEY_BYTES)}
        return Keyring(kid, keys, self.path), kid

    def to_json(self) -> str:
        return json.dumps({"version": 1, "current": self.current,
                           "keys": {k: base64.b64encode(v).decode() for k, v in
                                    sorted(self.keys.items())}}, indent=2)


def generate(path: Path | None = None) -> Keyring:
    kid = new_key_id()
    return Keyring(kid, {kid: secrets.token_bytes(KEY_BYTES)}, path)


def load(path: Path) -> Keyring:
    """Read the keyring file; ``KeyringError`` names the problem, never a key."""
    try:
        st = path.stat()
        raw = json.loads(path.read_text())
        keys = {str(k): base64.b64decode(v, validate=True) for k, v in raw["keys"].items()}
        ring = Keyring(str(raw["current"]), keys, path)
    except FileNotFoundError:
        raise KeyringError(f"keyring file {path} does not exist") from None
    except KeyringError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyringError(f"keyring file {path} is not valid ({type(exc).__name__})") from None
    ring._stamp = (st.st_ino, st.st_mtime_ns)
    if st.st_mode & 0o077:
        log.warning("keyring file %s is readable by other users; chmod 600 it", path)
    return ring


def save(ring: Keyring, path: Path) -> None:
    """Write atomically (temp file + rename) with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(ring.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    ring.path = path
    st = path.stat()
    ring._stamp = (st.st_ino, st.st_mtime_ns)


def load_or_create(path: Path) -> Keyring:
    """For the demo: the keyring at ``path``, created on first use."""
    if not path.exists():
        save(generate(path), path)
    return load(path)
