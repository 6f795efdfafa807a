"""The pre-call echo peer, and ``casa probe`` through a running server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from signaling.peer import SmallVideoTrack
from signaling.probe import probe
from tests.conftest import SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


async def test_echo_peer_returns_video_and_reports(client, visits, gp):
    visit = await visits(gp.id)
    pc = RTCPeerConnection()
    frames = 0
    tasks = []

    @pc.on("track")
    def on_track(track):
        async def count() -> None:
            nonlocal frames
            with contextlib.suppress(Exception):
                while True:
                    await track.recv()
                    frames += 1

        if track.kind == "video":
            tasks.append(asyncio.ensure_future(count()))

    pc.addTrack(AudioStreamTrack())
    pc.addTrack(SmallVideoTrack())
    try:
        await pc.setLocalDescription(await pc.createOffer())
        resp = await client.post("/api/v1/precall/offer",
                                 json={"sdp": pc.localDescription.sdp, "type": "offer"},
                                 headers={"Authorization": f"Bearer {visit.token}"})
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        for _ in range(300):
            if frames >= 10:
                break
            await asyncio.sleep(0.05)
        assert frames >= 10
        report = await (await client.get(f"/api/v1/precall/{answer['id']}/report")).json()
        assert report["state"] == "connected"
        assert report["candidate_type"] in ("host", "srflx", "prflx")
        assert report["frames"]["video"] >= 10
        assert report["bitrate_kbps"] > 0
    finally:
        await pc.close()


async def test_echo_refuses_strangers_and_garbage(client, visits, gp):
    resp = await client.post("/api/v1/precall/offer", json={"sdp": "v=0", "type": "offer"},
                             headers={"Authorization": "Bearer nope"})
    assert resp.status == 401
    visit = await visits(gp.id)
    auth = {"Authorization": f"Bearer {visit.token}"}
    # Not an offer object, or an SDP the echo peer cannot read: 400.
    for body in (["x"], {"sdp": "garbage", "type": "offer"}):
        resp = await client.post("/api/v1/precall/offer", json=body, headers=auth)
        assert resp.status == 400, body
        assert (await resp.json())["error"]["code"] == "bad_request"
    # A field of the wrong kind: 422 naming it, as every API body.
    wrong: list[tuple[dict[str, object], str]] = [
        ({"sdp": "v=0", "type": "answer"}, "type"), ({"sdp": 3}, "sdp"),
        ({"sdp": "", "type": "offer"}, "sdp"), ({"type": "offer"}, "sdp")]
    for fields, field in wrong:
        resp = await client.post("/api/v1/precall/offer", json=fields, headers=auth)
        assert resp.status == 422, fields
        error = (await resp.json())["error"]
        assert error["code"] == "validation_failed"
        assert list(error["details"]["fields"]) == [field], fields
    missing = await client.get("/api/v1/precall/unknown-id/report")
    assert missing.status == 404


async def test_probe_places_a_call_and_times_each_step(client):
    out = io.StringIO()
    result = await probe(str(client.make_url("/")), SECRET_KEY, within=25, out=out)
    assert result.ok, out.getvalue()
    text = out.getvalue()
    assert "video from the first peer arrived" in text and "OK: call placed" in text


async def test_probe_with_a_wrong_key_fails(client):
    result = await probe(str(client.make_url("/")), "wrong-key-" + "z" * 40, within=5)
    assert not result.ok
    assert "unauthenticated" in result.error


async def test_casa_probe_command_exit_code(client):
    env = {**os.environ, "CASA_SECRET_KEY": SECRET_KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "probe", str(client.make_url("/")),
        "--timeout", "25", cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stdout.decode()
    assert b"OK: call placed" in stdout
