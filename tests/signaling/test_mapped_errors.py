"""The WebSocket answers through the one error registry: a domain failure a handler raises is
sent as its catalogued error, and the socket stays open; anything unmapped (a KeyError bug) is
``internal_error``, never something that looks like a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from server import errors
from signaling.keys import ENGINE
from signaling.messages import Ping


async def test_a_handlers_domain_failure_is_its_catalogued_error(
        client: Any, clients: Any, visits: Any, gp: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    visit = await visits(gp.id)
    patient = await clients.patient(visit)
    by_type = client.app[ENGINE].handlers.by_type
    seen: list[str] = []

    async def missing(conn: Any, msg: Any, text: str) -> None:
        seen.append("missing")
        raise errors.NotFound(errors.NOT_FOUND, "no such thing")

    async def buggy(conn: Any, msg: Any, text: str) -> None:
        seen.append("buggy")
        found: dict[str, int] = {}
        found["no such key"] += 1

    monkeypatch.setitem(by_type, Ping, missing)
    await patient.send("ping", id="a1")
    err = await patient.expect("error")
    assert (err["code"], err["fatal"], err.get("id")) == ("not_found", False, "a1")
    monkeypatch.setitem(by_type, Ping, buggy)
    await patient.send("ping", id="a2")
    err = await patient.expect("error")
    assert (err["code"], err["fatal"]) == ("internal_error", False)
    assert "no such key" not in str(err)
    assert seen == ["missing", "buggy"]
