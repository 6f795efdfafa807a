"""Anchors: the audit chain's head, kept outside the database.

The hash chain finds an edited or deleted row by the rows after it, but nothing comes after the
newest rows: someone able to bypass the append-only triggers could delete the tail and the chain
would still verify. An anchor is ``(row id, row hash)`` copied somewhere the database's owner
cannot rewrite: the server writes one to its log every ``ANCHOR_EVERY_S`` (logs are shipped off
the machine), and ``casa audit anchor`` prints one for a cron job to append to a file elsewhere.
``casa audit verify --anchors FILE`` then checks that every anchored row is still there with the
same hash: a missing tail, or a rewritten chain, is reported with the anchor that proves it.

An anchor holds an id and a SHA-256 only: nothing about any patient.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from server import background
from server.keys import POOL

log = logging.getLogger("casa.audit")

ANCHOR_EVERY_S = 15 * 60
# A failed anchor is tried again after this, doubling up to ANCHOR_EVERY_S.
RETRY_S = 60.0
PREFIX = "casa-audit-anchor"
_LINE = re.compile(rf"^{PREFIX} id=(\d+) hash=([0-9a-f]{{64}}) at=(\S+)$")


@dataclass(frozen=True)
class Anchor:
    id: int
    hash: str  # hex
    at: str  # when it was taken (ISO 8601, UTC), for people reading the file

    def line(self) -> str:
        return f"{PREFIX} id={self.id} hash={self.hash} at={self.at}"


class AnchorFileError(ValueError):
    """A line of an anchors file that is neither an anchor nor a log line holding one."""


HEAD = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"


async def head(conn: asyncpg.Connection | asyncpg.Pool) -> Anchor | None:
    """The newest row as an anchor; None while the log is empty."""
    r = await conn.fetchrow(HEAD)
    if r is None:
        return None
    return Anchor(r["id"], bytes(r["hash"]).hex(),
                  datetime.now(UTC).isoformat(timespec="seconds"))


def parse(lines: Iterable[str]) -> list[Anchor]:
    """Anchors from ``casa audit anchor`` lines and/or Casa's JSON log lines; any other line is
    ignored, so a whole log file can be given. Raises AnchorFileError for an anchor line that is
    malformed (with its number) and for a file holding no anchor at all."""
    found: list[Anchor] = []
    for n, raw in enumerate(lines, 1):
        text = raw.strip()
        if text.startswith("{"):
            try:
                rec = json.loads(text)
            except ValueError:
                continue  # not one of our lines
            if not (isinstance(rec, dict) and rec.get("msg") == "audit_anchor"):
                continue
            text = str(rec.get("anchor", ""))
        elif not text.startswith(PREFIX):
            continue
        m = _LINE.match(text)
        if m is None:
            raise AnchorFileError(f"line {n} is not a well-formed audit anchor")
        found.append(Anchor(int(m[1]), m[2], m[3]))
    if not found:
        raise AnchorFileError("it holds no audit anchor")
    return found


@dataclass(frozen=True)
class AnchorCheck:
    checked: int
    failed: Anchor | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.failed is None


HASH_OF = "SELECT hash FROM audit_log WHERE id = $1"


async def check(conn: asyncpg.Connection, anchors: Iterable[Anchor]) -> AnchorCheck:
    """Every anchored row must still exist with the anchored hash. Because each hash covers the
    whole chain before it, a passing anchor plus a verified chain proves the log up to it."""
    n = 0
    for a in sorted(anchors, key=lambda x: x.id):
        n += 1
        stored = await conn.fetchval(HASH_OF, a.id)
        if stored is None:
            return AnchorCheck(n, a, f"row id {a.id} anchored at {a.at} is missing (rows at the "
                                     "end of the log were deleted)")
        if bytes(stored).hex() != a.hash:
            return AnchorCheck(n, a, f"row id {a.id} no longer has the hash anchored at {a.at} "
                                     "(the chain was rewritten)")
    return AnchorCheck(n)


async def log_anchors(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: log the chain's head at start and every ANCHOR_EVERY_S while serving. A
    failed anchor (the database briefly away, or anything else) is logged by the background
    helper and tried again a minute later, then less often."""
    last: int | None = None

    async def step() -> None:
        nonlocal last
        a = await head(app[POOL])
        if a is not None and a.id != last:
            log.info("audit_anchor", extra={"anchor": a.line()})
            last = a.id

    async with background.running("audit") as tasks:
        tasks.every(ANCHOR_EVERY_S, step, "audit anchor", backoff_first=RETRY_S,
                    backoff_max=ANCHOR_EVERY_S)
        yield
