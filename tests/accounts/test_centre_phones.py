"""Wherever a patient is told to call the centre, the number is there: the patient's centre's
as a ``tel:`` link, or every centre's where the centre is not known yet; in the invitations'
e-mails and the kiosk's messages as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from babel.messages.pofile import read_po

from server import centres
from server.bookings import invitations
from server.staff import Role
from tests.conftest import StaffFactory, csrf_token, login
from tests.factories import Factories
from tests.test_kiosks import add_kiosk, enrol, forget_everyone, make_code
from tests.test_languages import PatientPages, world  # noqa: F401 (fixture)
from tests.visible_text import visible_text
from web import catalogue
from web.i18n import Catalogues

CALL = re.compile(r"\bcall (your|the) centre\b", re.IGNORECASE)
SAN_SIRO = "tel:+390200000102"


def call_sentences(lang: str) -> list[str]:
    """Every patient-facing sentence that says to call the centre, as ``lang`` reads it: taken
    from the translators' template, so a new such sentence is checked without a list here."""
    with catalogue.TEMPLATE.open("rb") as fh:
        template = read_po(fh)
    gettext = Catalogues.load().gettext(lang)
    found = [gettext(str(m.id)) for m in template if m.id and CALL.search(str(m.id))]
    assert len(found) >= 8, found  # the extractor found them: the test cannot pass empty
    return found


def test_numbers_are_written_for_reading_and_dialled_in_full():
    assert centres.phone_text("+39 02 0000 0102") == "02 0000 0102"
    assert centres.phone_uri("+39 02 0000 0102") == SAN_SIRO
    assert centres.phone_text("+41  22 123 45 67") == "+41 22 123 45 67"
    assert all(c.phone for c in centres.load_data()), "every centre has a number to give"


@pytest.mark.parametrize("lang", ["it", "en", "ar"])
async def test_no_page_says_to_call_the_centre_without_a_number(world: PatientPages,  # noqa: F811
                                                                lang: str) -> None:
    await world.setup(lang)
    pages = await world.all(lang)
    sentences = call_sentences(lang)
    said = []
    for name, html in pages.items():
        if name == "device check":
            # /precall runs no connection test (no credential): the one such sentence among
            # its script's words, "could not reach our video server", is never shown there.
            continue
        pieces = visible_text(html)
        if any(s in piece for s in sentences for piece in pieces):
            said.append(name)
            assert 'href="tel:+39' in html, f"{lang}, {name}: 'call the centre' with no number"
    # The pages that do say it, each with its number.
    assert {"consultation", "cancelled", "visitor"} <= set(said), said
    for name in ("consultation", "cancelled"):
        assert f'href="{SAN_SIRO}"' in pages[name], name
        assert "02 0000 0102" in pages[name]
    # The visitor is not told which centre: every centre's number.
    assert all(f'href="{c.phone_uri}"' in pages["visitor"] for c in centres.load_data())


async def test_join_refusals_give_the_number(client: Any, factories: Factories,
                                             conn: asyncpg.Connection) -> None:
    gp = await factories.staff(Role.GP)
    p = await factories.patient()
    b = await factories.booking(p.id, gp.id, datetime.now(UTC) - timedelta(hours=3))
    await factories.consultation(b.id)
    # Over: "the link no longer works. Please call your centre if you need help."
    link = await factories.link(b.id)
    resp = await client.get(f"/join/{link}", allow_redirects=False)
    html = await resp.text()
    assert resp.status == 410 and f'href="{SAN_SIRO}"' in html, html
    # Guessing codes from the form: the centre is not known, every centre's number is given.
    client.session.cookie_jar.clear()
    for i in range(12):
        token = await csrf_token(client, "/join")
        await client.post("/join", data={"csrf_token": token, "code": f"{i:06d}", "day": "1",
                                         "month": "1", "year": "1950"}, allow_redirects=False)
    shown = await client.get("/join")
    html = await shown.text()
    assert shown.status == 429
    assert all(f'href="{c.phone_uri}"' in html for c in centres.load_data()), html


async def test_the_kiosk_says_the_number_with_its_refusal(client: Any, conn: asyncpg.Connection,
                                                          make_staff: StaffFactory) -> None:
    coord = await make_staff(Role.COORDINATOR, ("san-siro",))
    kiosk_id = await add_kiosk(conn)
    await login(client, coord.email)
    code = await make_code(client, kiosk_id)
    forget_everyone(client)
    await enrol(client, code)
    token = await csrf_token(client, "/kiosk/enrol")
    answers = []
    for i in range(12):
        resp = await client.post("/kiosk/join", json={"code": f"{i:06d}", "day": "1",
                                                      "month": "1", "year": "1950"},
                                 headers={"X-CSRF-Token": token})
        answers.append((resp.status, (await resp.json())["message"]))
    status, message = answers[-1]
    assert status == 429 and "02 0000 0102" in message and "San Siro" in message, answers


def test_invitation_and_cancellation_e_mails_give_the_number() -> None:
    a = invitations.Appointment(
        booking_id=1, centre_name="Casa San Siro", centre_address="Via X 1",
        service_name="Psychological support", sensitive=True, clinician_name="Dr Who",
        mode="home_video", starts_at=datetime(2026, 12, 9, 9, tzinfo=UTC),
        ends_at=datetime(2026, 12, 9, 10, tzinfo=UTC), join_url="https://x/join/t", code=None,
        code_url=None, centre_phone="+39 02 0000 0102")
    for lang in ("it", "uk"):
        _ = Catalogues.load().gettext(lang)
        _subject, body = invitations.email(a, _, lang)
        _subject2, cancelled = invitations.cancellation(a, _, lang)
        for text in (body, cancelled):
            assert "02 0000 0102" in text and "Casa San Siro" in text
            assert "Psycholog" not in text and "Dr Who" not in text  # a sensitive service
    no_phone = invitations.email(
        invitations.Appointment(**{**a.__dict__, "centre_phone": None}), _, "uk")[1]
    assert "\n\n\n" not in no_phone
