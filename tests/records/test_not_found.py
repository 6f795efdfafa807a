"""A record that is not there is a 404; a KeyError bug in a handler is a 500, never a 404."""

from __future__ import annotations

from typing import Any

import pytest

from records.service import Records
from server.staff import Role
from tests.records.conftest import api_headers, login_as


async def test_missing_note_is_404_and_a_key_error_bug_is_500(
        client: Any, make_staff: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gp = await make_staff(Role.GP, ("san-siro",))
    await login_as(client, gp, db_url)
    h = await api_headers(client)
    missing = await client.get("/api/v1/records/notes/424242", headers=h)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "note_not_found"

    async def buggy_read(*_args: Any, **_kwargs: Any) -> Any:
        found: dict[str, Any] = {}
        return found["no such key"]   # the kind of bug a 404 used to hide

    monkeypatch.setattr(Records, "read", buggy_read)
    resp = await client.get("/api/v1/records/notes/424242", headers=h)
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["code"] == "internal_error"
    assert "no such key" not in await resp.text() and "KeyError" not in await resp.text()
