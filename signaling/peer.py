"""A small signalling client and an aiortc call peer that follows docs/protocol.md.

Used by ``casa probe``, the tests and the benchmarks: real WebRTC through the real server.
aiortc cannot restart ICE, so where a browser would restart ICE this peer opens a new peer
connection (the protocol allows either)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections import deque
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import candidate_from_sdp
from av import VideoFrame

VIDEO_CLOCK = 90000


class SmallVideoTrack(MediaStreamTrack):
    """160x120 frames at 15 fps: cheap to encode, enough to prove media flows."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        self._pts += VIDEO_CLOCK // 15
        wait = self._start + self._pts / VIDEO_CLOCK - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = VideoFrame(width=160, height=120)
        for plane in frame.planes:
            plane.update(bytes([90]) * plane.buffer_size)
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class SignalClient:
    """One /ws connection: JSON in and out, with a within on every receive."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 own_session: bool) -> None:
        self.session = session
        self.ws = ws
        self._own = own_session
        self.backlog: deque[dict[str, Any]] = deque()
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def connect(cls, url: str, *, cookies: dict[str, str] | None = None,
                      headers: dict[str, str] | None = None,
                      session: aiohttp.ClientSession | None = None) -> SignalClient:
        own = session is None
        if session is None:
            session = aiohttp.ClientSession(cookies=cookies)
        try:
            ws = await session.ws_connect(url, headers=headers, heartbeat=None,
                                          max_msg_size=1 << 20)
        except Exception:
            if own:
                await session.close()
            raise
        return cls(session, ws, own)

    async def send(self, kind: str, **fields: Any) -> None:
        await self.ws.send_str(json.dumps({"type": kind, **fields}))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        """The next message (backlog first); raises TimeoutError or ConnectionError."""
        if self.backlog:
            return self.backlog.popleft()
        msg = await self.ws.receive(timeout=within)
        if msg.type == aiohttp.WSMsgType.TEXT:
            data: dict[str, Any] = json.loads(msg.data)
            return data
        raise ConnectionError(f"socket closed ({self.ws.close_code})")

    async def expect(self, kind: str, within: float = 5.0) -> dict[str, Any]:
        """Wait for a message of this type; others are kept in the backlog, in order."""
        deadline = time.monotonic() + within
        skipped: list[dict[str, Any]] = []
        try:
            for i, queued in enumerate(self.backlog):
                if queued.get("type") == kind:
                    del self.backlog[i]
                    return queued
            pending = list(self.backlog)
            self.backlog.clear()
            skipped.extend(pending)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} within {within} s")
                msg = await self.ws.receive(timeout=left)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket closed ({self.ws.close_code}) waiting {kind}")
                m: dict[str, Any] = json.loads(msg.data)
                if m.get("type") == kind:
                    return m
                skipped.append(m)
        finally:
            self.backlog.extendleft(reversed(skipped))

    async def hello(self, **fields: Any) -> dict[str, Any]:
        """Send hello (version 1 unless given) and return the reply (welcome or error)."""
        within = float(fields.pop("within", 5.0))
        await self.send("hello", **{"version": 1, **fields})
        m = await self.recv(within)
        if m.get("type") == "welcome":
            self.welcome = m
        return m

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._own:
            await self.session.close()


class CallPeer:
    """Runs a client's side of the call: the offerer rule, SDP and candidates, and media.

    Counts video frames received from each remote peer."""

    def __init__(self, client: SignalClient, *, relay_only: bool = False,
                 send_media: bool = True) -> None:
        self.client = client
        self.relay_only = relay_only
        self.send_media = send_media
        self.peer_id = str(client.welcome.get("peer_id", ""))
        self.ice = [RTCIceServer(**s) for s in client.welcome.get("ice_servers", [])]
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.offer_ids: dict[str, str] = {}
        self._offers = 0
        self.frames: dict[str, int] = {}
        self.first_frame: dict[str, float] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.state = str(client.welcome.get("state", ""))

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run())
        for p in self.client.welcome.get("peers", []):
            if self.state == "in_call" and p.get("connected"):
                self._maybe_offer(p["peer_id"])

    async def _run(self) -> None:
        while True:
            try:
                m = await self.client.recv(within=3600)
            except (ConnectionError, TimeoutError, aiohttp.ClientError):
                await self.events.put({"type": "closed"})
                return
            await self._handle(m)

    async def _handle(self, m: dict[str, Any]) -> None:
        kind = m.get("type")
        if kind == "admitted":
            self.state = "in_call"
            for p in m.get("peers", []):
                if p.get("connected"):
                    self._maybe_offer(p["peer_id"])
        elif kind == "sent_back":
            self.state = "waiting"
            await self._close_all()
        elif kind in ("peer_joined",):
            self._maybe_offer(m["peer"]["peer_id"])
        elif kind == "peer_resumed":
            self._maybe_offer(m["peer_id"])
        elif kind == "peer_left":
            pc = self.pcs.pop(m["peer_id"], None)
            if pc is not None:
                await pc.close()
        elif kind == "offer":
            self._spawn(self._answer(m["from"], m["sdp"], m.get("id")))
        elif kind == "answer":
            pc = self.pcs.get(m["from"])
            # An answer to an offer this peer has since replaced (a resume can make two
            # offers cross) must not be applied to the newer connection.
            if pc is not None and m.get("id") == self.offer_ids.get(m["from"]) \
                    and pc.signalingState == "have-local-offer":
                self._spawn(pc.setRemoteDescription(RTCSessionDescription(m["sdp"], "answer")))
        elif kind == "candidate":
            pc = self.pcs.get(m["from"])
            c = m.get("candidate")
            if pc is not None and c and c.get("candidate"):
                cand = candidate_from_sdp(c["candidate"].removeprefix("candidate:"))
                cand.sdpMid, cand.sdpMLineIndex = c.get("sdpMid"), c.get("sdpMLineIndex")
                self._spawn(pc.addIceCandidate(cand))
        await self.events.put(m)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _maybe_offer(self, other: str) -> None:
        if other and self.peer_id < other:
            self._spawn(self._offer(other))

    def _new_pc(self, other: str) -> RTCPeerConnection:
        old = self.pcs.pop(other, None)
        if old is not None:
            self._spawn(old.close())
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice, iceTransportPolicy=policy))
        self.pcs[other] = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._spawn(self._count(other, track))
            else:
                sink = MediaBlackhole()
                sink.addTrack(track)
                self._spawn(sink.start())

        if self.send_media:
            pc.addTrack(AudioStreamTrack())
            pc.addTrack(SmallVideoTrack())
        return pc

    async def _count(self, other: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                self.frames[other] = self.frames.get(other, 0) + 1
                self.first_frame.setdefault(other, time.monotonic())

    async def _offer(self, other: str) -> None:
        pc = self._new_pc(other)
        self._offers += 1
        offer_id = f"o{self._offers}"
        self.offer_ids[other] = offer_id
        await pc.setLocalDescription(await pc.createOffer())
        if self.pcs.get(other) is pc:   # not replaced meanwhile
            await self.client.send("offer", to=other, sdp=pc.localDescription.sdp, id=offer_id)

    async def _answer(self, other: str, sdp: str, offer_id: str | None) -> None:
        pc = self._new_pc(other)
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        if self.pcs.get(other) is not pc:
            return
        extra = {"id": offer_id} if offer_id else {}
        await self.client.send("answer", to=other, sdp=pc.localDescription.sdp, **extra)

    async def wait_frames(self, other: str, count: int = 5, within: float = 15.0) -> float:
        """Seconds until ``count`` video frames from ``other`` arrived (from now)."""
        start = time.monotonic()
        base = self.frames.get(other, 0)
        while self.frames.get(other, 0) < base + count:
            if time.monotonic() - start > within:
                raise TimeoutError(f"no video from {other} within {within} s")
            await asyncio.sleep(0.02)
        return time.monotonic() - start

    async def next_event(self, kind: str, within: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            m = await asyncio.wait_for(self.events.get(), max(0.01, deadline - time.monotonic()))
            if m.get("type") == kind:
                return m

    async def _close_all(self) -> None:
        for pc in list(self.pcs.values()):
            await pc.close()
        self.pcs.clear()

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(BaseException):
                await self._runner
        for t in list(self._tasks):
            t.cancel()
        await self._close_all()
        await self.client.close()
