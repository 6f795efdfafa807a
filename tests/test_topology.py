"""Casa as docker-compose.yml runs it (tests/topology.py): Debian's PostgreSQL with password
authentication over TCP, the owner migrating and the least-privilege role serving, two
``casa serve`` behind nginx (TLS, round robin, WebSocket), coturn. Every process starts once
for the module."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Iterator

import aiohttp
import asyncpg
import psutil
import pytest

from tests import topology
from tests.topology import Topology, nginx_lines

SECRET_KEY = "topology-secret-key-" + "t" * 40
# The whole module's processes start and stop within this, on a busy two-core machine.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    t = topology.start(SECRET_KEY)
    try:
        yield t
    finally:
        t.close()


def insecure() -> ssl.SSLContext:
    """The proxy's certificate is self-signed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def outside_address() -> str:
    """A non-loopback address of this machine: a client from it is not "this machine" to Casa
    (which lets a loopback scraper read /metrics without the token)."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family.name == "AF_INET" and not a.address.startswith("127."):
                return str(a.address)
    raise AssertionError("this machine has no non-loopback IPv4 address to scrape from")


async def test_serving_role_has_least_privilege_over_tcp_with_passwords(topo: Topology) -> None:
    conn = await asyncpg.connect(topo.serving_url)
    try:
        assert await conn.fetchval("SELECT current_user") == "casa_app"
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await conn.fetchval("SELECT host(inet_server_addr())") == "127.0.0.1"
        owner = await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class "
                                    "WHERE relname = 'audit_log'")
        assert owner == "casa_owner"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("TRUNCATE audit_log")
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(topo.serving_url.replace(topo.values["CASA_DB_PASSWORD"], "wrong"))


async def test_round_robin_and_one_request_id_in_every_log(topo: Topology) -> None:
    ids = []
    async with aiohttp.ClientSession() as s:
        for _ in range(6):
            async with s.get(topo.origin + "/login", ssl=insecure()) as resp:
                assert resp.status == 200
                ids.append(resp.headers["X-Request-Id"])
    assert all(len(i) == 32 for i in ids)  # nginx's $request_id, adopted
    await asyncio.sleep(0)
    by_id = {line["request_id"]: line for line in nginx_lines(topo)}
    upstreams = [by_id[i]["upstream"] for i in ids]
    ports = {c.port: c for c in topo.instances}
    served = [ports[int(u.rsplit(":", 1)[1])] for u in upstreams]
    # Round robin, no stickiness: consecutive requests of one client alternate.
    assert all(a is not b for a, b in itertools.pairwise(served)), upstreams
    for rid, casa in zip(ids, served, strict=True):
        lines = [x for x in casa.lines() if x.get("request_id") == rid]
        assert lines and lines[0]["route"] == "/login" and lines[0]["status"] == 200
        other = next(c for c in topo.instances if c is not casa)
        assert not [x for x in other.lines() if x.get("request_id") == rid]


async def test_metrics_through_the_proxy_need_the_token(topo: Topology) -> None:
    source = outside_address()
    connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=insecure())
    async with aiohttp.ClientSession(connector=connector) as s:
        async with s.get(topo.origin + "/metrics") as resp:
            assert resp.status == 403
        token = topo.values["CASA_METRICS_TOKEN"]
        for _ in topo.instances:  # one scrape lands on each instance
            async with s.get(topo.origin + "/metrics",
                             headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
                assert "casa_http_requests_total" in await resp.text()
