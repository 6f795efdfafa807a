"""Running the app on a socket until SIGINT or SIGTERM.

aiohttp's ``run_app`` would do, but Casa needs three things it does not give:

- requests too malformed to be routed (a NUL in the path, a bad header, something that is not
  HTTP) never reach Casa's middleware: aiohttp answers them itself, echoing the offending
  request line (which may hold a join token) and without the security headers. Casa's request
  handler answers those with a fixed text and the usual headers;
- connections are admitted by ``server.edge`` (caps per address and in all, TLS handshake and
  header deadlines) before aiohttp sees them;
- errors the event loop reports for itself (accept() out of file descriptors, above all) are
  logged once per interval with a count, not once per attempt.

The listening socket is Casa's own ``loop.create_server`` around ``server.edge.Edge``; the
``web.AppRunner`` still runs the app's start-up and clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from server.edge import TLS_HANDSHAKE_TIMEOUT_S, Admission, Edge, admission_for
from server.keys import CONFIG
from server.middleware import add_security_headers

log = logging.getLogger("casa.serving")

# The kernel's queue of connections not yet accepted. aiohttp's 128 overflows when a few
# hundred clients connect at once (a storm of booking attempts measured 165 overflows, each
# costing its client a 1 s SYN retransmission); the kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024
# File descriptors Casa needs besides client sockets: the pool, logs, static files, TLS files.
FD_RESERVE = 128
# A body the handler did not read is drained this long before the connection closes (so the
# client sees the answer rather than a reset); aiohttp's 10 s lets a slow body linger on.
LINGER_S = 2.0
# One line per kind of loop error per interval: out of descriptors, asyncio retries accept()
# every 0.1-1 s and logged each attempt (hundreds of MB a minute).
LOOP_ERROR_LOG_INTERVAL_S = 10.0


class _CasaRequestHandler(web.RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        # aiohttp logs the exception (its loggers go through server.logs, which keeps the
        # exception's type only) and builds its own reply; the reply is replaced: the parser's
        # message quotes the request.
        super().handle_error(request, status, exc, None)
        phrase = {400: "Bad Request", 413: "Request Too Large", 431: "Headers Too Large",
                  504: "Gateway Timeout"}.get(status, "Server Error")
        resp = web.Response(status=status, text=f"{status} {phrase}\n",
                            content_type="text/plain")
        add_security_headers(resp.headers, https=request.secure, cacheable=False)
        resp.force_close()
        return resp


class LoopErrorLimiter:
    """An event-loop exception handler that logs each kind of error once per interval."""

    def __init__(self, interval_s: float = LOOP_ERROR_LOG_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error")
        exc = context.get("exception")
        key = f"{message}|{type(exc).__name__}"
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        again = self._suppressed.pop(key, 0)
        # Only the exception's type: a context may hold sockets, addresses or request data.
        log.error("%s (%s)%s", message, type(exc).__name__ if exc else "no exception",
                  f"; {again} more since the last report" if again else "")


def fd_limit() -> int:
    """The open-file limit, raised to the hard limit first: the default soft 1024 is far
    below what one instance holding calls and pages for a district needs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextlib.asynccontextmanager
async def listening(runner: web.AppRunner, host: str, port: int,
                    ssl_context: ssl.SSLContext | None, sock: socket.socket | None = None
                    ) -> AsyncIterator[tuple[Edge, int]]:
    """The listening socket for a set-up runner (``sock``, already bound, when given; else
    one bound to host and port): yields the edge and the bound port."""
    loop = asyncio.get_running_loop()
    config = runner.app[CONFIG]
    admission: Admission = admission_for(
        config.max_connections, config.max_connections_per_address, fd_limit(), FD_RESERVE,
        config.trusted_proxies)
    log.info("connection caps: %d in all, %d per address", admission.total_cap,
             admission.per_address_cap)
    manager = runner.server
    assert manager is not None

    def make_handler() -> asyncio.Protocol:
        # aiohttp's keep-alive timer runs from the connection's start and from the end of each
        # response until a complete request head arrives: at header_timeout_s it is the header
        # deadline as well as the idle keep-alive limit.
        # access_log=None is aiohttp's documented "no access log" (its stub says Logger).
        return _CasaRequestHandler(manager, loop=loop, access_log=None,  # type: ignore[arg-type]
                                   keepalive_timeout=config.header_timeout_s,
                                   lingering_time=LINGER_S)

    edge = Edge(admission, make_handler, ssl_context,
                handshake_timeout_s=min(TLS_HANDSHAKE_TIMEOUT_S, config.header_timeout_s))
    if sock is not None:
        server = await loop.create_server(edge, sock=sock, backlog=LISTEN_BACKLOG)
    else:
        server = await loop.create_server(edge, host, port, backlog=LISTEN_BACKLOG,
                                          reuse_address=True)
    try:
        yield edge, int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await edge.close()


async def _serve(app: web.Application, host: str, port: int,
                 ssl_context: ssl.SSLContext | None,
                 announce: Callable[[web.Application], None], shutdown_timeout: float,
                 sock: socket.socket | None) -> None:
    asyncio.get_running_loop().set_exception_handler(LoopErrorLimiter())
    runner = web.AppRunner(app, handle_signals=True, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        async with listening(runner, host, port, ssl_context, sock):
            announce(app)
            await asyncio.Event().wait()
    finally:
        # Graceful: cleanup_ctx runs (sockets closed, pool closed, embedded PostgreSQL stopped).
        await runner.cleanup()


def run(app: web.Application, *, host: str, port: int, ssl_context: ssl.SSLContext | None,
        announce: Callable[[web.Application], None], shutdown_timeout: float = 5,
        sock: socket.socket | None = None) -> None:
    """Serve until SIGINT/SIGTERM (on ``sock`` when given, a socket already bound, else on
    host and port); ``announce`` runs once the socket is listening.

    The loop is wound down the way aiohttp's ``run_app`` does it, not ``asyncio.run``'s way:
    the serving task is cancelled first and its cleanup (sockets, cleanup_ctx, the pool) runs
    while the app's background tasks are still alive; only then are the remaining tasks
    cancelled. With ``asyncio.run`` (every task cancelled at once, then a wait for the default
    executor) the shutdown after SIGTERM hung in about one run in four of the TLS serve test;
    in this order it has not."""
    loop = asyncio.new_event_loop()
    main = loop.create_task(_serve(app, host, port, ssl_context, announce, shutdown_timeout,
                                   sock))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
