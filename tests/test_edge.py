"""The connection edge under an anonymous attacker with many loopback addresses: slow heads,
slow bodies, too many sockets from one address and in all. Limits are injected small."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from server.config import Config
from server.serving import LoopErrorLimiter, listening
from server.tls import ensure_self_signed
from tests.conftest import SECRET_KEY
from tests.pg import serving_url
from tests.processes import listener, port_of, stop
from tests.signaling.servers import ROOT

HEAD = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def casa(config: Config, **limits: Any) -> AsyncIterator[int]:
    runner = web.AppRunner(create_app(dataclasses.replace(config, **limits)))
    await runner.setup()
    try:
        async with listening(runner, "127.0.0.1", 0, None) as (_, port):
            yield port
    finally:
        await runner.cleanup()


async def open_slow(port: int, source: str) -> Conn:
    """A connection from ``source`` that has sent an incomplete request head."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5)
    writer.write(HEAD)
    await writer.drain()
    return reader, writer


async def first_bytes(conn: Conn, within: float) -> bytes | None:
    """What the server sent within ``within`` seconds (b"" if it closed), None if nothing."""
    try:
        return await asyncio.wait_for(conn[0].read(4096), within)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return b""


async def healthz(port: int, source: str, within: float = 2.0) -> bytes:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), within)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()


def close_all(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()


# An answer within 2 s under held connections: alone, after the parallel run (Makefile).
@pytest.mark.serial
async def test_the_per_address_cap_refuses_the_excess_and_others_are_served(config):
    async with casa(config, max_connections_per_address=20) as port:
        conns = [await open_slow(port, "127.0.0.2") for _ in range(30)]
        try:
            answers = await asyncio.gather(*(first_bytes(c, 1.0) for c in conns))
            refused = [a for a in answers if a is not None]
            assert len(refused) == 10, answers
            assert all(a.startswith(b"HTTP/1.1 429 ") for a in refused)
            assert b"\r\nRetry-After: 5\r\n" in refused[0]
            assert b"\r\nContent-Security-Policy: " in refused[0]
            started = time.monotonic()
            health = await healthz(port, "127.0.0.3")
            assert health.startswith(b"HTTP/1.1 200 ") and time.monotonic() - started < 2.0
            # A closed connection gives its place back.
            close_all([c for c, a in zip(conns, answers, strict=True) if a is None][:1])
            for _ in range(50):
                again = await open_slow(port, "127.0.0.2")
                if await first_bytes(again, 0.05) is None:
                    break
                again[1].close()
            else:
                pytest.fail("a released place was never given back")
            again[1].close()
        finally:
            close_all(conns)


async def test_the_global_cap_answers_a_clear_503(config):
    async with casa(config, max_connections=40, max_connections_per_address=1000) as port:
        conns = [await open_slow(port, f"127.0.0.{2 + i % 2}") for i in range(40)]
        try:
            assert await asyncio.gather(*(first_bytes(c, 0.3) for c in conns)) == [None] * 40
            extra = await open_slow(port, "127.0.0.4")
            answer = await first_bytes(extra, 2.0)
            assert answer is not None and answer.startswith(b"HTTP/1.1 503 ")
            assert b"\r\nRetry-After: 5\r\n" in answer and b"too many connections" in answer
            assert await first_bytes(extra, 1.0) == b""  # and closed
            close_all(conns[:1])
            await asyncio.sleep(0.1)
            assert (await healthz(port, "127.0.0.5")).startswith(b"HTTP/1.1 200 ")
        finally:
            close_all(conns)


async def test_a_refused_client_that_sent_its_whole_request_reads_the_refusal(config):
    """The request is in the server's receive buffer when the refusal is written: closing at
    once then resets the connection and the client loses the 503 it was sent."""
    async with casa(config, max_connections=1, max_connections_per_address=1000) as port:
        held = await open_slow(port, "127.0.0.2")
        try:
            assert await first_bytes(held, 0.2) is None
            for source in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
                # Connected and written before the server's loop runs again: the request
                # is waiting in the kernel when the server accepts.
                sock = socket.socket()
                sock.bind((source, 0))
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + b"x" * 2000)
                sock.setblocking(False)
                reader, writer = await asyncio.open_connection(sock=sock)
                answer = await asyncio.wait_for(reader.read(), 3.0)  # raises on a reset
                writer.close()
                assert answer.startswith(b"HTTP/1.1 503 ") and answer.endswith(b"shortly\n")
        finally:
            close_all([held])


