"""``setup(app)`` adds ``/ws``, the pre-call echo endpoints and the signalling
engine, started and stopped with the app. Clients are told of a shutdown in ``on_shutdown``,
which aiohttp runs before it cancels the socket handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from server.keys import CONFIG, DATABASE, METRICS, POOL
from signaling import conn, echo, notices, presence
from signaling.engine import Engine
from signaling.keys import DIRECTORY, ENGINE, GRACE_S, WRITE_DEADLINE_S, CoreDirectory
from signaling.ws import ws_view


def setup(app: web.Application) -> None:
    app[DIRECTORY] = CoreDirectory()
    app.router.add_get("/ws", ws_view, name="signaling_ws")
    echo.setup(app)
    app.cleanup_ctx.append(_signaling)
    app.on_shutdown.append(_shutdown)


async def _signaling(app: web.Application) -> AsyncIterator[None]:
    engine = Engine(pool=app[POOL], connect=app[DATABASE].connect, config=app[CONFIG],
                    registry=app[METRICS], directory=app[DIRECTORY],
                    notice_text=notices.translator(app),
                    grace_s=app.get(GRACE_S, presence.GRACE_S),
                    write_deadline_s=app.get(WRITE_DEADLINE_S, conn.WRITE_DEADLINE_S))
    app[ENGINE] = engine
    await engine.start()
    yield
    await engine.stop()
    await echo.close_all(app)


async def _shutdown(app: web.Application) -> None:
    engine = app.get(ENGINE)
    if engine is not None:
        await engine.shutdown()
