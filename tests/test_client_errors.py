"""POST /api/v1/client-errors: the browsers' error reports, counted and logged without data."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp.test_utils import TestClient

from server import client_errors
from server.client_errors import LIMIT, LIMITER, MAX_BODY_BYTES, WINDOW_S, file_name, scrub
from tests.conftest import csrf_token

PATH = client_errors.PATH
# What a careless page could put in an error message: a name, a date of birth, a phone number,
# a guest token, an address with a query.
PERSONAL = ("Maria Bianchi", "1948-05-17", "3331234567", "g_Zx8Qv4mT2LpWn7RkYc3HsJ",
            "https://casa.example/join/AbCdEf123?code=482913")
MESSAGE = ("Cannot read properties of undefined (reading 'Maria Bianchi') born 1948-05-17 "
           "tel 3331234567 token g_Zx8Qv4mT2LpWn7RkYc3HsJ at "
           "https://casa.example/join/AbCdEf123?code=482913")


async def post(client: TestClient[Any, Any], token: str, body: Any,
               raw: bytes | None = None) -> Any:
    return await client.post(PATH, data=raw if raw is not None else json.dumps(body),
                              headers={"Content-Type": "application/json",
                                       "X-CSRF-Token": token})


async def metric(client: TestClient[Any, Any], page: str, name: str) -> float:
    text = await (await client.get("/metrics")).text()
    prefix = f'casa_client_errors_total{{name="{name}",page="{page}"}} '
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


async def test_a_report_is_counted_and_logged_without_personal_data(client, caplog):
    token = await csrf_token(client)
    caplog.set_level(logging.INFO)
    resp = await post(client, token, {"page": "consultation", "name": "TypeError",
                                      "message": MESSAGE, "line": 42,
                                      "file": "http://127.0.0.1/static/js/call.js?v=abc"})
    assert resp.status == 204, await resp.text()
    assert await metric(client, "consultation", "TypeError") == 1.0
    records = [r for r in caplog.records if r.name == "casa.client"]
    assert len(records) == 1
    logged = json.dumps(vars(records[0]), default=str)
    for value in PERSONAL:
        assert value not in logged, value
    for piece in ("Maria", "Bianchi", "1948", "333", "g_Zx8", "casa.example", "482913"):
        assert piece not in caplog.text, piece
    assert records[0].__dict__["file"] == "call.js" and records[0].__dict__["line"] == 42
    assert records[0].__dict__["error_message"].startswith("Cannot read properties of undefined")


async def test_an_unknown_error_name_is_counted_as_other(client):
    token = await csrf_token(client)
    resp = await post(client, token, {"page": "dashboard", "name": "Maria Bianchi"})
    assert resp.status == 204
    assert await metric(client, "dashboard", "other") == 1.0
    assert "Maria" not in await (await client.get("/metrics")).text()


async def test_bad_bodies_are_refused_with_the_usual_error(client):
    token = await csrf_token(client)
    # Not a JSON object: 400 bad_request.
    for body, raw in [(None, b"not json"), ([1, 2], None)]:
        resp = await post(client, token, body, raw)
        assert resp.status == 400, (body, raw)
        error = (await resp.json())["error"]
        assert error["code"] == "bad_request" and error["message"] and error["details"]
    # A field of the wrong kind: 422 validation_failed naming the field.
    wrong: list[tuple[dict[str, object], str]] = [
        ({"page": "kitchen"}, "page"), ({"page": "precall", "message": 7}, "message"),
        ({"page": "precall", "line": "12"}, "line"), ({"page": "precall", "line": True}, "line"),
        ({"name": "Error"}, "page")]
    for fields, field in wrong:
        resp = await post(client, token, fields)
        assert resp.status == 422, fields
        error = (await resp.json())["error"]
        assert error["code"] == "validation_failed" and list(error["details"]["fields"]) == [
            field]
    assert await metric(client, "precall", "other") == 0.0


async def test_a_large_body_is_refused(client):
    token = await csrf_token(client)
    resp = await post(client, token, None, raw=b"{" + b" " * MAX_BODY_BYTES + b"}")
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"


async def test_reports_without_the_csrf_token_are_refused(client):
    resp = await client.post(PATH, json={"page": "precall", "name": "Error"})
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "csrf_failed"
    assert await metric(client, "precall", "Error") == 0.0


async def test_reports_are_limited_per_client_until_the_window_passes(client):
    now = [1000.0]
    client.app[LIMITER].clock = lambda: now[0]
    token = await csrf_token(client)
    report = {"page": "bookings", "name": "Error", "message": "boom"}
    for _ in range(LIMIT):
        assert (await post(client, token, report)).status == 204
    refused = await post(client, token, report)
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == str(int(WINDOW_S))
    assert await metric(client, "bookings", "Error") == LIMIT
    now[0] += WINDOW_S
    assert (await post(client, token, report)).status == 204
    assert await metric(client, "bookings", "Error") == LIMIT + 1


def test_scrub_keeps_the_shape_of_a_message_and_drops_its_data():
    assert scrub("x is not defined") == "x is not defined"
    assert scrub("Failed to fetch") == "Failed to fetch"
    cleaned = scrub(MESSAGE)
    for piece in ("Maria", "1948", "333", "g_Zx8", "casa.example", "482913"):
        assert piece not in cleaned
    assert len(scrub("a " * 1000)) <= client_errors.MESSAGE_MAX


def test_file_name_keeps_the_script_name_only():
    assert file_name("https://casa.example/static/js/call.js?v=abc#x") == "call.js"
    assert file_name("") == ""
    assert file_name("https://casa.example/join/AbCdEf123") == ""
