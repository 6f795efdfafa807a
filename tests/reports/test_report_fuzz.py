"""The report's operation fuzzed on its own (the suite-wide run's time budget may end before it
comes to it): no 5xx, every status documented, every answer of its documented schema."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.bookings.conftest import Api
from tests.bookings.test_schemathesis import BUDGET_S, fuzz


async def test_schemathesis_finds_no_server_error_in_the_report(api: Api) -> None:
    doc = await (await api.client.get("/api/v1/openapi.json")).json()
    doc["paths"] = {"/reports/activity": doc["paths"]["/reports/activity"]}
    base = str(api.client.make_url("/api/v1"))
    calls: list[int] = []
    failures: list[Any] = await asyncio.wait_for(
        asyncio.to_thread(fuzz, doc, base, api.coordinator, calls), timeout=BUDGET_S + 30)
    assert failures == []
    assert 200 in calls and any(400 <= c < 500 for c in calls), sorted(set(calls))
