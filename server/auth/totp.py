"""Time-based one-time passwords (RFC 6238) for the staff second factor.

The shared secret is stored encrypted (AES-GCM with a key derived from CASA_SECRET_KEY), so
reading the staff table alone is not enough to mint codes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from urllib.parse import quote

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

DIGITS = 6
STEP_S = 30
# One step either side tolerates a phone clock that is up to 30 s off.
DRIFT_STEPS = 1
SECRET_BYTES = 20
ISSUER = "Casa"


def new_secret() -> bytes:
    return os.urandom(SECRET_BYTES)


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, DIGITS, SHA1(), STEP_S, enforce_key_length=False)  # noqa: S303 - RFC 6238


def current_code(secret: bytes, at: float | None = None) -> str:
    return _totp(secret).generate(int(at if at is not None else time.time())).decode()


def verify(secret: bytes, code: str, last_step: int | None, at: float | None = None) -> int | None:
    """The time step the code belongs to, or None. A step at or before ``last_step`` is
    refused so an observed code cannot be replayed."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = int(at if at is not None else time.time())
    t = _totp(secret)
    for delta in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        when = now + delta * STEP_S
        step = when // STEP_S
        if last_step is not None and step <= last_step:
            continue
        try:
            t.verify(code.encode(), when)
        except InvalidToken:
            continue
        return step
    return None


def provisioning_uri(secret: bytes, account: str) -> str:
    b32 = base64.b32encode(secret).decode().rstrip("=")
    return (f"otpauth://totp/{quote(ISSUER)}:{quote(account)}?secret={b32}"
            f"&issuer={quote(ISSUER)}&digits={DIGITS}&period={STEP_S}")


def display_secret(secret: bytes) -> str:
    b32 = base64.b32encode(secret).decode().rstrip("=")
    return " ".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def _wrap_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"casa-totp-v1:" + secret_key.encode()).digest()


def seal(secret: bytes, secret_key: str, staff_id: int) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_wrap_key(secret_key)).encrypt(nonce, secret, str(staff_id).encode())


def unseal(sealed: bytes, secret_key: str, staff_id: int) -> bytes:
    return AESGCM(_wrap_key(secret_key)).decrypt(sealed[:12], sealed[12:], str(staff_id).encode())
