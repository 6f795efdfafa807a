"""The cross-instance bus: room events travel through PostgreSQL LISTEN/NOTIFY.

One dedicated connection listens (not a pooled one held forever) and one publishes, so the
events of one instance arrive everywhere in the order they were sent. Both reconnect when lost;
after a reconnect the hub re-reads room state from the database, since notifications sent
meanwhile are gone. Every payload is sealed, in sequence (``signaling.envelope``): chat, SDP
and candidates never lie in clear in PostgreSQL's notification queue. Events too large for one
NOTIFY travel by reference through ``signaling_relay``, sealed (``signaling.seal``) and
deleted as soon as the instances meant to read them have: the instance holding the target's
socket for a relay to one peer, every live instance otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from server.background import Background
from signaling import envelope, events, relaystore, seal
from signaling.envelope import Envelope, EnvelopeError
from signaling.events import BusEvent, Ref, Resync

log = logging.getLogger("casa.signaling.bus")

CHANNEL = "casa_signal"
# Staff sessions that stopped being live (migration 0311): the payload is a staff id.
SESSION_CHANNEL = "casa_session"
# One round trip carries up to this many notifications.
MAX_BATCH = 200
# Reconnect backoff after losing the database.
RECONNECT_DELAYS_S = (0.1, 0.5, 1.0, 2.0, 5.0)

EventHandler = Callable[[BusEvent], Awaitable[None]]
ResyncHandler = Callable[[], Awaitable[None]]
RejectHandler = Callable[[str], None]
SessionHandler = Callable[[int], None]
Connect = Callable[[], Awaitable[asyncpg.Connection]]


class Outbox:
    """Events waiting to be published: what the rest of signalling holds to publish (it never
    waits: the bus's publishing task drains it)."""

    def __init__(self) -> None:
        # (encoded event, the one instance that needs it or None for all)
        self.queue: asyncio.Queue[tuple[bytes, str | None]] = asyncio.Queue()

    def publish(self, event: BusEvent, reader: str | None = None) -> None:
        """Queue an event for every other instance. ``reader``: the only instance that needs
        it (a relay to a peer whose socket is there), so that a large one stored in the
        database is deleted as soon as that instance has read it."""
        self.queue.put_nowait((events.encode(event), reader))


class Bus:
    """Publish the outbox's events to every instance; deliver the others' events to
    ``on_event`` in order."""

    def __init__(self, pool: asyncpg.Pool, connect: Connect, instance_id: str, outbox: Outbox,
                 on_event: EventHandler, on_resync: ResyncHandler, secret_key: str,
                 on_rejected: RejectHandler = lambda _reason: None,
                 on_session: SessionHandler = lambda _staff_id: None) -> None:
        self.pool = pool
        self.on_session = on_session
        self.connect = connect
        self.instance_id = instance_id
        self.on_event = on_event
        self.on_resync = on_resync
        self.on_rejected = on_rejected
        self.envelope = Envelope(secret_key, CHANNEL, instance_id)
        self._key = seal.relay_key(secret_key)
        self._outbox = outbox.queue
        # (payload, when it arrived)
        self._inbox: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
        # The three loops; one that died of an unexpected error is logged, not lost.
        self._tasks = Background("bus")
        self._listener: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._tasks.spawn(self._listen_forever(), "listening")
        self._tasks.spawn(self._publish_forever(), "publishing")
        self._tasks.spawn(self._consume_forever(), "consuming")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 10)

    async def stop(self) -> None:
        await self._tasks.close()
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(Exception):
                await self._listener.close()

    # --- listening ---

    async def _listen_forever(self) -> None:
        attempt = 0
        while True:
            try:
                conn = await self.connect()
                self._lost.clear()
                conn.add_termination_listener(lambda _c: self._lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                await conn.add_listener(SESSION_CHANNEL, self._on_session)
                self._listener = conn
                resync = attempt > 0
                attempt = 0
                self.connected.set()
                if resync:
                    await self.on_resync()
                await self._lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus connection failed", extra={"error": type(exc).__name__})
            self.connected.clear()
            delay = RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)]
            attempt += 1
            await asyncio.sleep(delay)

    def _on_session(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self.on_session(int(payload))

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._inbox.put_nowait((payload, time.time()))

    async def _consume_forever(self) -> None:
        while True:
            payload, received_at = await self._inbox.get()
            try:
                opened = self.envelope.open(payload, received_at)
            except EnvelopeError as exc:
                # Never the payload itself in the log: it may be a tampered chat.
                log.warning("bus payload refused", extra={"reason": exc.reason})
                self.on_rejected(exc.reason)
                continue
            if opened is None:   # our own
                continue
            sender, body = opened
            try:
                event = events.decode(body)
                if isinstance(event, Resync):   # another instance lost some of its events
                    await self.on_resync()
                    continue
                if isinstance(event, Ref):
                    loaded = await self._load(event, sender)
                    if loaded is None:
                        continue
                    event = loaded
                await self.on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("bus event failed")

    async def _load(self, ref: Ref, sender: str) -> BusEvent | None:
        """The event a reference stands for, or None when it is not for this instance (or
        already purged)."""
        reader = ref.r
        if reader is not None and reader != self.instance_id:
            return None
        relay_id = ref.ref
        if reader is not None:
            sealed = await relaystore.take_relay(self.pool, relay_id)
        else:
            sealed = await relaystore.read_relay(self.pool, relay_id)
        if sealed is None:
            return None
        return events.decode(seal.unseal(self._key, sealed, _context(sender, reader)))

    # --- publishing ---

    async def _publish_forever(self) -> None:
        conn: asyncpg.Connection | None = None
        attempt = 0
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < MAX_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            while True:
                try:
                    if conn is None or conn.is_closed():
                        conn = await self.connect()
                    await self._send(conn, batch)
                    attempt = 0
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("bus publish failed", extra={"error": type(exc).__name__})
                    conn = None
                    await asyncio.sleep(RECONNECT_DELAYS_S[min(attempt,
                                                               len(RECONNECT_DELAYS_S) - 1)])
                    attempt += 1
                    if attempt > len(RECONNECT_DELAYS_S):
                        # Drop this batch, and once publishing works again tell the other
                        # instances to re-read from the database what it said.
                        self._outbox.put_nowait((events.encode(Resync()), None))
                        break

    async def _send(self, conn: asyncpg.Connection,
                    batch: list[tuple[bytes, str | None]]) -> None:
        out = []
        for body, reader in batch:
            if len(body) > envelope.MAX_BODY_BYTES:
                readers = 1 if reader is not None else max(
                    1, await relaystore.other_instances(conn, self.instance_id))
                sealed = seal.seal(self._key, body, _context(self.instance_id, reader))
                ref = await relaystore.store_relay(conn, sealed, readers)
                body = events.encode(Ref(ref=ref, r=reader))
            out.append(self.envelope.seal(body))
        await conn.execute("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", CHANNEL, out)


def _context(sender: str, reader: str | None) -> str:
    """What a sealed relay is bound to: who stored it, for whom."""
    return f"casa-relay|{sender}|{reader or '*'}"