@pytest.mark.serial  # a deadline measured from both sides: alone, after the parallel run (Makefile)
async def test_a_trickling_or_silent_head_is_closed_at_the_header_timeout(config):
    async with casa(config, header_timeout_s=0.5) as port:
        trickling = await open_slow(port, "127.0.0.2")
        silent = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
        started = time.monotonic()
        try:
            closed = False
            while time.monotonic() - started < 3:
                trickling[1].write(b"X-Slow: 1\r\n")  # a line every 0.1 s, as slowloris does
                if await first_bytes(trickling, 0.1) == b"":
                    closed = True
                    break
            assert closed, "a head trickling in was kept open"
            assert 0.4 < time.monotonic() - started < 1.5
            assert await first_bytes(silent, 1.0) == b""
            # A head that arrives in time is served, on the same kind of connection.
            assert (await healthz(port, "127.0.0.2")).startswith(b"HTTP/1.1 200 ")
        finally:
            close_all([trickling, silent])


async def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes(config):
    async with casa(config, body_timeout_s=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=("127.0.0.2", 0))
        try:
            writer.write(b"POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json"
                         b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            started = time.monotonic()
            answer = await asyncio.wait_for(reader.read(), 6)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), head
            assert json.loads(body)["error"]["code"] == "request_timeout"
            assert time.monotonic() - started < 5  # closed after a short linger, not kept
        finally:
            writer.close()


def test_loop_errors_are_logged_once_per_interval(caplog):
    now = [0.0]
    limiter = LoopErrorLimiter(interval_s=10, clock=lambda: now[0])
    loop = asyncio.new_event_loop()
    try:
        context = {"message": "socket.accept() out of system resource",
                   "exception": OSError(24, "Too many open files")}
        with caplog.at_level(logging.ERROR, logger="casa.serving"):
            for _ in range(1000):
                limiter(loop, context)
                now[0] += 0.001
            now[0] += 10
            limiter(loop, context)
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "999 more since the last report" in lines[1]
    assert "Too many open files" not in " ".join(lines)  # the type only, as everywhere


def spawn_with_few_files(env: dict[str, str], sock: socket.socket, log_path: Path
                         ) -> subprocess.Popen[bytes]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--fd",
                                 str(sock.fileno())], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=limit,
                                pass_fds=(sock.fileno(),))


# 600 connections, an answer within 2.5 s: alone, after the parallel run (Makefile).
@pytest.mark.serial
async def test_out_of_descriptors_the_server_refuses_and_logs_little(db_url, tmp_path):
    """A real ``casa serve`` limited to 256 open files, 600 slow connections from two
    addresses: the excess is refused with 503 within a few seconds (no accept() failing in a
    loop), the log stays small, and /healthz from a third address answers within 2 s."""
    sock = listener()
    port = port_of(sock)
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASA_", "DATABASE_URL"))}
    env.update(DATABASE_URL=serving_url(db_url), CASA_SECRET_KEY=SECRET_KEY,
               CASA_DATA_DIR=str(tmp_path),
               CASA_PUBLIC_ORIGIN=f"http://127.0.0.1:{port}", CASA_LOG_LEVEL="WARNING",
               PYTHONPATH=str(ROOT))

    proc = spawn_with_few_files(env, sock, log_path)
    sock.close()   # the server's now
    conns: list[Conn] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert (await healthz(port, "127.0.0.1")).startswith(b"HTTP/1.1 200 ")
                break
            except (OSError, TimeoutError, AssertionError):
                assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
                await asyncio.sleep(0.2)
        before = log_path.stat().st_size
        opened = await asyncio.gather(*(open_slow(port, f"127.0.0.{2 + i % 2}")
                                        for i in range(600)), return_exceptions=True)
        conns = [c for c in opened if not isinstance(c, BaseException)]
        # At the file limit accept() fails and asyncio waits 1 s before accepting again, so
        # the last of 600 connections may wait a few of those rounds for its refusal.
        answers = await asyncio.gather(*(first_bytes(c, 5.0) for c in conns))
        refused = sum(1 for a in answers if a and a.startswith(b"HTTP/1.1 503 "))
        assert refused >= 600 - 256, (refused, len(conns))
        started = time.monotonic()
        close_all(conns[:1])
        await asyncio.sleep(0.2)
        health = await healthz(port, "127.0.0.4")
        assert time.monotonic() - started < 2.5 and health.startswith(b"HTTP/1.1 "), health
        await asyncio.sleep(2)
        logged = log_path.read_bytes()[before:]
        assert len(logged.splitlines()) <= 5, logged[:2000]
    finally:
        close_all(conns)
        stop(proc, 10)


