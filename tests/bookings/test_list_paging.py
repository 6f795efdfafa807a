"""listBookings pages with a stable cursor; bad limits and cursors are a clear 422."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from server.bookings import paging
from tests.bookings.conftest import Api, add_patient, future


async def _book_many(api: Api, n: int) -> list[int]:
    ids = []
    start = future(days=5, hh=8)
    for i in range(n):
        p = await add_patient(api.world.conn, f"L{i}", email=None)
        b = await api.world.book(start + timedelta(minutes=20 * i), patient=p)
        ids.append(b.id)
    return ids


async def _all_pages(api: Api, headers: dict[str, str], **params: Any) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor = None
    for _ in range(50):
        query = dict(params) | ({"cursor": cursor} if cursor else {})
        resp = await api.get("/api/v1/bookings", headers, **query)
        assert resp.status == 200, await resp.text()
        data = await resp.json()
        pages.append([b["id"] for b in data["bookings"]])
        cursor = data["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


async def test_pages_cover_every_booking_once_in_order(api: Api):
    ids = await _book_many(api, 7)
    pages = await _all_pages(api, api.coordinator, centre="san-siro", limit="3")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == ids


async def test_a_booking_cancelled_between_pages_shifts_nothing(api: Api):
    ids = await _book_many(api, 6)
    first = await (await api.get("/api/v1/bookings", centre="san-siro", limit="2")).json()
    assert [b["id"] for b in first["bookings"]] == ids[:2]
    # The first booking disappears from the list (status filter) before the next page.
    await api.world.conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = $1",
                                 ids[0])
    second = await (await api.get("/api/v1/bookings", centre="san-siro", status="booked",
                                  limit="2", cursor=first["next_cursor"])).json()
    assert [b["id"] for b in second["bookings"]] == ids[2:4]


async def test_default_limit_and_the_last_page_has_no_cursor(api: Api):
    await _book_many(api, 2)
    data = await (await api.get("/api/v1/bookings", centre="san-siro")).json()
    assert len(data["bookings"]) == 2 and data["next_cursor"] is None
    exact = await (await api.get("/api/v1/bookings", centre="san-siro", limit="2")).json()
    assert exact["next_cursor"] is None


async def test_the_cursor_does_not_widen_what_a_caller_sees(api: Api):
    await _book_many(api, 4)
    first = await (await api.get("/api/v1/bookings", limit="1")).json()
    # The GP of these bookings sees them; the psychologist sees none, cursor or not.
    other = await api.get("/api/v1/bookings", api.psychologist, cursor=first["next_cursor"])
    assert other.status == 200 and (await other.json())["bookings"] == []


BAD_LIMITS = ["0", "-1", "501", "1000000000000000000000", "abc", "", "1.5", "1e2", " 5",
              "+5", "５", "\x00", "2" * 5000]
BAD_CURSORS = ["", "!!!", "a" * 65, "%00", "\x00", "not base64 at all", "====",
               base64.urlsafe_b64encode(b"12:x").decode(),
               base64.urlsafe_b64encode(b"99999999999999999:1").decode(),
               base64.urlsafe_b64encode(b"-99999999999999999:1").decode(),
               base64.urlsafe_b64encode(b"0:0").decode(),
               base64.urlsafe_b64encode(b"0:99999999999999999999").decode(),
               base64.urlsafe_b64encode("１:1".encode()).decode(),
               base64.urlsafe_b64encode(b"\xff\xfe").decode()]


async def test_bad_limits_and_cursors_are_422_naming_the_field(api: Api):
    for value in BAD_LIMITS:
        resp = await api.get("/api/v1/bookings", limit=value)
        assert resp.status == 422, (value, resp.status)
        assert "limit" in (await resp.json())["error"]["details"]["fields"]
    for value in BAD_CURSORS:
        resp = await api.get("/api/v1/bookings", cursor=value)
        assert resp.status == 422, (value, resp.status)
        assert "cursor" in (await resp.json())["error"]["details"]["fields"]


def test_cursor_round_trip():
    start = future(days=1)
    after = paging.decode(paging.encode(start, 42))
    assert after == (start, 42)


async def test_openapi_documents_the_paging(api: Api):
    doc = await (await api.client.get("/api/v1/openapi.json")).json()
    op = doc["paths"]["/bookings"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["limit"]["schema"]["maximum"] == paging.MAX_LIMIT
    assert params["limit"]["schema"]["default"] == paging.DEFAULT_LIMIT
    assert params["cursor"]["schema"]["maxLength"] == paging.MAX_CURSOR_CHARS
    page = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert "next_cursor" in doc["components"]["schemas"][page["$ref"].rsplit("/", 1)[1]][
        "properties"]


async def test_empty_query_parameters_are_422_naming_the_field(api: Api):
    """An empty value is not "absent": ``?day=`` is no date (the schema says format date),
    and was answered 200 with every day's bookings."""
    for field in ("day", "centre", "clinician", "status", "limit", "cursor"):
        empty: dict[str, Any] = {field: ""}
        resp = await api.get("/api/v1/bookings", **empty)
        assert resp.status == 422, (field, resp.status)
        assert field in (await resp.json())["error"]["details"]["fields"], field
    # The slots too: each optional parameter sent empty is named.
    base: dict[str, Any] = {"centre": "san-siro", "service": "gp_visit", "date": "2030-01-07"}
    for field in ("days", "clinician", "patient", "date"):
        resp = await api.get("/api/v1/slots", **(base | {field: ""}))
        assert resp.status == 422, (field, resp.status)
        assert field in (await resp.json())["error"]["details"]["fields"], field
