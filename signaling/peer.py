"""An aiortc call peer that follows docs/protocol.md, over a ``SignalClient``
(``signaling.client``, re-exported here for the callers that import it from this module).

Used by ``casa probe``, the tests and the benchmarks: real WebRTC through the real server.
aiortc cannot restart ICE, so where a browser would restart ICE this peer opens a new peer
connection (the protocol allows either)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
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

from signaling.client import SignalClient

__all__ = ["CallPeer", "SignalClient", "SmallVideoTrack"]

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
