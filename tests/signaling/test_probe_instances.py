"""``casa probe`` behind several instances: a round-robin proxy sends the probe's two peers to
two different instances, which must still put them in one room; and the real command, forced
through a real coturn (``--relay``)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.config import Config
from signaling.auth import probe_token
from signaling.client import SignalClient
from signaling.probe import probe
from tests.conftest import SECRET_KEY
from tests.pg import serving_url
from tests.signaling.servers import ROOT
from tests.signaling.turnserver import TURN_SECRET, coturn

__all__ = ["coturn"]   # the module-scoped fixture, used below


class RoundRobin:
    """A TCP proxy on 127.0.0.1 handing each new connection to the next backend in turn, as
    a load balancer without stickiness would; counts the connections each backend got."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.counts = [0] * len(backends)
        self._n = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        i = self._n % len(self.backends)
        self._n += 1
        self.counts[i] += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.backends[i])
        for src, dst in ((reader, up_w), (up_r, writer)):
            task = asyncio.ensure_future(_pipe(src, dst))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._pipes):
            t.cancel()
        for t in list(self._pipes):
            with contextlib.suppress(BaseException):
                await t


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        dst.close()


@pytest.fixture
def config(db_url: str, tmp_path: Path, coturn: int) -> Config:
    return Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                  turn_secret=TURN_SECRET,
                  turn_urls=(f"turn:127.0.0.1:{coturn}?transport=udp",))


@pytest.fixture
async def balanced(config: Config, aiohttp_client: Any) -> AsyncIterator[RoundRobin]:
    """Two instances (full apps, one database) behind a round-robin proxy."""
    ports = []
    for _ in range(2):
        client = await aiohttp_client(create_app(config))
        ports.append(client.server.port)
    proxy = RoundRobin(ports)
    await proxy.start()
    yield proxy
    await proxy.close()


async def test_probe_peers_on_two_instances_meet_and_media_flows(balanced):
    out = io.StringIO()
    result = await probe(f"http://127.0.0.1:{balanced.port}", SECRET_KEY, within=30, out=out)
    assert result.ok, out.getvalue()
    # One peer on each instance: the room was joined across them.
    assert balanced.counts == [1, 1]


async def test_casa_probe_relay_command_through_coturn_behind_two_instances(balanced):
    env = {**os.environ, "CASA_SECRET_KEY": SECRET_KEY, "CASA_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "probe", f"http://127.0.0.1:{balanced.port}",
        "--relay", "--timeout", "40", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(proc.communicate(), 90)
    text = output.decode()
    assert proc.returncode == 0, text
    assert "through TURN" in text
    assert balanced.counts == [1, 1]


async def test_probe_peers_on_two_instances_see_each_other_join_and_leave(config, aiohttp_client):
    token = probe_token(SECRET_KEY, secrets.token_urlsafe(9))
    urls = []
    for _ in range(2):
        client = await aiohttp_client(create_app(config))
        urls.append(str(client.make_url("/ws")).replace("http://", "ws://"))
    first = await SignalClient.connect(urls[0])
    second = await SignalClient.connect(urls[1])
    try:
        assert (await first.hello(credential=token))["peers"] == []
        await second.hello(credential=token)
        joined = await first.expect("peer_joined", 5)
        assert joined["peer"]["peer_id"] == second.welcome["peer_id"]
        # The one alone on its instance when it came learns of the other from the bus.
        if not second.welcome["peers"]:
            joined = await second.expect("peer_joined", 5)
            assert joined["peer"]["peer_id"] == first.welcome["peer_id"]
        # A relay crosses instances; a relay to an unknown peer is refused as in any room.
        await first.send("candidate", to=second.welcome["peer_id"], candidate=None)
        assert (await second.expect("candidate", 5))["from"] == first.welcome["peer_id"]
        await first.send("candidate", to="p_nobody_here_at_all", candidate=None, id="c9")
        err = await first.expect("error", 5)
        assert (err["code"], err["id"]) == ("unknown_peer", "c9")
        await first.send("leave")
        left = await second.expect("peer_left", 5)
        assert left["peer_id"] == first.welcome["peer_id"]
    finally:
        await first.close()
        await second.close()
