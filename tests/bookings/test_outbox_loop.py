"""The outbox's background loop survives a failure it did not foresee: the failure is logged
with its type and the next wake-up sends what is due (the loop used to end on any error but
the database's, and invitations then waited for a restart)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from server.app import create_app
from server.bookings import outbox, tokens
from server.bookings.keys import SENDERS
from server.bookings.outbox import Message
from tests.bookings.conftest import future


class Sink:
    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def __init__(self) -> None:
        self.sent: list[Message] = []


class BrokenOnce(dict[str, Any]):
    """Senders whose first look fails like a bug would (not a database or network error)."""

    broken = True

    def __bool__(self) -> bool:
        if self.broken:
            self.broken = False
            raise KeyError("a bug, not the database")
        return len(self) > 0


async def test_the_sender_loop_logs_an_unexpected_failure_and_keeps_sending(
        aiohttp_client: Any, config: Any, world: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="casa.background")
    app = create_app(config)
    sink = Sink()
    app[SENDERS] = BrokenOnce(sms=sink, email=sink)
    client = await aiohttp_client(app)
    _, token = await tokens.create(world.conn, world.coordinator)
    resp = await client.post("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"},
                             json={"centre_id": "san-siro", "service_code": "gp_visit",
                                   "mode": "home_video", "patient_id": world.patient,
                                   "clinician_id": world.gp, "starts_at": future().isoformat()})
    assert resp.status == 201
    for _ in range(200):  # woken by the booking: the pass fails
        failed = [r for r in caplog.records if r.getMessage() == "outbox: outbox pass failed"]
        if failed:
            break
        await asyncio.sleep(0.01)
    assert [r.error for r in failed] == ["KeyError"]  # type: ignore[attr-defined]
    assert sink.sent == []
    outbox.wake_sender(app)  # the next wake-up (a booking change, or the back-off's end)
    for _ in range(200):
        if len(sink.sent) == 2:
            break
        await asyncio.sleep(0.01)
    assert {m.channel for m in sink.sent} == {"sms", "email"}
