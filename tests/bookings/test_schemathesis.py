"""Property-based API fuzzing with schemathesis: no 5xx on any operation of the document, and
every answer has a documented status and matches its documented schema (the handlers build
their JSON themselves; this is what holds it to the Structs that document it).

The app is served by the test server on 127.0.0.1; schemathesis' synchronous calls run in a
worker thread so the event loop keeps serving them. Examples are few, so the run stays short.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err

from tests.bookings.conftest import Api, future

MAX_EXAMPLES = 20
# The whole fuzzing run stops here even if examples remain: it is a test, not a campaign.
BUDGET_S = 45.0


def fuzz(doc: dict[str, Any], base_url: str, headers: dict[str, str],
         calls: list[int]) -> list[str]:
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    deadline = time.monotonic() + BUDGET_S
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the OpenAPI document has an invalid operation: {result.err()}")
            continue
        op = result.ok()
        if time.monotonic() > deadline:
            break

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        # Valid and invalid inputs alike: bad input must be a 4xx, never a 5xx.
        @given(case=op.as_strategy(GenerationMode.POSITIVE)
               | op.as_strategy(GenerationMode.NEGATIVE))
        def run(case: Any) -> None:
            if time.monotonic() > deadline:
                return
            response = case.call(base_url=base_url, headers=headers, timeout=10)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.operation.label}: {response.status_code} "
                                f"{response.text[:200]}")
            case.validate_response(response, checks=[not_a_server_error,
                                                     response_schema_conformance,
                                                     status_code_conformance])

        try:
            run()
        except Exception as exc:  # collect, so one failing operation does not hide the others
            failures.append(f"{op.label}: {type(exc).__name__}: {str(exc)[:300]}")
    return failures


async def test_schemathesis_finds_no_server_error(api: Api):
    # Something to read, reschedule and cancel.
    assert (await api.post("/api/v1/bookings", api.booking_body(future()))).status == 201
    doc = await (await api.client.get("/api/v1/openapi.json")).json()
    base = str(api.client.make_url("/api/v1"))
    calls: list[int] = []
    failures = await asyncio.wait_for(
        asyncio.to_thread(fuzz, doc, base, api.coordinator, calls), timeout=BUDGET_S + 30)
    assert failures == []
    assert len(calls) > 50, "schemathesis made too few calls to mean anything"
    print("schemathesis statuses:", sorted(Counter(calls).items()))
