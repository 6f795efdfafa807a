"""Load-generation machinery for the signalling benchmarks: servers pinned to one core (Casa,
the bare aiohttp relay, the PeerJS server), a raw-socket WebSocket client fast enough not to be
the bottleneck, and each server's handshake and signalling frames.

The client writes pre-encoded frames (masked with an all-zero key, which RFC 6455 permits, so
the payload bytes are the frame bytes) and only parses the 2-10 byte frame headers of what it
receives: one process drives well over 100,000 messages/s, where an aiohttp client tops out
near 25,000."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import resource
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from tests.processes import listener, port_of, stop

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "bench-secret-key-" + "b" * 40
SERVER_CORE = "0"
CLIENT_CORE = "1"
# The PeerJS server (npm ``peer``), installed by ``npm install --prefix bench/node``.
PEERJS_SERVER = ROOT / "bench" / "node" / "peerjs_server.mjs"
PEERJS_KEY = "peerjs"
KINDS = ("casa", "peerjs", "bare")


def stop_on_sigterm() -> None:
    """SIGTERM (``timeout``, a CI runner) unwinds like Ctrl-C, so the servers and the embedded
    PostgreSQL are stopped by their ``finally`` blocks rather than left running."""
    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def pin(core: str) -> None:
    os.sched_setaffinity(0, {int(core)})


def free_port() -> int:
    """A port free now, for a server that cannot be handed a bound socket (the PeerJS
    server): another process may take it before that server binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A server process on 127.0.0.1 pinned to SERVER_CORE: ``casa``, ``bare`` or ``peerjs``.
    ``behind_proxy``: Casa believes X-Forwarded-For from 127.0.0.1, so every client socket can
    come from its own address (as behind a load balancer) and the cap on sockets without hello
    per address does not apply to one load generator's thousands. ``log``: a file for the
    server's output (errors only), which is discarded otherwise."""

    def __init__(self, kind: str, database_url: str | None = None,
                 behind_proxy: bool = False, log: Path | None = None) -> None:
        self.kind = kind
        # Bound here and handed over (``--fd``), except to the PeerJS server, which takes a
        # number: a port found free could be taken before the server binds it.
        sock = listener() if kind != "peerjs" else None
        self.port = port_of(sock) if sock is not None else free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="casa-bench-")
        os.chmod(self.tmp.name, 0o755)  # noqa: S103 - embedded PostgreSQL runs as its own user
        env = {**os.environ, "CASA_SECRET_KEY": SECRET_KEY, "CASA_DATA_DIR": self.tmp.name,
               "CASA_LOG_LEVEL": "ERROR", "CASA_PUBLIC_ORIGIN": f"http://127.0.0.1:{self.port}"}
        env.pop("DATABASE_URL", None)
        if database_url:
            env["DATABASE_URL"] = database_url
        if behind_proxy:
            env["CASA_TRUSTED_PROXIES"] = "127.0.0.1/32"
        fd = sock.fileno() if sock is not None else -1
        fds = (fd,) if sock is not None else ()
        if kind == "bare":
            cmd = [sys.executable, "-m", "bench.signaling_bare", "--fd", str(fd)]
        elif kind == "peerjs":
            cmd = ["node", str(PEERJS_SERVER), str(self.port)]
        else:
            cmd = [sys.executable, "-m", "server.cli", "serve", "--fd", str(fd)]
        out = log.open("w") if log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, *cmd], cwd=ROOT,
                                         env=env, stdout=out, stderr=out, pass_fds=fds)
        finally:
            if log and not isinstance(out, int):
                out.close()
            if sock is not None:
                sock.close()   # the server's now

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        path = {"casa": "/healthz", "bare": "/ws", "peerjs": "/"}[self.kind]
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
        stop(self.proc, 15)
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

    def __init__(self, path: str, on_text: Callable[[RawWs, bytes], None],
                 headers: str = "") -> None:
        self.path = path
        self.headers = headers   # extra request header lines, each ending in CRLF
        self.on_text = on_text
        self.buf = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.handshaken = False
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.close_code: int | None = None   # from the server's close frame, if one came
        self.state: Any = None   # owner's per-connection state

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n{self.headers}\r\n").encode())

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
                if n >= 2:
                    self.close_code = (buf[pos + head] << 8) | buf[pos + head + 1]
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


async def connect(port: int, on_text: Callable[[RawWs, bytes], None], path: str = "/ws",
                  headers: str = "") -> RawWs:
    loop = asyncio.get_running_loop()
    _t, proto = await loop.create_connection(lambda: RawWs(path, on_text, headers),
                                             "127.0.0.1", port)
    if not await proto.open:
        raise ConnectionError("handshake refused")
    return proto


def probe_token(nonce: str) -> str:
    from signaling.auth import probe_token as make

    return make(SECRET_KEY, nonce)


