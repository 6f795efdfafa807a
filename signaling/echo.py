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
from typing import Any

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

from server import errors
from server.errors import ApiError
from server.keys import CONFIG, POOL, STAFF
from signaling import presence, turn
from signaling.auth import PATIENT_COOKIE
from signaling.keys import DIRECTORY
from signaling.messages import MAX_CREDENTIAL_CHARS, MAX_SDP_CHARS

# Echoing video costs a core's fraction per peer: a few at once per instance.
MAX_ECHO_PEERS = 4
# A pre-call check takes under a minute; the peer closes itself after this.
ECHO_LIFETIME_S = 120.0


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
    started: float = field(default_factory=time.monotonic)
    tracks: list[CountingTrack] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


PEERS = web.AppKey("signaling_echo_peers", dict[str, EchoPeer])


def setup(app: web.Application) -> None:
    app[PEERS] = {}
    app.router.add_post("/api/v1/precall/offer", offer_view, name="precall_offer")
    app.router.add_get("/api/v1/precall/{id}/report", report_view, name="precall_report")


async def check_allowed_until(request: web.Request) -> float | None:
    """Until when (unix time) the caller may run the pre-call check: a signed-in staff member
    always (``inf``), a patient (cookie or ``Bearer`` credential) or a guest (``Bearer g_...``)
    until their consultation's join window closes; None for anyone else. The ICE servers
    endpoint (server/calls/precall.py) asks the same question."""
    if request.get(STAFF) is not None:
        return float("inf")
    auth = request.headers.get("Authorization", "")
    credential = auth[7:] if auth.startswith("Bearer ") else request.cookies.get(PATIENT_COOKIE)
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        return None
    pool, directory = request.app[POOL], request.app[DIRECTORY]
    if credential.startswith(presence.GUEST_PREFIX):
        # A guest (interpreter, second clinician) checks their devices before entering too.
        guest = await presence.resolve_guest(pool, credential)
        c = await directory.get(pool, guest[1]) if guest else None
    else:
        c = await directory.resolve_patient_credential(pool, credential)
    return c.join_closes_at.timestamp() if c is not None else None


async def offer_view(request: web.Request) -> web.Response:
    if await check_allowed_until(request) is None:
        raise ApiError(errors.UNAUTHENTICATED)
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(errors.BAD_REQUEST) from None
    sdp = body.get("sdp") if isinstance(body, dict) else None
    if not isinstance(sdp, str) or not sdp or len(sdp) > MAX_SDP_CHARS \
            or body.get("type") != "offer":
        raise ApiError(errors.BAD_REQUEST)
    peers = request.app[PEERS]
    if len(peers) >= MAX_ECHO_PEERS:
        raise ApiError(errors.RATE_LIMITED, headers={"Retry-After": "30"})
    peer_id = secrets.token_urlsafe(16)
    ice = [RTCIceServer(**s) for s in turn.ice_servers(request.app[CONFIG], "echo-" + peer_id[:8])]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
    peer = EchoPeer(pc)
    peers[peer_id] = peer

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        echo = CountingTrack(track)
        peer.tracks.append(echo)
        pc.addTrack(echo)

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            await _close(request.app, peer_id)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not pc.getTransceivers():
            raise ValueError("an offer without audio or video")
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception:
        await _close(request.app, peer_id)
        raise ApiError(errors.BAD_REQUEST) from None
    loop = asyncio.get_running_loop()
    peer.timer = loop.call_later(ECHO_LIFETIME_S,
                                 lambda: asyncio.ensure_future(_close(request.app, peer_id)))
    return web.json_response({"id": peer_id, "sdp": pc.localDescription.sdp, "type": "answer"})


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


async def _close(app: web.Application, peer_id: str) -> None:
    peer = app[PEERS].pop(peer_id, None)
    if peer is None:
        return
    if peer.timer is not None:
        peer.timer.cancel()
    with contextlib.suppress(Exception):
        await peer.pc.close()


async def close_all(app: web.Application) -> None:
    peers: dict[str, EchoPeer] = app[PEERS]
    for peer_id in list(peers.keys()):
        await _close(app, peer_id)
