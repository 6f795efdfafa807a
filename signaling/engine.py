"""The signalling engine of one instance, put together: each part receives its collaborators
when it is made, in this order (no part reaches for another later, none imports a part made
after it):

    Outbox -> Hub -> Views, Probes -> Arrivals, Departures, Actions -> Handlers, Inbound
    -> Watch -> Bus (publishes the outbox, delivers to Inbound and Watch)

``start`` and ``stop`` run with the app (``signaling.setup``); ``shutdown`` runs in aiohttp's
``on_shutdown``, while the socket handlers still run, so every client hears
``server_shutdown`` and a 1001 close before anything is torn down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
from prometheus_client import CollectorRegistry

from server.background import Background
from server.config import Config
from signaling import conn as conn_module
from signaling import errors, presence
from signaling.actions import Actions
from signaling.arrivals import Arrivals
from signaling.bus import Bus, Outbox
from signaling.departures import Departures
from signaling.directory import Directory
from signaling.handlers import Handlers
from signaling.hub import Hub
from signaling.inbound import Inbound
from signaling.media import MediaReports
from signaling.metrics import SignalMetrics
from signaling.notices import NoticeText
from signaling.probes import Probes
from signaling.rooms import Socket
from signaling.safety import Safety
from signaling.views import Views
from signaling.watch import Watch

log = logging.getLogger("casa.signaling")

# How long shutdown waits for the clients' close handshakes before the sockets are dropped.
SHUTDOWN_CLOSE_S = 2.0


class Engine:
    """Signalling on one instance."""

    def __init__(self, *, pool: asyncpg.Pool,
                 connect: Callable[[], Awaitable[asyncpg.Connection]], config: Config,
                 registry: CollectorRegistry, directory: Directory, notice_text: NoticeText,
                 grace_s: float = presence.GRACE_S,
                 write_deadline_s: float = conn_module.WRITE_DEADLINE_S,
                 hello_timeout_s: float = conn_module.HELLO_TIMEOUT_S) -> None:
        self.pool = pool
        self.write_deadline_s = write_deadline_s
        # How long a new socket has to say hello; read for each socket, so a test may set it.
        self.hello_timeout_s = hello_timeout_s
        self.background = Background("signaling")
        self.outbox = Outbox()
        self.metrics = SignalMetrics(registry)
        self.hub = Hub(self.metrics, self.outbox)
        self.views = Views(pool, directory)
        self.probes = Probes(self.hub)
        self.arrivals = Arrivals(pool, config, self.hub, self.views, directory, self.probes)
        self.departures = Departures(pool, self.hub, self.views, directory, self.probes,
                                     self.background, grace_s)
        self.actions = Actions(pool, self.hub, self.views, directory, notice_text)
        self.safety = Safety(pool, self.hub, directory, config.secret_key)
        self.handlers = Handlers(self.hub, self.actions, self.departures, self.safety,
                                 MediaReports(pool, directory))
        self.inbound = Inbound(self.hub, self.views, self.probes)
        # One bound method for every socket (``Conn.on_gone``), not one per socket.
        self.on_socket_gone = self.socket_gone
        self.watch = Watch(pool, self.hub, self.departures,
                           timedelta(minutes=config.session_idle_minutes), self.background)
        self.bus = Bus(pool, connect, self.hub.instance_id, self.outbox, self.inbound.on_event,
                       self._resync, config.secret_key,
                       on_rejected=lambda reason: self.metrics.bus_rejected.labels(reason).inc(),
                       on_session=self.watch.session_ended)

    def socket_gone(self, conn: Socket) -> None:
        """A socket given up on (too slow, no answer): untracked, and its drop recorded now
        rather than once its transport is finally closed."""
        self.hub.untrack(conn)
        self.background.spawn(self.departures.dropped(conn), "recording a dropped socket")

    async def _resync(self) -> None:
        """The bus was lost a while: what was announced meanwhile was not heard."""
        await self.arrivals.resync()
        await self.watch.sessions()

    async def start(self) -> None:
        await presence.heartbeat(self.pool, self.hub.instance_id)
        # Operators (and the topology test) tell which process holds a socket by this id, which
        # signaling_participants records per socket.
        log.info("signalling instance started", extra={"instance_id": self.hub.instance_id,
                                                       "pid": os.getpid()})
        await self.bus.start()
        self.watch.start()

    async def shutdown(self) -> None:
        """Tell every client the instance is stopping (``server_shutdown``, close 1001) and
        wait, briefly, for their close handshakes. Their places are kept (``stop`` marks them
        dropped in one statement), so they resume on another instance or after a restart."""
        conns = list(self.hub.conns)
        for c in conns:
            c.replaced = True
            c.fail(errors.SERVER_SHUTDOWN)
        if conns:
            await asyncio.wait_for(
                asyncio.gather(*(c.wait_closed(SHUTDOWN_CLOSE_S) for c in conns)),
                SHUTDOWN_CLOSE_S + 1)

    async def stop(self) -> None:
        await self.watch.stop()
        self.departures.cancel_timers()
        await self.background.close()
        await self.bus.stop()
        with contextlib.suppress(Exception):
            await presence.deregister(self.pool, self.hub.instance_id)
