"""Running the app on a socket until SIGINT or SIGTERM.

aiohttp's ``run_app`` would do, but requests too malformed to be routed (a NUL in the path, a bad
header, something that is not HTTP) never reach Casa's middleware: aiohttp answers them itself,
echoing the offending request line (which may hold a join token) and without the security
headers. Casa's runner swaps in a request handler whose answer to those is a fixed text with the
usual headers, and otherwise serves exactly as ``run_app`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from server.middleware import add_security_headers

# The kernel's queue of connections not yet accepted. aiohttp's 128 overflows when a few
# hundred clients connect at once (a storm of booking attempts measured 165 overflows, each
# costing its client a 1 s SYN retransmission); the kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024


class _CasaRequestHandler(RequestHandler):
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


class _CasaServer(web.Server):
    def __call__(self) -> RequestHandler:
        # Server's own __call__ builds a plain RequestHandler with these same arguments.
        return _CasaRequestHandler(self, loop=self._loop, **self._kwargs)


class CasaRunner(web.AppRunner):
    """An AppRunner whose connections answer unparseable requests the Casa way."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _CasaServer
        return server


async def _serve(app: web.Application, host: str, port: int,
                 ssl_context: ssl.SSLContext | None,
                 announce: Callable[[web.Application], None], **runner_args: Any) -> None:
    runner = CasaRunner(app, handle_signals=True, **runner_args)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=ssl_context,
                          backlog=LISTEN_BACKLOG).start()
        announce(app)
        await asyncio.Event().wait()
    finally:
        # Graceful: cleanup_ctx runs (sockets closed, pool closed, embedded PostgreSQL stopped).
        await runner.cleanup()


def run(app: web.Application, *, host: str, port: int, ssl_context: ssl.SSLContext | None,
        announce: Callable[[web.Application], None], shutdown_timeout: float = 5) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` runs once the socket is listening.

    The loop is wound down the way aiohttp's ``run_app`` does it, not ``asyncio.run``'s way:
    the serving task is cancelled first and its cleanup (sockets, cleanup_ctx, the pool) runs
    while the app's background tasks are still alive; only then are the remaining tasks
    cancelled. With ``asyncio.run`` (every task cancelled at once, then a wait for the default
    executor) the shutdown after SIGTERM hung in about one run in four of the TLS serve test;
    in this order it has not."""
    loop = asyncio.new_event_loop()
    main = loop.create_task(_serve(app, host, port, ssl_context, announce, access_log=None,
                                   shutdown_timeout=shutdown_timeout))
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
