"""The operator's check of the whole call path: two aiortc peers place a synthetic call
through a running Casa (signalling, ICE servers, TURN when asked) and every step is timed."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TextIO

from signaling.auth import probe_token
from signaling.peer import CallPeer, SignalClient


@dataclass
class ProbeResult:
    ok: bool = False
    steps: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""


def ws_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[8:] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[7:] + "/ws"
    return base if base.endswith("/ws") else base + "/ws"


async def probe(url: str, secret_key: str, *, relay: bool = False, within: float = 20.0,
                out: TextIO | None = None) -> ProbeResult:
    """Place the call; ``result.ok`` when video flowed both ways within ``within``."""
    result = ProbeResult()
    started = time.monotonic()
    token = probe_token(secret_key, secrets.token_urlsafe(9))
    peers: list[CallPeer] = []
    clients: list[SignalClient] = []

    def step(name: str) -> None:
        t = time.monotonic() - started
        result.steps.append((name, t))
        if out is not None:
            print(f"{t * 1000:8.1f} ms  {name}", file=out, flush=True)

    try:
        for _ in range(2):
            client = await SignalClient.connect(ws_url(url))
            clients.append(client)
            welcome = await client.hello(credential=token, within=within)
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"hello refused: {welcome.get('code')}")
            if relay and not any("username" in s for s in welcome.get("ice_servers", [])):
                raise RuntimeError("the server offers no TURN credentials")
        step("both peers connected and welcomed")
        for client in clients:
            peer = CallPeer(client, relay_only=relay)
            peers.append(peer)
            peer.start()
        a, b = peers
        await a.next_event("peer_joined", within) if a.peer_id > b.peer_id else None
        step("signalling: peers see each other")
        left = max(1.0, within - (time.monotonic() - started))
        await a.wait_frames(b.peer_id, 3, left)
        step("video from the second peer arrived")
        left = max(1.0, within - (time.monotonic() - started))
        await b.wait_frames(a.peer_id, 3, left)
        step("video from the first peer arrived")
        result.ok = True
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        if out is not None:
            print(f"FAILED: {result.error}", file=out, flush=True)
    finally:
        for p in peers:
            await p.close()
        for c in clients:
            await c.close()
    if out is not None and result.ok:
        print(f"OK: call placed in {result.steps[-1][1] * 1000:.0f} ms"
              + (" through TURN" if relay else ""), file=out, flush=True)
    return result
