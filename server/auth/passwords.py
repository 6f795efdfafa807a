"""Argon2id password hashes in PHC string form (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``)."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

# RFC 9106's second recommended option (64 MiB, 3 passes): ~50 ms here, affordable at login
# rates and expensive for an attacker with a stolen table.
MEMORY_KIB = 64 * 1024
ITERATIONS = 3
LANES = 4
SALT_BYTES = 16
HASH_BYTES = 32
# Long inputs are refused to bound the work one login request can cause.
MAX_PASSWORD_CHARS = 1024
MIN_PASSWORD_CHARS = 10


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    kdf = Argon2id(salt=os.urandom(SALT_BYTES), length=HASH_BYTES, iterations=ITERATIONS,
                   lanes=LANES, memory_cost=MEMORY_KIB)
    return kdf.derive_phc_encoded(password.encode())


def verify_password(password: str, encoded: str) -> bool:
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        Argon2id.verify_phc_encoded(password.encode(), encoded)
    except (InvalidKey, ValueError):
        return False
    return True


# Verified against when the account does not exist, so a login for an unknown address costs
# as much time as one for a known address and does not reveal which addresses exist.
DUMMY_HASH = hash_password("not-a-real-password-0000")
