"""A WebSocket client on a plain TCP socket whose reading the test controls: a phone on a
dead uplink, which says hello and then stops reading while the server goes on writing.

The socket's receive buffer is made small before it connects, so the kernel soon stops
taking data, the server's send buffer fills, and what the server writes next waits on it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any

# A small window (the kernel doubles it and has a floor of about 2 KiB).
RCVBUF = 4096
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.welcome: dict[str, Any] = {}
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, host: str, port: int, within: float = 10.0) -> RawSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), within)
        # A small stream buffer too: asyncio would otherwise read ahead for us.
        reader, writer = await asyncio.open_connection(sock=sock, limit=RCVBUF)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            writer.close()
            raise ConnectionError(f"upgrade refused: {status.decode(errors='replace')}")
        raw = cls(reader, writer)
        raw.start()
        return raw

    def send(self, kind: str, **fields: Any) -> None:
        self._frame(TEXT, json.dumps({"type": kind, **fields}).encode())

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    def start(self) -> None:
        """Read in the background from now on: frames are kept (type, code, state and peer
        ids only: large offers are not worth keeping) and pings answered, until the socket
        closes. ``stop_reading`` pauses the transport under this reader."""
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            try:
                b0, b1 = await self.reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            opcode = b0 & 0x0F
            if opcode == TEXT:
                frame = json.loads(payload)
                if frame.get("type") == "welcome":
                    self.welcome = frame
                self.frames.append({k: frame[k] for k in ("type", "code", "state", "peer_id")
                                    if k in frame})
            elif opcode == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if n >= 2 else 1005
                return
            elif opcode == PING:
                self._frame(PONG, payload)

    async def until(self, kind: str, within: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if frame.get("type") == kind:
                    return frame
            seen = len(self.frames)
            if self._reader is None or self._reader.done():
                raise ConnectionError(f"closed ({self.close_code}) waiting for {kind}")
            if loop.time() > deadline:
                raise TimeoutError(f"no {kind} within {within} s")
            await asyncio.sleep(0.02)

    async def ended(self, within: float) -> bool:
        """Whether the socket closed within ``within``."""
        if self._reader is None:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), within)
        except TimeoutError:
            return False
        return True

    def _transport(self) -> asyncio.Transport:
        transport = self.writer.transport
        assert isinstance(transport, asyncio.Transport)
        return transport

    def stop_reading(self) -> None:
        self._transport().pause_reading()

    def read_again(self) -> None:
        self._transport().resume_reading()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self.writer.transport.abort()
