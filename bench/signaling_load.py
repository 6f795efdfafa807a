"""Load-generation machinery for the signalling benchmarks: servers pinned to one core, and a
raw-socket WebSocket client fast enough not to be the bottleneck.

The client writes pre-encoded frames (masked with an all-zero key, which RFC 6455 permits, so
the payload bytes are the frame bytes) and only parses the 2-10 byte frame headers of what it
receives: one process drives well over 100,000 messages/s, where an aiohttp client tops out
near 25,000."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "bench-secret-key-" + "b" * 40
SERVER_CORE = "0"
CLIENT_CORE = "1"


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def pin(core: str) -> None:
    os.sched_setaffinity(0, {int(core)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A server process on 127.0.0.1 pinned to SERVER_CORE."""

    def __init__(self, kind: str, database_url: str | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="casa-bench-")
        os.chmod(self.tmp.name, 0o755)  # noqa: S103 - embedded PostgreSQL runs as its own user
        env = {**os.environ, "CASA_SECRET_KEY": SECRET_KEY, "CASA_DATA_DIR": self.tmp.name,
               "CASA_LOG_LEVEL": "ERROR", "CASA_PUBLIC_ORIGIN": f"http://127.0.0.1:{self.port}"}
        env.pop("DATABASE_URL", None)
        if database_url:
            env["DATABASE_URL"] = database_url
        cmd = ([sys.executable, "-m", "bench.signaling_bare", "--port", str(self.port)]
               if kind == "bare" else
               [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)])
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, *cmd], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        path = "/healthz" if self.kind == "casa" else "/ws"
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                try:
                    async with s.get(f"http://127.0.0.1:{self.port}{path}") as r:
                        if r.status in (200, 400):
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.kind} server did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (not of its embedded PostgreSQL)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tmp.cleanup()


def frame(text: str) -> bytes:
    """A client text frame, masked with the all-zero key (payload bytes unchanged)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return head + b"\x00\x00\x00\x00" + data


PONG_EMPTY = b"\x8a\x80\x00\x00\x00\x00"


class RawWs(asyncio.Protocol):
    """One WebSocket over a raw asyncio transport."""

    def __init__(self, path: str, on_text: Callable[[RawWs, bytes], None]) -> None:
        self.path = path
        self.on_text = on_text
        self.buf = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.handshaken = False
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.state: Any = None   # owner's per-connection state

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = buf.startswith(b"HTTP/1.1 101")
            del buf[:end + 4]
            self.handshaken = True
            if not self.open.done():
                self.open.set_result(ok)
        pos = 0
        size = len(buf)
        on_text = self.on_text
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 10
            if size - pos < head + n:
                break
            opcode = b0 & 0x0F
            if opcode == 1:
                on_text(self, bytes(buf[pos + head:pos + head + n]))
            elif opcode == 9 and self.transport is not None:   # server ping: answer
                self.transport.write(PONG_EMPTY if n == 0 else
                                     frame_control(0xA, bytes(buf[pos + head:pos + head + n])))
            elif opcode == 8:
                self.closed = True
            pos += head + n
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.open.done():
            self.open.set_result(False)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)


def frame_control(opcode: int, payload: bytes) -> bytes:
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + b"\x00\x00\x00\x00" + payload


async def connect(port: int, on_text: Callable[[RawWs, bytes], None]) -> RawWs:
    loop = asyncio.get_running_loop()
    _t, proto = await loop.create_connection(lambda: RawWs("/ws", on_text), "127.0.0.1", port)
    if not await proto.open:
        raise ConnectionError("handshake refused")
    return proto


def probe_token(nonce: str) -> str:
    from signaling.auth import probe_token as make

    return make(SECRET_KEY, nonce)


class Setup:
    """Collects the JSON messages of the set-up phase for one connection."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def __call__(self, ws: RawWs, data: bytes) -> None:
        self.messages.put_nowait(json.loads(data))

    async def expect(self, kind: str, within: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            m = await asyncio.wait_for(self.messages.get(), max(0.01, deadline - time.monotonic()))
            if m.get("type") == kind:
                return m


async def casa_pair(port: int, handler: Callable[[RawWs, bytes], None]
                    ) -> tuple[RawWs, RawWs, str, str]:
    """Two peers in one probe room: (a, b, a's peer id, b's peer id). ``handler`` takes over
    their frames once set up."""
    token = probe_token(secrets.token_urlsafe(9))
    sa, sb = Setup(), Setup()
    a = await connect(port, sa)
    a.send(frame(json.dumps({"type": "hello", "version": 1, "credential": token})))
    wa = await sa.expect("welcome")
    b = await connect(port, sb)
    b.send(frame(json.dumps({"type": "hello", "version": 1, "credential": token})))
    wb = await sb.expect("welcome")
    await sa.expect("peer_joined")
    a.on_text = handler
    b.on_text = handler
    return a, b, wa["peer_id"], wb["peer_id"]


async def bare_pair(port: int, handler: Callable[[RawWs, bytes], None]
                    ) -> tuple[RawWs, RawWs, str, str]:
    name = secrets.token_urlsafe(9)
    a = await connect(port, handler)
    b = await connect(port, handler)
    a.send(frame(name))
    b.send(frame(name))
    return a, b, "a", "b"


SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\n" + "a=rtpmap:96 VP8/90000\r\n" * 24


def burst_texts(to: str) -> list[str]:
    """An offer/answer/candidate burst: what a peer sends when a call starts or restarts."""
    cand = {"candidate": "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx "
                         "raddr 192.168.1.10 rport 46154 generation 0",
            "sdpMid": "0", "sdpMLineIndex": 0}
    out = [json.dumps({"type": "offer", "to": to, "sdp": SDP})]
    out += [json.dumps({"type": "candidate", "to": to, "candidate": cand})] * 6
    out.append(json.dumps({"type": "answer", "to": to, "sdp": SDP}))
    return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]
