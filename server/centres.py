"""Centres: the five C.a.s.a. centres, loaded from ``server/data/centres.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

DATA_FILE = Path(__file__).parent / "data" / "centres.json"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Centre:
    id: str
    name: str
    address: str
    phone: str | None
    opening_hours: dict[str, list[list[str]]]

    @property
    def phone_text(self) -> str | None:
        """The number as people read it aloud (server.centres.phone_text)."""
        return phone_text(self.phone) if self.phone else None

    @property
    def phone_uri(self) -> str | None:
        """``tel:`` with the number in international form, for a link that dials it."""
        return phone_uri(self.phone) if self.phone else None

    def __post_init__(self) -> None:
        for day, ranges in self.opening_hours.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r} in opening hours of {self.id}")
            for start, end in ranges:
                if not start < end:
                    raise ValueError(f"opening hours of {self.id} on {day}: {start} >= {end}")


ITALY = "+39"


def phone_uri(phone: str) -> str:
    """``tel:+390200000101`` (RFC 3966's global number: it dials from a foreign SIM too)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"tel:+{digits}" if phone.strip().startswith("+") else f"tel:{digits}"


def phone_text(phone: str) -> str:
    """An Italian number as it is written at home (``02 0000 0101``: the prefix dropped, the
    groups kept); a foreign one as it is."""
    text = " ".join(phone.split())
    if text.startswith(ITALY + " "):
        return text[len(ITALY) + 1:]
    return text


def load_data(path: Path = DATA_FILE) -> list[Centre]:
    raw: list[dict[str, Any]] = json.loads(path.read_text())
    return [Centre(c["id"], c["name"], c["address"], c.get("phone"), c["opening_hours"])
            for c in raw]


UPSERT = """
INSERT INTO centres (id, name, address, phone, opening_hours) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address,
    phone = EXCLUDED.phone, opening_hours = EXCLUDED.opening_hours
"""
# One writer at a time: the upsert arbitrates on the id only, so two instances starting together
# could both pass the id check and the second then fail on the first's uncommitted unique name.
SYNC_LOCK_ID = 0x0CA5A002
LOCK = "SELECT pg_advisory_xact_lock($1)"
LIST = "SELECT id, name, address, phone, opening_hours FROM centres ORDER BY name"
GET = "SELECT id, name, address, phone, opening_hours FROM centres WHERE id = $1"


async def sync(conn: asyncpg.Connection, items: list[Centre]) -> None:
    """Insert or update the centres from data; idempotent, and safe to run from several
    connections at once (inside the caller's transaction, if any)."""
    async with conn.transaction():
        await conn.execute(LOCK, SYNC_LOCK_ID)
        for c in items:
            await conn.execute(UPSERT, c.id, c.name, c.address, c.phone,
                               json.dumps(c.opening_hours))


async def ensure_loaded(pool: asyncpg.Pool) -> None:
    """Bring the centres table in line with the data file; run at every start."""
    async with pool.acquire() as conn:
        await sync(conn, load_data())


async def list_all(conn: asyncpg.Connection | asyncpg.Pool) -> list[Centre]:
    return [Centre(r["id"], r["name"], r["address"], r["phone"], json.loads(r["opening_hours"]))
            for r in await conn.fetch(LIST)]


async def get(conn: asyncpg.Connection | asyncpg.Pool, centre_id: str) -> Centre | None:
    r = await conn.fetchrow(GET, centre_id)
    return Centre(r["id"], r["name"], r["address"], r["phone"],
                  json.loads(r["opening_hours"])) if r else None
