"""The staff login policy: slow the attacker, not the owner.

Every password attempt is counted before its password is checked (server.auth.throttle), on
three keys, in this order:

- the client address: at most ``IP.limit`` per window, as a net for one address spraying many
  accounts;
- the (address, account) pair: a few attempts free, then each further one waits twice as long
  as the one before (answered 429 with Retry-After, nothing is held server-side while waiting);
  a success from the pair forgets its failures; a known device is a pair of its own;
- the account, from everywhere: past ``ACCOUNT.limit`` in a window the account is not locked,
  it asks for more than a password: a browser that signed in to it before (the known-device
  cookie, server.auth.devices) or a correct second-factor code with the password. Attempts from
  a known device are not counted here at all, so an attacker cannot fill the owner's budget.
"""

from __future__ import annotations

from datetime import timedelta

from server.auth.throttle import Rule

# A centre's kiosk network is shared by many staff: a generous ceiling per address.
IP = Rule("ip", window=timedelta(minutes=15), limit=30)
# Three typos are free; then 2 s, 4 s, 8 s ... at most a quarter of an hour between tries from
# one address on one account. The pair is forgotten after a quiet day.
PAIR = Rule("pair", window=timedelta(days=1), limit=100_000, free=3,
            base=timedelta(seconds=2), cap=timedelta(minutes=15))
# Past ten failures from anywhere in a quarter of an hour, the password alone is not enough.
ACCOUNT = Rule("account", window=timedelta(minutes=15), limit=10)
# Second-factor codes: a million codes, five tries per window per account.
TOTP = Rule("totp", window=timedelta(minutes=15), limit=5)


def pair_subject(ip: str, email: str, *, known_device: bool) -> str:
    # A known device has a pair of its own: an attacker behind the same address (a centre's
    # shared network) does not delay the owner's own browser.
    return f"{ip}|{email.lower()}" + ("|known" if known_device else "")


def login_keys(ip: str, email: str, *, known_device: bool,
               count_account: bool) -> list[tuple[Rule, str]]:
    """The keys one password attempt is counted on, in the fixed order every request uses."""
    keys = [(IP, ip), (PAIR, pair_subject(ip, email, known_device=known_device))]
    if count_account:
        keys.append((ACCOUNT, email.lower()))
    return keys
