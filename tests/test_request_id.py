"""The request id: a trusted proxy's is adopted (its access log and ours name one request the
same way); a client's own header is never believed."""

from __future__ import annotations

import ipaddress

from server.app import create_app
from server.config import Config
from tests.conftest import SECRET_KEY
from tests.pg import serving_url

NGINX_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # nginx's $request_id: 32 hex digits


async def test_request_id_is_adopted_from_a_trusted_proxy_only(aiohttp_client, db_url, tmp_path):
    untrusted = Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url))
    c = await aiohttp_client(create_app(untrusted))
    resp = await c.get("/login", headers={"X-Request-Id": NGINX_ID})
    assert resp.headers["X-Request-Id"] != NGINX_ID
    trusted = Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                     trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    c2 = await aiohttp_client(create_app(trusted))
    resp = await c2.get("/login", headers={"X-Request-Id": NGINX_ID})
    assert resp.headers["X-Request-Id"] == NGINX_ID
    # Not an id: a forged log line or a header stuffed with anything is replaced.
    for bad in ("x", "a b c d e f g h", "{\"level\":\"error\"}", "z" * 65):
        resp = await c2.get("/login", headers={"X-Request-Id": bad})
        assert resp.headers["X-Request-Id"] != bad
        assert len(resp.headers["X-Request-Id"]) == 16
