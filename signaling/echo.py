"""The pre-call check: a server-side aiortc peer that echoes a patient's audio and video back
and reports what it saw (round-trip time, loss, bitrate, candidate type).

``POST /api/v1/precall/offer`` answers an SDP offer; ``GET /api/v1/precall/{id}/report`` reads
the statistics. Each echo peer decodes and re-encodes video, so an instance runs only a few."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av.frame import Frame
from av.packet import Packet

from server import errors, openapi, validation
from server.background import Background
from server.config import Config
from server.errors import ApiError, ErrorKind
from server.keys import CONFIG
from signaling import precall, turn
from signaling.echo_access import ECHO_BUSY, TOO_MANY_CHECKS, Caller, caller
from signaling.messages import MAX_SDP_CHARS

# Echoing video costs a core's fraction per peer: a few at once per instance.
MAX_ECHO_PEERS = 4
# One page runs two checks one after the other (direct, then relay only), and a reload may
# leave the last one behind for a few seconds: more than that is not one person's check.
MAX_ECHO_PEERS_PER_CALLER = 2
# Patients at a centre's kiosks may share one address, but one address never takes every slot.
MAX_ECHO_PEERS_PER_ADDRESS = 3
# The page gives up on a connection after 10 s (ECHO_CONNECT_MS in precall.js); a peer whose
# ICE has not connected a little after that is nobody's, and its slot goes back.
ECHO_ICE_TIMEOUT_S = 15.0
# A pre-call check takes under a minute; the peer closes itself after this.
ECHO_LIFETIME_S = 120.0


@dataclass
class EchoLimits:
    """The echo peers' limits (the constants above); tests inject shorter ones."""

    total: int = MAX_ECHO_PEERS
    per_caller: int = MAX_ECHO_PEERS_PER_CALLER
    per_address: int = MAX_ECHO_PEERS_PER_ADDRESS
    ice_timeout_s: float = ECHO_ICE_TIMEOUT_S
    lifetime_s: float = ECHO_LIFETIME_S


