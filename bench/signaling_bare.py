"""The yardstick: a bare aiohttp WebSocket relay (no auth, no validation, no rooms beyond a
pair). The first text frame names the pair; every later frame goes verbatim to the other.

    python -m bench.signaling_bare --port 9000
"""

from __future__ import annotations

import argparse
import socket

from aiohttp import WSMsgType, web

PAIRS = web.AppKey("pairs", dict)


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=128 * 1024)
    await ws.prepare(request)
    first = await ws.receive()
    if first.type != WSMsgType.TEXT:
        return ws
    pair: list[web.WebSocketResponse] = request.app[PAIRS].setdefault(first.data, [])
    pair.append(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for other in pair:
                    if other is not ws:
                        await other.send_str(msg.data)
    finally:
        pair.remove(ws)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser()
    # An inherited socket, already bound (as ``casa serve --fd``).
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[PAIRS] = {}
    app.router.add_get("/ws", relay)
    web.run_app(app, sock=socket.socket(fileno=args.fd), access_log=None, print=None)


if __name__ == "__main__":
    main()
