"""Requests too malformed to be routed: Casa's runner answers them with a fixed text and the
usual security headers, never quoting the request (whose path may hold a join token)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from server.app import create_app
from server.config import Config
from server.serving import listening

MALFORMED = [
    b"GET /join/LEAKTOKEN\x00abc HTTP/1.1\r\nHost: x\r\n\r\n",
    b"LEAKTOKEN<script>alert(1)</script>\r\n\r\n",
    b"GET /join/LEAKTOKEN HTTP/1.1\r\nHost: x\r\nX-Bad LEAKHEADER: <script>\r\n\r\n",
    b"GET /join/LEAKTOKEN" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /join/LEAKTOKEN HTTP/9.9\r\nHost: x\r\n\r\n",
]


@pytest.fixture
async def port(config: Config) -> AsyncIterator[int]:
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    try:
        async with listening(runner, "127.0.0.1", 0, None) as (_, bound):
            yield bound
    finally:
        await runner.cleanup()


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return reply


@pytest.mark.parametrize("raw", MALFORMED)
async def test_malformed_request_gets_a_fixed_reply_with_security_headers(port, raw):
    reply = await _exchange(port, raw)
    head, _, body = reply.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0]
    assert status.split()[1].startswith(b"4"), status
    assert b"LEAK" not in reply and b"<script>" not in reply
    assert body.startswith(status.split()[1] + b" ")
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(b":") for line in head.split(b"\r\n")[1:])}
    assert b"frame-ancestors 'none'" in headers[b"content-security-policy"]
    assert headers[b"referrer-policy"] == b"same-origin"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"server"] == b"Casa"


async def test_the_same_runner_serves_ordinary_requests(port):
    reply = await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
    assert b"\r\nServer: Casa\r\n" in reply and b"aiohttp" not in reply