class CountingTrack(MediaStreamTrack):
    """Forwards a remote track back to its sender, counting frames on the way."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.frames = 0

    async def recv(self) -> Frame | Packet[Any]:
        frame = await self.source.recv()
        self.frames += 1
        return frame


@dataclass
class EchoPeer:
    pc: RTCPeerConnection
    caller: Caller
    started: float = field(default_factory=time.monotonic)
    tracks: list[CountingTrack] = field(default_factory=list)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class EchoPeers:
    """The echo peers of this instance, and who holds them."""

    def __init__(self, limits: EchoLimits | None = None) -> None:
        self.limits = limits or EchoLimits()
        self.peers: dict[str, EchoPeer] = {}
        # The timed closes: kept until done, a failure logged.
        self.tasks = Background("echo")

    def refusal(self, who: Caller) -> ErrorKind | None:
        """Why ``who`` may not take another peer now, or None. The caller's own limits come
        first: someone holding their share is told so at once, even when all are taken."""
        held = list(self.peers.values())
        if sum(p.caller.key == who.key for p in held) >= self.limits.per_caller \
                or sum(p.caller.address == who.address for p in held) >= self.limits.per_address:
            return TOO_MANY_CHECKS
        if len(held) >= self.limits.total:
            return ECHO_BUSY
        return None

    def get(self, peer_id: str) -> EchoPeer | None:
        return self.peers.get(peer_id)


PEERS = web.AppKey("signaling_echo_peers", EchoPeers)


def setup(app: web.Application) -> None:
    app[PEERS] = EchoPeers()
    openapi.route(app, openapi.Operation(
        "POST", "/precall/offer", "precall_offer", "Start a device check: the WebRTC offer "
        "of the caller's camera and microphone, answered by the server's echo peer",
        answer=EchoAnswer, body=EchoOffer, errors=(400, 401, 410, 422, 429), tag="precall"),
        offer_view)
    openapi.route(app, openapi.Operation(
        "GET", "/precall/{id}/report", "precall_report", "What the echo peer received",
        answer=dict[str, Any], errors=(404,), tag="precall"), report_view)
    openapi.route(app, openapi.Operation(
        "GET", "/precall/ice-servers", "precall_ice_servers",
        "STUN and TURN servers for the device check", answer=dict[str, Any],
        errors=(401, 410), tag="precall"), precall.ice_servers_view)


class EchoOffer(msgspec.Struct):
    """The device check's offer: the caller's camera and microphone as an SDP offer."""

    type: Literal["offer"]
    sdp: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SDP_CHARS)]


class EchoAnswer(msgspec.Struct):
    id: str
    sdp: str
    type: Literal["answer"]


async def offer_view(request: web.Request) -> web.Response:
    who = await caller(request)
    sdp = (await validation.body(request, EchoOffer)).sdp
    echo = request.app[PEERS]
    # Checked and taken with no await between: concurrent offers cannot all pass the check.
    refused = echo.refusal(who)
    if refused is not None:
        raise ApiError(refused, headers={"Retry-After": str(int(echo.limits.ice_timeout_s))})
    peer_id = secrets.token_urlsafe(16)
    peer = EchoPeer(_peer_connection(request.app[CONFIG], peer_id), who)
    echo.peers[peer_id] = peer
    pc = peer.pc

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        counted = CountingTrack(track)
        peer.tracks.append(counted)
        pc.addTrack(counted)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            await _close(echo, peer_id)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not pc.getTransceivers():
            raise ValueError("an offer without audio or video")
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception:
        await _close(echo, peer_id)
        raise ApiError(errors.BAD_REQUEST) from None
    loop = asyncio.get_running_loop()
    peer.timers = [
        loop.call_later(echo.limits.ice_timeout_s, lambda: echo.tasks.spawn(
            _close_unless_connected(echo, peer_id), "closing an unconnected echo peer")),
        loop.call_later(echo.limits.lifetime_s, lambda: echo.tasks.spawn(
            _close(echo, peer_id), "closing an echo peer at the end of its life"))]
    return web.json_response({"id": peer_id, "sdp": pc.localDescription.sdp, "type": "answer"})


def _peer_connection(config: Config, peer_id: str) -> RTCPeerConnection:
    ice = [RTCIceServer(**s) for s in turn.ice_servers(config, "echo-" + peer_id[:8])]
    return RTCPeerConnection(RTCConfiguration(iceServers=ice))


async def report_view(request: web.Request) -> web.Response:
    peer = request.app[PEERS].get(request.match_info["id"])
    if peer is None:
        raise ApiError(errors.NOT_FOUND)
    return web.json_response(await report(peer))


async def report(peer: EchoPeer) -> dict[str, Any]:
    """What the server saw of the patient's media so far."""
    stats = await peer.pc.getStats()
    rtt: list[float] = []
    received = lost = 0
    bytes_in = 0
    for s in stats.values():
        if s.type == "remote-inbound-rtp" and getattr(s, "roundTripTime", None) is not None:
            rtt.append(float(s.roundTripTime))
        elif s.type == "inbound-rtp":
            received += int(getattr(s, "packetsReceived", 0) or 0)
            lost += max(0, int(getattr(s, "packetsLost", 0) or 0))
        elif s.type == "transport":
            bytes_in += int(getattr(s, "bytesReceived", 0) or 0)
    elapsed = max(0.001, time.monotonic() - peer.started)
    return {"state": peer.pc.connectionState,
            "rtt_ms": round(1000 * sum(rtt) / len(rtt), 1) if rtt else None,
            "packet_loss": round(lost / (received + lost), 4) if received + lost else None,
            "bitrate_kbps": round(bytes_in * 8 / elapsed / 1000, 1),
            "candidate_type": candidate_type(peer.pc),
            "frames": {t.kind: t.frames for t in peer.tracks}}


def candidate_type(pc: RTCPeerConnection) -> str | None:
    """host, srflx, prflx or relay: the remote candidate of the selected ICE pair."""
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        ice = getattr(dtls, "transport", None)
        connection = getattr(ice, "_connection", None)
        nominated = getattr(connection, "_nominated", None) or {}
        for pair in nominated.values():
            local = getattr(pair, "local_candidate", None)
            remote = getattr(pair, "remote_candidate", None)
            # A relay on either side is what matters to the patient: their media is relayed.
            for cand in (local, remote):
                if getattr(cand, "type", None) == "relay":
                    return "relay"
            return str(getattr(remote, "type", None) or "") or None
    return None


async def _close_unless_connected(echo: EchoPeers, peer_id: str) -> None:
    """An offer whose ICE never connected (a closed tab, an unreachable address, or someone
    holding slots on purpose) gives its slot back."""
    peer = echo.get(peer_id)
    if peer is not None and peer.pc.iceConnectionState not in ("connected", "completed"):
        await _close(echo, peer_id)


async def _close(echo: EchoPeers, peer_id: str) -> None:
    peer = echo.peers.pop(peer_id, None)
    if peer is None:
        return
    for timer in peer.timers:
        timer.cancel()
    with contextlib.suppress(Exception):
        await peer.pc.close()


async def close_all(app: web.Application) -> None:
    echo = app[PEERS]
    for peer_id in list(echo.peers):
        await _close(echo, peer_id)
    await echo.tasks.close()
