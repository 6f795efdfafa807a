"""Many consultations and many sockets at once, for the concurrency tests: consultations made
in bulk (a few statements per batch, not a dozen round trips each), and a socket that keeps
every frame it got and how it was closed, so a close with no catalogued reason shows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from server import centres
from server.consultations.store import hash_credential, new_room_id
from tests.signaling.conftest import Visit

INSERT_PATIENTS = """
INSERT INTO patients (given_name, family_name, date_of_birth, language)
SELECT 'Ada', tag, date '1950-03-01', 'it' FROM unnest($1::text[]) AS tag
RETURNING id, family_name
"""
# One-minute bookings one after another per clinician (the database refuses a clinician in two
# live bookings at once); the join window, stored apart, is open now for all of them.
INSERT_BOOKINGS = """
INSERT INTO bookings (centre_id, service_code, mode, patient_id, clinician_id, during, status)
SELECT 'san-siro', 'gp_visit', 'home_video', p, c, tstzrange(s, s + interval '1 minute'),
       'booked'
FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS t(p, c, s)
RETURNING id, patient_id, clinician_id
"""
INSERT_CONSULTATIONS = """
INSERT INTO consultations (booking_id, room_id, join_opens_at, join_closes_at)
SELECT b, r, $3, $4 FROM unnest($1::bigint[], $2::text[]) AS t(b, r)
RETURNING id, booking_id, room_id
"""
INSERT_LINKS = """
INSERT INTO patient_credentials (consultation_id, kind, token_hash, valid_from, valid_until)
SELECT c, 'link', h, $3, $4 FROM unnest($1::bigint[], $2::bytea[]) AS t(c, h)
"""


class Consultations:
    """Makes video consultations in bulk, each with its own patient and invitation link, their
    join windows open now, spread over the given clinicians."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self._slots: dict[int, int] = {}   # next free minute per clinician
        self._made = 0
        self._synced = False

    async def make(self, clinician_ids: list[int], n: int) -> list[Visit]:
        now = datetime.now(UTC)
        base = now + timedelta(minutes=2)
        tags, owners, starts = [], [], []
        for i in range(n):
            self._made += 1
            staff_id = clinician_ids[i % len(clinician_ids)]
            slot = self._slots.get(staff_id, 0)
            self._slots[staff_id] = slot + 1
            tags.append(f"Crowd{self._made}")
            owners.append(staff_id)
            starts.append(base + timedelta(minutes=slot))
        conn = await asyncpg.connect(self.db_url)
        try:
            if not self._synced:
                await centres.sync(conn, centres.load_data())
                self._synced = True
            async with conn.transaction():
                by_tag = {r["family_name"]: r["id"]
                          for r in await conn.fetch(INSERT_PATIENTS, tags)}
                patient_ids = [by_tag[t] for t in tags]
                bookings = {r["patient_id"]: (r["id"], r["clinician_id"])
                            for r in await conn.fetch(INSERT_BOOKINGS, patient_ids, owners,
                                                      starts)}
                booking_ids = [bookings[p][0] for p in patient_ids]
                rooms = [new_room_id() for _ in booking_ids]
                opens, closes = now - timedelta(hours=1), now + timedelta(hours=3)
                made = {r["booking_id"]: (r["id"], r["room_id"])
                        for r in await conn.fetch(INSERT_CONSULTATIONS, booking_ids, rooms,
                                                  opens, closes)}
                tokens = [secrets.token_urlsafe(32) for _ in booking_ids]
                cids = [made[b][0] for b in booking_ids]
                await conn.execute(INSERT_LINKS, cids, [hash_credential(t) for t in tokens],
                                   opens, closes)
        finally:
            await conn.close()
        return [Visit(made[b][0], b, made[b][1], token, p, bookings[p][1])
                for b, token, p in zip(booking_ids, tokens, patient_ids, strict=True)]


def address(i: int) -> str:
    """A distinct client address (sent as X-Forwarded-For through a trusted proxy): a crowd
    arrives from many homes, not from one host that the per-address caps would stop."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


CLOSED = frozenset({aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR})


@dataclass
class Closed(Exception):
    code: int | None


class Sock:
    """One client socket that keeps every frame it received, and whether the server closed it
    with a reason: a fatal ``error`` or ``ended`` as the last frame before the close."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
        self.ws = ws
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}
        self.closed_by_server = False
        self.close_code: int | None = None
        self._closing = False
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, url: str, name: str, *,
                   forwarded: str | None = None, staff_session: str | None = None,
                   within: float = 10.0) -> Sock:
        headers = {}
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        if staff_session is not None:
            headers["Cookie"] = f"casa_session={staff_session}"
        ws = await asyncio.wait_for(session.ws_connect(url, headers=headers, heartbeat=None,
                                                       max_msg_size=1 << 20), within)
        return cls(ws, name)

    async def send(self, kind: str, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"type": kind, **fields}))

    def hello_text(self, **fields: Any) -> str:
        return json.dumps({"type": "hello", "version": 1, **fields})

    async def recv(self, within: float) -> dict[str, Any]:
        """The next frame; ``Closed`` once the socket is closed, TimeoutError after ``within``."""
        try:
            # Not ``receive(timeout=...)``: aiohttp restarts that timeout after every ping it
            # answers, and the server pings every 10 s, so a longer wait would never end.
            async with asyncio.timeout(max(within, 0.001)):
                msg = await self.ws.receive()
        except (aiohttp.ClientError, ConnectionError):   # e.g. answering a ping as it closed
            msg = aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
        if msg.type == aiohttp.WSMsgType.TEXT:
            frame: dict[str, Any] = json.loads(msg.data)
            self.frames.append(frame)
            if frame.get("type") == "welcome":
                self.welcome = frame
            return frame
        if msg.type in CLOSED:
            if not self._closing:
                self.closed_by_server = True
            self.close_code = self.ws.close_code
            raise Closed(self.close_code)
        raise AssertionError(f"{self.name}: unexpected frame {msg.type}")

    async def until(self, kinds: set[str], deadline: float) -> dict[str, Any]:
        """The next frame of one of ``kinds`` (others are kept in ``frames`` only)."""
        while True:
            frame = await self.recv(deadline - time.monotonic())
            if frame.get("type") in kinds:
                return frame

    @property
    def bare_close(self) -> bool:
        """Closed by the server with no fatal ``error`` or ``ended`` just before."""
        if not self.closed_by_server:
            return False
        last = self.frames[-1] if self.frames else {}
        return not ((last.get("type") == "error" and last.get("fatal"))
                    or last.get("type") == "ended")

    def keep_reading(self) -> None:
        """Read (and keep) frames in the background until ``stop_reading``: a socket nobody
        reads does not answer the server's pings and is rightly closed as dead."""
        async def read() -> None:
            with contextlib.suppress(Closed):
                while True:
                    await self.recv(3600)

        self._reader = asyncio.ensure_future(read())

    async def closed(self) -> None:
        """Until the background reader has seen the socket close."""
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def stop_reading(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None

    async def settle(self, within: float = 0.05) -> None:
        """Read whatever is already on its way (so a close that came with it is seen)."""
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                await self.recv(deadline - time.monotonic())
        except (TimeoutError, Closed):
            pass

    async def close(self) -> None:
        await self.stop_reading()
        self._closing = True
        if not self.ws.closed:
            await self.ws.close()


def connector_session() -> aiohttp.ClientSession:
    """One client session for hundreds of sockets: no connection cap (a WebSocket holds its
    connection for good), no shared cookies (each socket sends its own)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 cookie_jar=aiohttp.DummyCookieJar())
