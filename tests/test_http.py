"""HTTP hygiene: security headers everywhere, catalogued errors, health, metrics, proxies."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging

import asyncpg
import pytest

from server.app import create_app
from server.config import Config
from tests.conftest import PASSWORD, SECRET_KEY, csrf_token, login
from tests.pg import serving_url


def assert_security_headers(resp, https: bool = False):
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp
    assert "camera=(self)" in resp.headers["Permissions-Policy"]
    assert "microphone=(self)" in resp.headers["Permissions-Policy"]
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert ("Strict-Transport-Security" in resp.headers) == https


@pytest.mark.parametrize("path", ["/", "/login", "/healthz", "/metrics", "/nope",
                                  "/static/css/casa.css", "/static/missing.css"])
async def test_every_response_has_security_headers(client, path):
    resp = await client.get(path)
    assert_security_headers(resp)
    assert resp.headers.get("X-Request-Id")


async def test_pages_are_not_cached_but_static_files_may_be(client):
    assert (await client.get("/login")).headers["Cache-Control"] == "no-store"
    assert "no-store" not in (await client.get("/static/css/casa.css")).headers.get(
        "Cache-Control", "")


async def test_not_found_is_a_page_for_people_and_json_for_the_api(client):
    page = await client.get("/no/such/page")
    assert page.status == 404
    assert "text/html" in page.headers["Content-Type"]
    assert 'data-error-code="not_found"' in await page.text()
    api = await client.get("/api/v1/no-such-thing")
    assert api.status == 404
    body = await api.json()
    assert body["error"]["code"] == "not_found" and body["error"]["message"]


async def test_method_not_allowed_and_oversized_bodies(client):
    from tests.conftest import csrf_token

    token = await csrf_token(client)
    resp = await client.put("/healthz", headers={"X-CSRF-Token": token})
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"
    big = await client.post("/login", data=b"x" * (2 * 1024 * 1024),
                            headers={"Content-Type": "application/x-www-form-urlencoded",
                                     "X-CSRF-Token": token})
    assert big.status == 413
    assert 'data-error-code="too_large"' in await big.text()


async def test_unhandled_error_shows_no_stack_trace(aiohttp_client, config, caplog):
    from aiohttp import web

    app = create_app(config)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals: note text here")

    app.router.add_get("/boom", boom)
    c = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        resp = await c.get("/boom")
    text = await resp.text()
    assert resp.status == 500
    assert "Traceback" not in text and "secret internals" not in text
    assert resp.headers["X-Request-Id"] in text  # a reference the user can quote
    api = await c.get("/boom", headers={"Accept": "application/json"})
    assert (await api.json())["error"]["code"] == "internal_error"


async def test_healthz_reports_the_database(client):
    resp = await client.get("/healthz")
    body = await resp.json()
    assert resp.status == 200 and body["database"]["status"] == "up"


async def test_metrics_are_prometheus_text(client):
    await client.get("/login")
    resp = await client.get("/metrics")
    text = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert 'casa_http_requests_total{method="GET",route="/login",status="200"}' in text


async def test_database_down_gives_a_clear_503_and_recovers(client, databases, db_url):
    from urllib.parse import urlsplit

    name = urlsplit(db_url).path.lstrip("/")
    admin = await asyncpg.connect(databases.uri("postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1", name)
        await asyncio.sleep(0.2)
        health = await client.get("/healthz")
        assert health.status == 503
        assert (await health.json())["database"]["status"] == "down"
        page = await client.get("/login", headers={"Cookie": "casa_session=x" * 1})
        assert page.status == 503
        assert "Traceback" not in await page.text()
        assert page.headers["Retry-After"] == "30"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    for _ in range(20):
        if (await client.get("/healthz")).status == 200:
            break
        await asyncio.sleep(0.2)
    assert (await client.get("/healthz")).status == 200


async def test_forwarded_headers_only_from_trusted_proxies(aiohttp_client, db_url, tmp_path):
    untrusted = Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url))
    c = await aiohttp_client(create_app(untrusted))
    resp = await c.get("/login", headers={"X-Forwarded-Proto": "https",
                                          "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" not in resp.headers
    trusted = Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                     trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    c2 = await aiohttp_client(create_app(trusted))
    resp = await c2.get("/login", headers={"X-Forwarded-Proto": "https",
                                           "X-Forwarded-For": "203.0.113.9"})
    assert_security_headers(resp, https=True)
    assert resp.cookies["casa_csrf"]["secure"]


async def test_logs_are_json_with_route_patterns_and_no_secrets(client, make_staff, capsys):
    from server import logs
    from tests.conftest import PASSWORD

    logs.configure("INFO")
    try:
        gp = await make_staff()
        await login(client, gp.email)
        await client.get("/static/css/casa.css?token=abcdef-secret")
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(x.get("route") == "/login" and x.get("request_id") for x in lines)
    assert PASSWORD not in err and gp.email not in err and "abcdef-secret" not in err


@pytest.mark.parametrize("raw", [
    b"GET /join/LEAKTOKEN\x01abc HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /join/LEAKTOKEN HTTP/1.1\r\nHost: x\r\nCookie: casa_session=LEAKCOOKIE\x01\r\n\r\n",
    b"GET /join/LEAKTOKEN HTTP/1.1\r\nHost: x\r\nCookie: casa_session=LEAKCOOKIE"
    + b"a" * 9000 + b"\r\n\r\n",
    b"GET /join/LEAKTOKEN" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /join/LEAKTOKEN HTTP/9.9\r\nHost: x\r\n\r\n",
])
async def test_malformed_requests_leak_no_token_or_cookie_into_logs(client, capsys, raw):
    from server import logs

    logs.configure("DEBUG")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        writer.write(raw)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        await asyncio.sleep(0.1)
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert status_line.split()[1].startswith(b"4"), status_line
    assert "LEAKTOKEN" not in err and "LEAKCOOKIE" not in err


async def test_unhandled_error_is_logged_without_its_message(aiohttp_client, config, capsys):
    from aiohttp import web

    from server import logs

    app = create_app(config)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("patient Maria Rossi, note text")

    app.router.add_get("/boom", boom)
    c = await aiohttp_client(app)
    logs.configure("INFO")
    try:
        await c.get("/boom")
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert "RuntimeError" in err and "in boom" in err
    assert "Maria Rossi" not in err


async def test_nul_bytes_are_a_clear_400_not_a_crash(client):
    from tests.conftest import csrf_token

    token = await csrf_token(client)
    resp = await client.post("/login", data={"email": "a\x00b@x.example", "password": "x",
                                             "csrf_token": token})
    assert resp.status == 400
    assert "Traceback" not in await resp.text()


@pytest.mark.parametrize("target", ["/\t/evil.example", "//evil.example", "/\\evil.example",
                                    "https://evil.example", "/\n/evil.example"])
async def test_language_switch_never_redirects_off_site(client, target):
    from tests.conftest import csrf_token

    token = await csrf_token(client)
    resp = await client.post("/language", data={"lang": "en", "next": target,
                                                "csrf_token": token}, allow_redirects=False)
    assert resp.headers["Location"] == "/home"


async def test_a_bogus_bearer_header_does_not_borrow_the_session_cookie(client, make_staff,
                                                                        conn):
    gp = await make_staff()
    await login(client, gp.email)
    resp = await client.post("/logout", headers={"Authorization": "Bearer bogus"},
                             allow_redirects=False)
    assert resp.status == 303
    # Without a CSRF token the cookie gave the request no authority: the session lives on.
    assert await conn.fetchval("SELECT count(*) FROM staff_sessions WHERE revoked_at IS NULL") == 1


async def test_metrics_are_for_local_scrapers_or_token_holders(aiohttp_client, db_url, tmp_path):
    proxied = Config(secret_key=SECRET_KEY, data_dir=tmp_path, database_url=serving_url(db_url),
                     trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
                     metrics_token="m" * 32)
    c = await aiohttp_client(create_app(proxied))
    outside = {"X-Forwarded-For": "203.0.113.7"}
    assert (await c.get("/metrics", headers=outside)).status == 403
    wrong = await c.get("/metrics", headers={**outside, "Authorization": "Bearer nope"})
    assert wrong.status == 403
    ok = await c.get("/metrics", headers={**outside, "Authorization": "Bearer " + "m" * 32})
    assert ok.status == 200
    assert (await c.get("/metrics")).status == 200  # the proxy host itself


async def test_null_origin_is_refused_even_with_a_token(client, make_staff):
    # What a sandboxed frame or a data: URL on another site sends along with a stolen form.
    gp = await make_staff()
    token = await csrf_token(client)
    form = {"email": gp.email, "password": PASSWORD, "csrf_token": token}
    resp = await client.post("/login", data=form, allow_redirects=False,
                             headers={"Origin": "null", "Accept": "application/json"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    own = str(client.make_url("/")).rstrip("/")
    resp = await client.post("/login", data=form, allow_redirects=False,
                             headers={"Origin": own})
    assert resp.status == 303