async def test_over_tls_the_cap_still_answers_and_the_handshake_has_a_deadline(config,
                                                                              tmp_path):
    cert, key = ensure_self_signed(tmp_path / "tls", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert), str(key))
    client_ctx = ssl.create_default_context(cafile=str(cert))

    async def tls_conn(port: int) -> Conn:
        return await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="127.0.0.1",
            local_addr=("127.0.0.2", 0)), 5)

    runner = web.AppRunner(create_app(dataclasses.replace(config, max_connections_per_address=2)))
    await runner.setup()
    try:
        async with listening(runner, "127.0.0.1", 0, server_ctx) as (_, port):
            held = [await tls_conn(port), await tls_conn(port)]
            refused = await tls_conn(port)
            answer = await first_bytes(refused, 2.0)
            assert answer is not None and answer.startswith(b"HTTP/1.1 429 "), answer
            assert b"\r\nRetry-After: 5\r\n" in answer
            assert (await healthz_tls(port, client_ctx)).startswith(b"HTTP/1.1 200 ")
            close_all([*held, refused])
    finally:
        await runner.cleanup()
    runner = web.AppRunner(create_app(dataclasses.replace(config, header_timeout_s=0.5)))
    await runner.setup()
    try:
        async with listening(runner, "127.0.0.1", 0, server_ctx) as (_, port):
            # Connected, but never starting the handshake: closed at the deadline.
            silent = await asyncio.open_connection("127.0.0.1", port,
                                                   local_addr=("127.0.0.2", 0))
            assert await first_bytes(silent, 1.5) == b""
            assert (await healthz_tls(port, client_ctx)).startswith(b"HTTP/1.1 200 ")
    finally:
        await runner.cleanup()


async def healthz_tls(port: int, ctx: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"), 2)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return await asyncio.wait_for(reader.read(), 2)
    finally:
        writer.close()


async def test_a_request_sent_with_the_last_handshake_message_is_answered(config, tmp_path):
    """A TLS 1.3 client may send its request in the same write as its handshake's last
    message (a loaded client does, or the server reads both at once): asyncio decrypts the
    request as the handshake completes, before the connection is handed to aiohttp. It used to
    be dropped there; the client then waited for the header timeout, and was disconnected."""
    cert, key = ensure_self_signed(tmp_path / "tls", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(cert), str(key))
    client_ctx = ssl.create_default_context(cafile=str(cert))
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    try:
        async with listening(runner, "127.0.0.1", 0, server_ctx) as (_, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = client_ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
            try:
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        writer.write(outgoing.read())
                        incoming.write(await asyncio.wait_for(reader.read(65536), 5))
                assert tls.version() == "TLSv1.3"
                # The client's Finished is still in ``outgoing``: the request goes with it.
                tls.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                writer.write(outgoing.read())
                answer = b""
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 3.0
                while b"\r\n" not in answer:
                    try:
                        answer += tls.read(4096)
                        continue
                    except ssl.SSLWantReadError:
                        pass
                    left = deadline - loop.time()
                    assert left > 0, "no answer: the request sent with the handshake was lost"
                    try:
                        data = await asyncio.wait_for(reader.read(65536), left)
                    except TimeoutError:
                        continue
                    assert data, "closed without an answer"
                    incoming.write(data)
                assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
            finally:
                writer.close()
    finally:
        await runner.cleanup()
