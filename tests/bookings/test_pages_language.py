"""Booking pages speak the page's language all the way down, macros included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from server.staff import Role
from tests.bookings.conftest import Api, future
from tests.conftest import login

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"


def test_every_template_import_passes_the_context():
    # Jinja imports macros without the caller's context unless told: their _() then falls
    # back to untranslated English while the rest of the page is in Italian.
    bare = [f"{p.relative_to(TEMPLATES)}: {m.group(0)}" for p in TEMPLATES.rglob("*.html")
            for m in re.finditer(r"\{%-?\s*(?:from|import)\s[^%]*%\}", p.read_text())
            if "with context" not in m.group(0)]
    assert not bare, bare


@pytest.mark.parametrize(("lang", "said", "unsaid"), [
    ("it", ["Visita del medico di base", "Video da casa", "Prenotata"],
     ["GP visit", "Video from home"]),
    ("en", ["GP visit", "Video from home", "Booked"], ["Visita del medico di base"]),
])
async def test_calendar_and_booking_page_in_each_language(api: Api, make_staff: Any, lang: str,
                                                          said: list[str], unsaid: list[str]):
    who = await make_staff(Role.COORDINATOR, ("san-siro",), language=lang)
    assert (await login(api.client, who.email)).status == 303
    made = await (await api.post("/api/v1/bookings", api.booking_body(future(hh=10)))).json()
    day = future().date().isoformat()
    for path in (f"/bookings/calendar?centre=san-siro&day={day}", f"/bookings/{made['id']}"):
        html = await (await api.client.get(path)).text()
        for text in said:
            assert text in html, (path, text)
        for text in unsaid:
            assert text not in html, (path, text)
