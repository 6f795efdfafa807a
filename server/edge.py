"""The connection edge: who may hold a connection to Casa, and for how long.

Casa may face the internet without a proxy in front, so it defends itself against clients that
hold connections without using them (slowloris):

- every accepted TCP connection is counted per peer address and in all; beyond
  ``max_connections_per_address`` it is refused with a fixed 429, beyond the global cap with a
  fixed 503, both with Retry-After, before a byte of the request is read;
- a TLS handshake must finish within ``TLS_HANDSHAKE_TIMEOUT_S`` (or the header timeout, if
  shorter);
- a request head must be complete within ``header_timeout_s`` of the connection opening or the
  previous response ending (aiohttp's keep-alive timer, set to that value, closes a connection
  that is still waiting for a complete head);
- a request body must arrive within ``body_timeout_s`` (``body_in_time`` below).

``GuardedConnection`` wraps aiohttp's request handler as an ordinary asyncio protocol, so the
counting needs nothing private from aiohttp.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from server import errors
from server.keys import CONFIG

log = logging.getLogger("casa.edge")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A handshake that has not finished by then is not a patient on a slow line but a held socket.
TLS_HANDSHAKE_TIMEOUT_S = 10.0
# Refusing over TLS costs a handshake: at most this many refusals in flight, the rest are closed.
TLS_REFUSALS_IN_FLIGHT = 64
# How long a refused client is asked to wait before trying again.
RETRY_AFTER_S = 5
# Refusals are reported once per interval, with counts: a flood must not flood the log too.
REFUSAL_LOG_INTERVAL_S = 10.0
# A refused connection is not closed while the client's request is still unread: closing with
# unread data sends a reset, and a client that gets the reset before it has read the refusal
# loses it. It is half-closed (the refusal, then FIN) and closed once what the client sent has
# been read and dropped (usually the next turn of the loop: the request came with the
# connection), once the client closes, or after this long at most. At most this many linger at
# once (each holds a descriptor); beyond, they close at once.
REFUSAL_LINGER_S = 1.0
REFUSALS_LINGERING = 256
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@functools.cache
def refusal(status: int) -> bytes:
    """The whole answer to a refused connection: fixed text, the usual security headers."""
    from server.middleware import add_security_headers

    phrase = {429: "Too Many Requests", 503: "Service Unavailable"}[status]
    body = f"{status} {phrase}: too many connections, try again shortly\n".encode()
    headers: dict[str, str] = {"Content-Type": "text/plain; charset=utf-8",
                               "Content-Length": str(len(body)), "Connection": "close",
                               "Retry-After": str(RETRY_AFTER_S)}
    add_security_headers(headers, https=False, cacheable=False)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"HTTP/1.1 {status} {phrase}\r\n{head}\r\n".encode() + body


@dataclass
class Admission:
    """Open connections per peer address and in all, and the caps on both."""

    total_cap: int
    per_address_cap: int
    exempt: tuple[Network, ...] = ()
    # Refused connections lingering at once (see REFUSAL_LINGER_S).
    linger_cap: int = REFUSALS_LINGERING
    open_by_address: Counter[str] = field(default_factory=Counter)
    open_total: int = 0
    refused: Counter[int] = field(default_factory=Counter)

    def admit(self, address: str) -> int | None:
        """Count the connection in and return None, or return the status that refuses it."""
        if self.open_total >= self.total_cap:
            status: int | None = 503
        elif (self.open_by_address[address] >= self.per_address_cap
              and not self._exempt(address)):
            status = 429
        else:
            status = None
        if status is not None:
            self.refused[status] += 1
            return status
        self.open_by_address[address] += 1
        self.open_total += 1
        return None

    def release(self, address: str) -> None:
        self.open_total -= 1
        self.open_by_address[address] -= 1
        if self.open_by_address[address] <= 0:
            del self.open_by_address[address]

    def _exempt(self, address: str) -> bool:
        # Behind a proxy every client shares its address; the proxy sets its own limits.
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.exempt)


class GuardedConnection(asyncio.Protocol):
    """One client connection: admitted or refused, then (after TLS) handed to aiohttp."""

    def __init__(self, edge: Edge) -> None:
        self._edge = edge
        # Set once aiohttp's handler has the connection (after the handshake, under TLS).
        self._inner: asyncio.Protocol | None = None
        self._address: str | None = None
        # Set while a refused connection lingers (see REFUSAL_LINGER_S).
        self._linger: asyncio.TimerHandle | None = None
        self._refused: asyncio.Transport | None = None
        # What the client sent in the same read as its handshake's last message: asyncio
        # delivers it as soon as the handshake completes, before ``_start_tls`` resumes and
        # makes aiohttp's handler. Dropping it lost the request (a loaded client or server
        # reads them together; the connection then sat until the header timeout).
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        status = self._edge.admission.admit(address)
        if status is not None:
            self._edge.refuse(self, transport, status)
            return
        self._address = address
        if self._edge.ssl_context is None:
            self._inner = self._edge.make_handler()
            self._inner.connection_made(transport)
        else:
            transport.pause_reading()  # nothing reaches aiohttp before the handshake
            self._edge.spawn(self._start_tls(transport))

    async def _start_tls(self, transport: asyncio.Transport) -> None:
        assert self._edge.ssl_context is not None
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(transport, self, self._edge.ssl_context, server_side=True,
                                       ssl_handshake_timeout=self._edge.handshake_timeout_s)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            transport.close()
            self._release()
            return
        if tls is None:
            self._release()
            return
        self._inner = self._edge.make_handler()
        self._inner.connection_made(tls)
        early, self._early = self._early, []
        for data in early:
            self._inner.data_received(data)

    def linger(self, transport: asyncio.Transport) -> None:
        """Refused: the answer is written and the sending side shut; the connection closes
        once what the client sent is read (and dropped), or when the linger ends."""
        transport.write_eof()
        self._refused = transport
        self._linger = asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.close)
        self._edge.lingering += 1

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
        elif self._refused is not None:
            self._refused.close()  # the request is read: closing now sends no reset
        elif self._address is not None:
            self._early.append(data)  # decrypted before aiohttp's handler exists (TLS)

    def eof_received(self) -> bool | None:
        # A refused client's end: returning None closes the transport.
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            self._refused = None
            self._edge.lingering -= 1
        self._release()
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def _release(self) -> None:
        if self._address is not None:
            self._edge.admission.release(self._address)
            self._address = None


class Edge:
    """The protocol factory for ``loop.create_server``: one ``GuardedConnection`` per client."""

    def __init__(self, admission: Admission, make_handler: Callable[[], asyncio.Protocol],
                 ssl_context: ssl.SSLContext | None,
                 handshake_timeout_s: float = TLS_HANDSHAKE_TIMEOUT_S) -> None:
        self.admission = admission
        self.handshake_timeout_s = handshake_timeout_s
        self.make_handler = make_handler
        self.ssl_context = ssl_context
        self._tasks: set[asyncio.Task[None]] = set()
        self._tls_refusals = 0
        self._reported_at: float | None = None
        self._reported: Counter[int] = Counter()
        self.lingering = 0  # refused plain connections not yet closed

    def __call__(self) -> GuardedConnection:
        return GuardedConnection(self)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def refuse(self, conn: GuardedConnection, transport: asyncio.Transport,
               status: int) -> None:
        self._report()
        if self.ssl_context is None:
            transport.write(refusal(status))
            if self.lingering < self.admission.linger_cap and transport.can_write_eof():
                conn.linger(transport)
            else:
                transport.close()
        elif self._tls_refusals < TLS_REFUSALS_IN_FLIGHT:
            self.spawn(self._refuse_tls(transport, status))
        else:
            transport.abort()

    def _report(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._reported_at is not None and now - self._reported_at < REFUSAL_LOG_INTERVAL_S:
            return
        self._reported_at = now
        refused = self.admission.refused
        log.warning("refusing connections: %d over the cap per address, %d over the cap in all "
                    "(since the last report: %d); %d open",
                    refused[429], refused[503], refused.total() - self._reported.total(),
                    self.admission.open_total)
        self._reported = Counter(refused)

    async def _refuse_tls(self, transport: asyncio.Transport, status: int) -> None:
        assert self.ssl_context is not None
        self._tls_refusals += 1
        try:
            # Short: this handshake is a courtesy to a client we are turning away.
            tls = await asyncio.get_running_loop().start_tls(
                transport, asyncio.Protocol(), self.ssl_context, server_side=True,
                ssl_handshake_timeout=2.0)
            if tls is not None:
                tls.write(refusal(status))
                tls.close()
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            transport.abort()
        finally:
            self._tls_refusals -= 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def admission_for(config_cap: int, per_address: int, fd_limit: int, fd_reserve: int,
                  exempt: Iterable[Network]) -> Admission:
    """The global cap is the configured one, or lower where the open-file limit is lower.
    Lingering refusals take at most a quarter of the descriptors kept in reserve."""
    return Admission(total_cap=max(1, min(config_cap, fd_limit - fd_reserve)),
                     per_address_cap=per_address, exempt=tuple(exempt),
                     linger_cap=min(REFUSALS_LINGERING, fd_reserve // 4))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body before the handler runs, within the configured time: a body that
    trickles in would otherwise hold its connection (and the handler) for as long as it
    likes. Forms are parsed here (aiohttp keeps the result) so multipart stays readable."""
    if request.body_exists:
        try:
            async with asyncio.timeout(request.app[CONFIG].body_timeout_s):
                if request.content_type in FORM_TYPES:
                    await request.post()
                else:
                    await request.read()
        except TimeoutError:
            raise errors.ApiError(errors.REQUEST_TIMEOUT) from None
    return await handler(request)
