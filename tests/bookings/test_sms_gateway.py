"""The SMS gateway sender against a local HTTP server that behaves like a provider: it accepts,
refuses an invalid number, rate-limits with 429 and Retry-After, fails with 500 and then
accepts, and hangs. Time is injected into the outbox (no sleeping); nothing of the token or
the text reaches the logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.bookings import outbox
from server.bookings.senders import HttpSmsSender, default_senders, retry_after_seconds
from server.config import ConfigError, load_config
from server.keys import POOL
from tests.bookings.conftest import Api, add_patient, future
from tests.conftest import SECRET_KEY

TOKEN = "provider-token-" + "s3cr3t" * 4
INVALID = "+39 000 0000000"


@dataclass
class Provider:
    """What the fake provider does next, and what it received."""

    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rate_limit_next: int = 0
    fail_next: int = 0
    hang: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorised"}, status=401)
        body = await request.json()
        self.received.append(body)
        self.headers.append(dict(request.headers))
        if self.hang is not None:
            await self.hang.wait()
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            return web.json_response({"error": "slow down"}, status=429,
                                     headers={"Retry-After": "120"})
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": "internal"}, status=500)
        if body["to"] == INVALID:
            # Providers echo what they refused: Casa must keep none of it.
            return web.json_response({"error": "invalid number", "text": body["text"]},
                                     status=400)
        return web.json_response({"id": f"msg-{len(self.received)}"}, status=202)


Server = Callable[[web.Application], Awaitable[Any]]


async def provider_at(aiohttp_server: Server) -> tuple[Provider, str]:
    provider = Provider()
    app = web.Application()
    app.router.add_post("/v1/sms", provider.handle)
    server = await aiohttp_server(app)
    return provider, str(server.make_url("/v1/sms"))


async def sms_rows(api: Api) -> list[Any]:
    return list(await api.world.conn.fetch(
        "SELECT id, booking_id, recipient, attempts, last_error, failed_at, sent_at, body, "
        "next_attempt_at FROM outbox WHERE channel = 'sms' ORDER BY id"))


async def test_accepted_messages_are_sent_with_token_and_idempotency_key(
        api: Api, aiohttp_server: Server):
    provider, url = await provider_at(aiohttp_server)
    b = await (await api.post("/api/v1/bookings", api.booking_body(future()))).json()
    sender = HttpSmsSender(url, TOKEN, sender_id="CasaSanSiro")
    try:
        assert await outbox.send_due(api.client.app[POOL], {"sms": sender}) == (1, 0)
    finally:
        await sender.close()
    [body] = provider.received
    assert body["to"] == "+39 333 1234567" and "/join/" in body["text"]
    assert body["from"] == "CasaSanSiro"
    [row] = await sms_rows(api)
    assert body["reference"] == f"casa-{row['id']}"
    assert provider.headers[0]["Idempotency-Key"] == f"casa-outbox-{row['id']}"
    assert row["sent_at"] and row["body"] == "" and row["booking_id"] == b["id"]


async def test_an_invalid_number_fails_for_good_and_the_booking_page_says_so(
        api: Api, aiohttp_server: Server, make_staff: Any, caplog: pytest.LogCaptureFixture):
    from tests.bookings.test_invitation_actions import page, signed_in, state_of

    caplog.set_level(logging.DEBUG)
    provider, url = await provider_at(aiohttp_server)
    wrong = await add_patient(api.world.conn, "Numero")
    await api.world.conn.execute("UPDATE patients SET phone = $2 WHERE id = $1", wrong, INVALID)
    b = await (await api.post("/api/v1/bookings", api.booking_body(
        future(), patient_id=wrong))).json()
    pool = api.client.app[POOL]
    sender = HttpSmsSender(url, TOKEN)
    t0 = datetime.now(UTC)
    try:
        assert await outbox.send_due(pool, {"sms": sender}, t0) == (0, 1)
        # Not retried, however long one waits.
        assert await outbox.send_due(pool, {"sms": sender}, t0 + timedelta(days=1)) == (0, 0)
    finally:
        await sender.close()
    assert len(provider.received) == 1
    [row] = await sms_rows(api)
    assert row["last_error"] == "rejected:400" and row["failed_at"] is not None
    assert row["attempts"] == 1 and row["body"] == "" and row["sent_at"] is None
    await signed_in(api, make_staff)
    state = state_of(await page(api, b["id"]), "sms")
    assert state.startswith("failed Non riuscito, non verrà ritentato. Tentativi: 1.")
    assert "probabilmente il numero di telefono è errato. (HTTP 400)" in state
    # Neither the token nor the text (the link and code) is in any log line.
    text = provider.received[0]["text"]
    for record in caplog.records:
        logged = record.getMessage() + repr(record.__dict__)
        assert TOKEN not in logged and text not in logged
        assert "/join/" not in logged


async def test_429_pauses_the_channel_until_retry_after(api: Api, aiohttp_server: Server):
    provider, url = await provider_at(aiohttp_server)
    for hh in (9, 10):
        assert (await api.post("/api/v1/bookings", api.booking_body(
            future(hh=hh), patient_id=api.world.patient if hh == 9 else api.world.patient2))
        ).status == 201
    pool = api.client.app[POOL]
    provider.rate_limit_next = 1
    sender = HttpSmsSender(url, TOKEN)
    t0 = datetime.now(UTC)
    try:
        assert await outbox.send_due(pool, {"sms": sender}, t0) == (0, 1)
        # The second message was not even tried: the provider said to wait.
        assert len(provider.received) == 1
        first, second = await sms_rows(api)
        assert first["last_error"] == "rate_limited:429" and first["attempts"] == 1
        assert second["attempts"] == 0 and second["last_error"] is None
        for row in (first, second):
            assert row["next_attempt_at"] == t0 + timedelta(seconds=120)
        # Not before Retry-After, whatever the back-off would say.
        assert await outbox.send_due(pool, {"sms": sender}, t0 + timedelta(seconds=119)) == (0, 0)
        assert len(provider.received) == 1
        assert await outbox.send_due(pool, {"sms": sender}, t0 + timedelta(seconds=120)) == (2, 0)
    finally:
        await sender.close()
    assert len(provider.received) == 3
    assert all(r["sent_at"] for r in await sms_rows(api))


async def test_500_is_retried_with_back_off_then_sent(api: Api, aiohttp_server: Server):
    provider, url = await provider_at(aiohttp_server)
    assert (await api.post("/api/v1/bookings", api.booking_body(future()))).status == 201
    pool = api.client.app[POOL]
    provider.fail_next = 2
    sender = HttpSmsSender(url, TOKEN)
    t0 = datetime.now(UTC)
    try:
        assert await outbox.send_due(pool, {"sms": sender}, t0) == (0, 1)
        [row] = await sms_rows(api)
        assert row["last_error"] == "unavailable:500" and row["failed_at"] is None
        assert row["next_attempt_at"] == t0 + timedelta(minutes=1) and row["body"]
        t1 = t0 + timedelta(seconds=59)
        assert await outbox.send_due(pool, {"sms": sender}, t1) == (0, 0)
        t1 = t0 + timedelta(minutes=1)
        assert await outbox.send_due(pool, {"sms": sender}, t1) == (0, 1)
        [row] = await sms_rows(api)
        assert row["attempts"] == 2 and row["next_attempt_at"] == t1 + timedelta(minutes=2)
        t2 = t1 + timedelta(minutes=2)
        assert await outbox.send_due(pool, {"sms": sender}, t2) == (1, 0)
    finally:
        await sender.close()
    [row] = await sms_rows(api)
    assert row["sent_at"] and row["last_error"] is None and row["attempts"] == 3
    assert len(provider.received) == 3


async def test_a_provider_that_does_not_answer_times_out_and_is_retried(
        api: Api, aiohttp_server: Server):
    provider, url = await provider_at(aiohttp_server)
    assert (await api.post("/api/v1/bookings", api.booking_body(future()))).status == 201
    provider.hang = asyncio.Event()
    sender = HttpSmsSender(url, TOKEN, timeout_s=0.3)
    try:
        assert await outbox.send_due(api.client.app[POOL], {"sms": sender}) == (0, 1)
    finally:
        provider.hang.set()
        await sender.close()
    [row] = await sms_rows(api)
    assert row["last_error"] == "timeout" and row["failed_at"] is None and row["body"]


async def test_wrong_credentials_are_retried_not_blamed_on_the_message(
        api: Api, aiohttp_server: Server):
    _provider, url = await provider_at(aiohttp_server)
    assert (await api.post("/api/v1/bookings", api.booking_body(future()))).status == 201
    sender = HttpSmsSender(url, "not-the-token")
    try:
        assert await outbox.send_due(api.client.app[POOL], {"sms": sender}) == (0, 1)
    finally:
        await sender.close()
    [row] = await sms_rows(api)
    assert row["last_error"] == "credentials:401" and row["failed_at"] is None


def test_configuration_reads_the_token_from_a_file(tmp_path: Path):
    token_file = tmp_path / "sms-token"
    token_file.write_text(TOKEN + "\n")
    env = {"CASA_SECRET_KEY": SECRET_KEY, "CASA_DATA_DIR": str(tmp_path),
           "CASA_SMS_URL": "https://sms.example/v1/sms"}
    with pytest.raises(ConfigError, match="CASA_SMS_TOKEN_FILE"):
        load_config(env)
    config = load_config(env | {"CASA_SMS_TOKEN_FILE": str(token_file),
                                "CASA_SMS_TIMEOUT_SECONDS": "5"})
    assert config.sms_token == TOKEN and TOKEN not in repr(config)
    sender = default_senders(config)["sms"]
    assert isinstance(sender, HttpSmsSender) and sender.timeout.total == 5
    assert TOKEN not in repr(sender)
    with pytest.raises(ConfigError, match="CASA_SMS_URL"):
        load_config(env | {"CASA_SMS_URL": "ftp://sms.example"})


def test_retry_after_as_seconds_or_a_date():
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 07 Dec 2026 10:01:30 GMT", now) == 90
    assert retry_after_seconds("Mon, 07 Dec 2026 09:00:00 GMT", now) == 0
    assert retry_after_seconds("99999999", now) == 6 * 3600
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
