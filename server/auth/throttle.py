"""Atomic attempt counters for logins, second factors and join codes, in PostgreSQL so every
instance behind a load balancer sees the same counts.

An attempt is *reserved* before its password or code is checked: one UPSERT per key takes the
row lock, and only when the key still has room does it count the attempt. Parallel attempts on
one key queue on that row, so a burst can never check more than the limit (a count followed by
an insert let 150 parallel logins check 118 passwords against a limit of 30). A key refused by
its rule is not counted; keys reserved together are taken in one transaction, all or none.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web

from server import background
from server.keys import POOL

log = logging.getLogger("casa.auth.throttle")

# Tests set a clock here to step through delays without sleeping.
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("throttle_clock")


def current_time(app: web.Application) -> datetime:
    clock = app.get(CLOCK)
    return clock() if clock is not None else datetime.now(UTC)


# Rows quiet this long are deleted by ``purge``.
FORGET = timedelta(days=1)
# Exponents above this would only overflow: 2**20 s is far beyond any cap.
MAX_DOUBLINGS = 20


@dataclass(frozen=True)
class Rule:
    """How attempts on one kind of key are limited: at most ``limit`` per ``window``, and after
    ``free`` attempts each further one waits ``base`` doubled per attempt, up to ``cap``."""

    prefix: str
    window: timedelta
    limit: int
    free: int = 1_000_000
    base: timedelta = timedelta(0)
    cap: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.limit < 1 or self.free < 0 or self.window <= timedelta(0):
            raise ValueError(f"rule {self.prefix!r} cannot allow any attempt")

    def key(self, subject: str) -> str:
        return f"{self.prefix}:{subject}"


@dataclass(frozen=True)
class Refused:
    """The reservation was refused by ``rule``; nothing was counted."""

    rule: Rule
    retry_after: int


# The attempt number n this reservation makes: 1 once the window has passed, else one more.
_N = ("(CASE WHEN t.window_start <= $2::timestamptz - $3::interval THEN 1 "
      "ELSE t.attempts + 1 END)")
# Its delay before the next attempt: none for the free attempts, then base * 2^(n - free - 1),
# at most cap.
_DELAY = ("(CASE WHEN {n} <= $5::int THEN interval '0' ELSE least($7::interval, "
          "$6::interval * power(2, least({n} - $5::int - 1, $8::int))) END)")
RESERVE = f"""
INSERT INTO login_throttle AS t (key, attempts, window_start, next_at, last_at)
VALUES ($1, 1, $2::timestamptz, $2::timestamptz + {_DELAY.format(n="1")}, $2::timestamptz)
ON CONFLICT (key) DO UPDATE SET
    attempts = {_N},
    window_start = CASE WHEN t.window_start <= $2::timestamptz - $3::interval
                        THEN $2::timestamptz ELSE t.window_start END,
    next_at = $2::timestamptz + {_DELAY.format(n=_N)},
    last_at = $2::timestamptz
WHERE (t.window_start <= $2::timestamptz - $3::interval OR t.attempts < $4::int)
  AND t.next_at <= $2::timestamptz
RETURNING attempts
"""
STATE = "SELECT attempts, window_start, next_at FROM login_throttle WHERE key = $1"
# A success gives its own reserved attempt back.
REFUND = "UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key = $1"
# A success from a pair forgets that pair's failures and delays.
CLEAR = "DELETE FROM login_throttle WHERE key = $1"
PURGE = """
DELETE FROM login_throttle
WHERE last_at < $1::timestamptz - $2::interval AND next_at < $1::timestamptz
"""


async def _reserve_one(conn: asyncpg.Connection, rule: Rule, subject: str,
                       now: datetime) -> Refused | None:
    key = rule.key(subject)
    got = await conn.fetchval(RESERVE, key, now, rule.window, rule.limit, rule.free, rule.base,
                              rule.cap, MAX_DOUBLINGS)
    if got is not None:
        return None
    r = await conn.fetchrow(STATE, key)
    wait = (r["next_at"] - now).total_seconds()
    if r["attempts"] >= rule.limit:
        wait = max(wait, (r["window_start"] + rule.window - now).total_seconds())
    return Refused(rule, max(1, int(wait) + (wait % 1 > 0)))


async def reserve(conn: asyncpg.Connection, keys: Sequence[tuple[Rule, str]],
                  now: datetime) -> Refused | None:
    """Count one attempt on every key, or on none: the first refusal, or None when the attempt
    may go ahead. Callers pass the keys of one kind of attempt in a fixed order, so two
    requests never wait on each other's rows in opposite orders."""
    try:
        async with conn.transaction():
            for rule, subject in keys:
                refused = await _reserve_one(conn, rule, subject, now)
                if refused is not None:
                    # Roll back the keys already counted: this attempt is not made.
                    raise _Rollback(refused)
    except _Rollback as rollback:
        return rollback.refused
    return None


class _Rollback(Exception):
    def __init__(self, refused: Refused) -> None:
        self.refused = refused


async def refund(conn: asyncpg.Connection, rule: Rule, subject: str) -> None:
    await conn.execute(REFUND, rule.key(subject))


async def clear(conn: asyncpg.Connection, rule: Rule, subject: str) -> None:
    await conn.execute(CLEAR, rule.key(subject))


async def purge(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> None:
    """Forget keys quiet for ``FORGET`` whose delays have run out: a storm from many addresses
    leaves a row per address behind."""
    await conn.execute(PURGE, now, FORGET)


# Often enough that a day's storm is gone the next day; rare enough to cost nothing.
PURGE_EVERY_S = 3600.0


def setup(app: web.Application) -> None:
    async def purger(app: web.Application) -> AsyncIterator[None]:
        async with background.running("login throttle") as tasks:
            tasks.every(PURGE_EVERY_S, lambda: purge(app[POOL], current_time(app)),
                        "login_throttle purge", first_after=PURGE_EVERY_S)
            yield

    app.cleanup_ctx.append(purger)
