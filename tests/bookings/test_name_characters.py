"""Names are refused, with the field named, when they hold control characters or
bidirectional formatting characters: through the API, the booking page's patient form and the
staff store (the ``casa staff add`` command)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from server import staff as staff_store
from server.staff import Role
from tests.bookings.conftest import Api
from tests.bookings.test_pages import signed_in
from tests.conftest import csrf_token, post_refused

BAD_NAMES = ["A\x00da", "Ad\x07a", "\x1b[31mAda", "A\x85da", "Ada\u202eiduS", "Ada\u2067x",
             "Ada\nRossi"]
GOOD = {"given_name": "Olena", "family_name": "Kovalenko", "date_of_birth": "1961-02-03"}


async def test_the_api_refuses_control_and_bidi_characters_in_patient_names(api: Api):
    for field in ("given_name", "family_name"):
        for name in BAD_NAMES:
            resp = await api.post("/api/v1/patients", {**GOOD, field: name})
            assert resp.status == 422, (field, name, resp.status)
            body = await resp.json()
            assert body["error"]["code"] == "validation_failed"
            assert field in body["error"]["details"]["fields"], (field, name)
    # Arabic, Chinese and accented names, with a right-to-left mark, still register.
    for name in ("فاطمة", "王秀英", "Zoë D'Angelo", "\u200fفاطمة"):
        resp = await api.post("/api/v1/patients", {**GOOD, "given_name": name})
        assert resp.status == 201, (name, await resp.text())


async def test_the_booking_form_refuses_them_too(api: Api, make_staff: Any):
    await signed_in(api, make_staff, Role.COORDINATOR)
    token = await csrf_token(api.client, "/bookings/new")
    for name in ("Ana\x00", "Ana\u202e"):
        bad = await post_refused(api.client, "/bookings/new", {
            "csrf_token": token, "action": "patient", "given_name": name, "family_name": "Reyes",
            "date_of_birth": "1977-05-06", "language": "es"}, typed=(name,))
        assert bad.status == 422 and "given_name" in bad.html, (name, bad.status)


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_staff_names_are_refused(conn: asyncpg.Connection, password_hash: str, name: str):
    with pytest.raises(ValueError, match="full_name"):
        await staff_store.create(conn, email="x@test.example", full_name=name, role=Role.GP,
                                 password="", password_hash=password_hash)
    assert await conn.fetchval("SELECT count(*) FROM staff") == 0
