"""The known-device cookie: proof that this browser signed in to an account before.

After a successful login the browser gets (or extends) the HttpOnly ``casa_device`` cookie, one
signed entry per account. An entry lets its owner past the per-account ceiling that an attacker
elsewhere has filled (docs/architecture.md, staff identity). An entry names no account: it is an
HMAC over the account's e-mail, the time it was issued and the account's current password hash,
so it reveals nothing on a shared kiosk, cannot be moved to another account, and a new password
voids every entry of the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

COOKIE = "casa_device"
# A device unused for three months is a stranger again.
MAX_AGE_S = 90 * 24 * 3600
# A kiosk shared by a whole team keeps the most recent few accounts.
MAX_ENTRIES = 8
MAC_CHARS = 32
_ENTRY = re.compile(rf"(\d{{1,12}})\.([0-9a-f]{{{MAC_CHARS}}})")


def _mac(secret_key: str, email: str, issued: int, password_hash: str) -> str:
    message = f"casa-device-v1\n{email.lower()}\n{issued}\n{password_hash}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:MAC_CHARS]


def _entries(value: str) -> list[tuple[int, str]]:
    found = []
    for part in value.split("~")[:MAX_ENTRIES]:
        m = _ENTRY.fullmatch(part)
        if m:
            found.append((int(m.group(1)), m.group(2)))
    return found


def is_known(value: str | None, secret_key: str, email: str, password_hash: str,
             now: float | None = None) -> bool:
    """Whether the cookie holds a live entry for this account."""
    if not value:
        return False
    now = time.time() if now is None else now
    for issued, mac in _entries(value):
        if now - issued > MAX_AGE_S:
            continue
        if hmac.compare_digest(mac, _mac(secret_key, email, issued, password_hash)):
            return True
    return False


def remember(value: str | None, secret_key: str, email: str, password_hash: str,
             now: float | None = None) -> str:
    """The cookie with a fresh entry for this account first, its old entry and the oldest
    beyond ``MAX_ENTRIES`` dropped."""
    issued = int(time.time() if now is None else now)
    kept = [f"{i}.{m}" for i, m in _entries(value or "")
            if issued - i <= MAX_AGE_S
            and not hmac.compare_digest(m, _mac(secret_key, email, i, password_hash))]
    entry = f"{issued}.{_mac(secret_key, email, issued, password_hash)}"
    return "~".join([entry, *kept][:MAX_ENTRIES])