class HandshakeError(Exception):
    """The server refused a set-up step; ``code`` is its error code (or close code)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def error_code(m: dict[str, Any]) -> str | None:
    """The code of an error frame, Casa's (``error``) or PeerJS's (``ERROR``, ``ID-TAKEN``)."""
    if m.get("type") == "error":
        return str(m.get("code"))
    if m.get("type") in ("ERROR", "ID-TAKEN"):
        return str(m["type"]) + ": " + str((m.get("payload") or {}).get("msg", ""))
    return None


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
            code = error_code(m)
            if code is not None:
                raise HandshakeError(code)


_addresses = itertools.count(1)


def client_address() -> str:
    """An X-Forwarded-For line naming a new client address (the server must be started
    ``behind_proxy``): every person connects from their own."""
    n = next(_addresses)
    return f"X-Forwarded-For: 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}\r\n"


async def casa_pair(port: int, handler: Callable[[RawWs, bytes], None]
                    ) -> tuple[RawWs, RawWs, str, str]:
    """Two peers in one probe room: (a, b, a's peer id, b's peer id). ``handler`` takes over
    their frames once set up. Start the server ``behind_proxy`` for more than 128 pairs: at
    a37dfec Casa refuses every upgrade from an address (429, "too many sockets without
    hello") once 256 of its sockets are open, although all of them said hello."""
    token = probe_token(secrets.token_urlsafe(9))
    sa, sb = Setup(), Setup()
    a = await connect(port, sa, headers=client_address())
    a.send(frame(json.dumps({"type": "hello", "version": 1, "credential": token})))
    wa = await sa.expect("welcome")
    b = await connect(port, sb, headers=client_address())
    b.send(frame(json.dumps({"type": "hello", "version": 1, "credential": token})))
    wb = await sb.expect("welcome")
    await sa.expect("peer_joined")
    a.on_text = handler
    b.on_text = handler
    return a, b, wa["peer_id"], wb["peer_id"]


class Visitor(Protocol):
    """What a consultation pair needs (``bench.signaling_seed.Visit``)."""

    @property
    def room(self) -> str: ...
    @property
    def patient_token(self) -> str: ...
    @property
    def clinician_session(self) -> str: ...


def patient_hello(visit: Visitor) -> bytes:
    return frame(json.dumps({"type": "hello", "version": 1, "credential": visit.patient_token}))


def clinician_hello(visit: Visitor) -> bytes:
    return frame(json.dumps({"type": "hello", "version": 1, "room": visit.room}))


def clinician_headers(visit: Visitor) -> str:
    return f"Cookie: casa_session={visit.clinician_session}\r\n{client_address()}"


def admit(peer_id: str) -> bytes:
    return frame(json.dumps({"type": "admit", "peer": peer_id}))


async def visit_pair(port: int, handler: Callable[[RawWs, bytes], None], visit: Visitor
                     ) -> tuple[RawWs, RawWs, str, str]:
    """A consultation's patient and clinician through Casa's real handshake: the patient's
    hello (invitation token) puts them in the waiting room, the clinician's hello (session
    cookie, room) enters the call, the clinician admits the patient. Returns (patient,
    clinician, patient's peer id, clinician's peer id); ``handler`` takes over after. The
    server must be started ``behind_proxy``: each socket comes from its own address. A
    refusal raises ``HandshakeError`` naming the step, with both sockets closed."""
    sp, sc = Setup(), Setup()
    opened: list[RawWs] = []
    step = "patient hello"
    try:
        patient = await connect(port, sp, headers=client_address())
        opened.append(patient)
        patient.send(patient_hello(visit))
        wp = await sp.expect("welcome")
        step = "clinician hello"
        clinician = await connect(port, sc, headers=clinician_headers(visit))
        opened.append(clinician)
        clinician.send(clinician_hello(visit))
        wc = await sc.expect("welcome")
        if wp["state"] != "in_call":   # a patient back within the grace period is still in it
            step = "admit"
            clinician.send(admit(wp["peer_id"]))
            await sp.expect("admitted")
            await sc.expect("peer_joined")
    except (HandshakeError, ConnectionError, TimeoutError) as exc:
        for ws in opened:
            if ws.transport is not None:
                ws.transport.close()
        code = exc.code if isinstance(exc, HandshakeError) else type(exc).__name__
        raise HandshakeError(f"{step}: {code}") from exc
    patient.on_text = handler
    clinician.on_text = handler
    return patient, clinician, wp["peer_id"], wc["peer_id"]


async def peerjs_peer(port: int) -> tuple[RawWs, str]:
    """One PeerJS client: the socket with its id and token in the query, open on ``OPEN``."""
    peer_id = secrets.token_hex(8)
    setup = Setup()
    ws = await connect(port, setup, f"/peerjs?key={PEERJS_KEY}&id={peer_id}"
                                     f"&token={secrets.token_hex(6)}")
    await setup.expect("OPEN")
    return ws, peer_id


async def peerjs_pair(port: int, handler: Callable[[RawWs, bytes], None]
                      ) -> tuple[RawWs, RawWs, str, str]:
    (a, pa), (b, pb) = await asyncio.gather(peerjs_peer(port), peerjs_peer(port))
    a.on_text = handler
    b.on_text = handler
    return a, b, pa, pb


async def bare_pair(port: int, handler: Callable[[RawWs, bytes], None]
                    ) -> tuple[RawWs, RawWs, str, str]:
    name = secrets.token_urlsafe(9)
    a = await connect(port, handler)
    b = await connect(port, handler)
    a.send(frame(name))
    b.send(frame(name))
    return a, b, "a", "b"


async def make_pair(kind: str, port: int, handler: Callable[[RawWs, bytes], None],
                    visit: Visitor | None = None) -> tuple[RawWs, RawWs, str, str]:
    """Two peers that can signal to each other on server ``kind``: for Casa a consultation
    (``visit``) or, without one, a probe room."""
    if kind == "peerjs":
        return await peerjs_pair(port, handler)
    if kind == "bare":
        return await bare_pair(port, handler)
    if visit is None:
        return await casa_pair(port, handler)
    return await visit_pair(port, handler, visit)


Pair = tuple[RawWs, RawWs, str, str]
WAVE = 50


async def make_pairs(kind: str, port: int, count: int, handler: Callable[[RawWs, bytes], None],
                     visits: Sequence[Visitor] = (), refused: Counter[str] | None = None
                     ) -> list[Pair]:
    """Up to ``count`` pairs, set up in waves (a real server is not a SYN flood); a pair the
    server refuses is counted in ``refused`` by step and code (or, without it, raises)."""
    out: list[Pair] = []
    for i in range(0, count, WAVE):
        for got in await asyncio.gather(*(
                make_pair(kind, port, handler, visits[j] if visits else None)
                for j in range(i, min(count, i + WAVE))), return_exceptions=True):
            if isinstance(got, HandshakeError) and refused is not None:
                refused[got.code] += 1
            elif isinstance(got, BaseException):
                raise got
            else:
                out.append(got)
    return out


LEAVE = frame('{"type":"leave"}')


async def hang_up(kind: str, conns: Sequence[RawWs], within: float = 20.0) -> None:
    """Close every socket; Casa's peers say ``leave`` first and the server closes them, so no
    30 s grace timer fires into the next measurement."""
    if kind == "casa":
        for ws in conns:
            ws.send(LEAVE)
        for _ in range(int(within / 0.05)):   # a bounded wait for the server's closes
            if all(ws.closed for ws in conns):
                break
            await asyncio.sleep(0.05)
    for ws in conns:
        if ws.transport is not None:
            ws.transport.close()


SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\n" + "a=rtpmap:96 VP8/90000\r\n" * 24


CANDIDATE = {"candidate": "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx "
                          "raddr 192.168.1.10 rport 46154 generation 0",
             "sdpMid": "0", "sdpMLineIndex": 0}


def signal_text(kind: str, what: str, to: str, body: Any) -> str:
    """One signalling message in server ``kind``'s dialect, compact as a browser's
    ``JSON.stringify`` writes it: ``what`` is offer, answer or candidate; ``body`` the SDP or
    the candidate object. PeerJS's carry the same SDP and candidate in ``payload`` (without
    the ``type`` and ``connectionId`` its client adds), so its frames are the size of Casa's
    give or take the envelope's few bytes."""
    if kind == "peerjs":
        payload = ({"sdp": {"type": what, "sdp": body}} if what != "candidate"
                   else {"candidate": body})
        message = {"type": what.upper(), "dst": to, "payload": payload}
    else:
        message = {"type": what, "to": to, "candidate" if what == "candidate" else "sdp": body}
    return json.dumps(message, separators=(",", ":"))


def burst_texts(to: str, kind: str = "casa") -> list[str]:
    """An offer/answer/candidate burst: what a peer sends when a call starts or restarts."""
    out = [signal_text(kind, "offer", to, SDP)]
    out += [signal_text(kind, "candidate", to, CANDIDATE)] * 6
    out.append(signal_text(kind, "answer", to, SDP))
    return out


TIMESTAMP = "0" * 20


def timed_candidate(kind: str, to: str) -> tuple[bytes, bytes]:
    """A candidate frame cut around a 20-digit timestamp in ``sdpMid``: send head + stamp +
    tail; the receiver finds it after ``"sdpMid":"``."""
    cand = {"candidate": "candidate:1 1 udp 1677729535 203.0.113.7 46154 typ srflx",
            "sdpMid": TIMESTAMP, "sdpMLineIndex": 0}
    whole = frame(signal_text(kind, "candidate", to, cand))
    cut = whole.index(TIMESTAMP.encode())
    return whole[:cut], whole[cut + len(TIMESTAMP):]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]
