"""Every page a patient or guest can see, in every patient language: no word left untranslated
(the visible text is compared with the same page in English, or in Italian for English), the
right ``lang`` and ``dir``, dates in the language's own words; staff pages stay in Italian and
English whatever a shared browser chose."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from records import keyring, vitals
from server.bookings import availability, workflow
from server.config import Config
from server.consultations import credentials
from server.consultations.credentials import PATIENT_COOKIE
from server.consultations.languages import PATIENT_LANGUAGES, direction
from server.kiosks import store as kiosk_store
from server.monitoring import links as monitoring_links
from server.monitoring import plans as monitoring_plans
from server.staff import Role
from server.timeutil import local_day_text, local_time_text
from tests.conftest import StaffFactory
from tests.factories import Factories
from tests.visible_text import visible_text, with_bundled_words
from web import catalogue

Client = TestClient[Any, Any]
HTML_TAG = re.compile(r'<html lang="([a-z]+)" dir="(ltr|rtl)">')
# What is the same in every language: the product, people's and centres' names, the languages'
# own names, room for times and numbers. Whatever is left must not read as the reference page.
NAMES = ("Casa San Siro", "Casa", "Test gp", "Maria", "Bianchi", "Wi-Fi", "SMS", "Chrome",
         "Firefox", "Safari", "Android", "iPhone", *PATIENT_LANGUAGES.values(),
         # Units and the oximeter's word, as the devices print them in every language.
         "mmHg", "mg/dL", "kg", "SpO2")
WORDS = re.compile(r"[A-Za-z]{2,}")
# Words Italian and English share (their catalogues say so by translating them as themselves).
SAME_IN_IT_AND_EN = {"Chat", "OK", "Online", "Email", "Casa"}


def _identical_on_purpose(lang: str) -> set[str]:
    """Strings a translator deliberately left as in English (French "Chat", "Code")."""
    if lang in ("it", "en"):
        return SAME_IN_IT_AND_EN
    cat = catalogue.read_catalog(catalogue.po_path(lang), lang)
    return {str(m.id) for m in cat if m.id and m.string == m.id}


def untranslated(page: list[str], reference: list[str], lang: str) -> list[str]:
    seen = set(reference)
    same = _identical_on_purpose(lang)
    left = []
    for piece in page:
        if piece not in seen or piece in same:
            continue
        rest = piece
        for name in NAMES:
            rest = rest.replace(name, " ")
        if WORDS.search(rest):
            left.append(piece)
    return left


class PatientPages:
    """One world (a GP, consultations in several states) and the patient pages it offers."""

    def __init__(self, client: Client, conn: asyncpg.Connection, f: Factories) -> None:
        self.client, self.conn, self.f = client, conn, f

    async def setup(self, lang: str) -> None:
        gp = await self.f.staff(Role.GP, full_name="Test gp")
        now = datetime.now(UTC)
        self.open = await self._consultation(gp.id, now + timedelta(minutes=5), lang)
        # Another GP's kiosk visit, its window open too.
        gp2 = await self.f.staff(Role.GP, full_name="Test gp")
        self.kiosk = await self._consultation(gp2.id, now + timedelta(minutes=5), lang,
                                              mode="kiosk_video",
                                              kiosk_id=await self.f.kiosk())
        self.cancelled = await self._consultation(gp.id, now + timedelta(minutes=80), lang)
        await self.f.set_status(self.cancelled[0], "cancelled", by=None)
        self.tomorrow = await self._consultation(gp.id, now + timedelta(days=1, hours=2), lang)
        self.starts_tomorrow = now + timedelta(days=1, hours=2)
        # A visit moved after its invitation: the old link says when it is now.
        self.moved = await self._consultation(gp.id, now + timedelta(days=1, hours=4), lang)
        self.moved_link = await self.f.link(self.moved[0])
        await availability.add_exception(self.conn, gp.id, "san-siro", "extra",
                                         now - timedelta(days=1), now + timedelta(days=3))
        self.moved_to = now + timedelta(days=1, hours=6)
        await workflow.reschedule(self.f.context(), self.moved[0], self.moved_to, None)
        # An enrolled kiosk's credential (server.kiosks), for the kiosk's own page.
        self.kiosk_token = secrets.token_urlsafe(32)
        await self.conn.execute(
            "INSERT INTO kiosk_credentials (kiosk_id, token_hash, enrolled_by)"
            " VALUES ($1, $2, $3)", await self.f.kiosk(), kiosk_store.token_hash(self.kiosk_token),
            gp.id)
        # A tele-monitoring plan measuring everything, for the readings form.
        async with self.conn.transaction():
            plan, _ = await monitoring_plans.create(
                self.conn, patient_id=self.open[3], created_by=gp.id, conditions=[],
                measurements=list(vitals.KINDS), every_hours=24, tolerance_hours=12,
                thresholds={}, starts_at=now, ends_at=now + timedelta(days=30))
            self.readings_link = await monitoring_links.issue(self.conn, plan)

    async def _consultation(self, gp_id: int, at: datetime, lang: str,
                            **kw: Any) -> tuple[int, int, str, int]:
        p = await self.f.patient(given="Maria", family="Bianchi", language=lang)
        b = await self.f.booking(p.id, gp_id, at, **kw)
        c = await self.f.consultation(b.id)
        return b.id, c.id, c.room_id, p.id

    async def get(self, path: str, *, patient_of: int | None = None,
                  headers: dict[str, str] | None = None, kiosk: bool = False) -> tuple[int, str]:
        self.client.session.cookie_jar.clear()
        if kiosk:
            self.client.session.cookie_jar.update_cookies({"casa_kiosk": self.kiosk_token})
        if patient_of is not None:
            session = await credentials.issue_session(self.conn, patient_of, datetime.now(UTC))
            self.client.session.cookie_jar.update_cookies({PATIENT_COOKIE: session})
        resp = await self.client.get(path, headers=headers or {})
        # The words the page's script shows come in its bundle: read them as part of the page.
        return resp.status, await with_bundled_words(self.client, await resp.text())

    async def all(self, lang: str) -> dict[str, str]:
        """Each patient-facing page, by name, as served to a patient of language ``lang``."""
        q = f"lang={lang}"
        link = await self.f.link(self.tomorrow[0])
        pages = {
            "landing": await self.get(f"/?{q}"),
            "join form": await self.get(f"/join?{q}"),
            "language chooser": await self.get("/join", headers={"Accept-Language": lang}),
            "link that does not work": await self.get(f"/join/status?{q}"),
            "device check": await self.get(f"/precall?{q}"),
            # The patient's own language, from the booking: no query, no cookie.
            "consultation": await self.get(f"/consultation/{self.open[2]}",
                                           patient_of=self.open[1]),
            "kiosk consultation": await self.get(f"/consultation/{self.kiosk[2]}",
                                                 patient_of=self.kiosk[1]),
            "cancelled": await self.get(f"/consultation/{self.cancelled[2]}",
                                        patient_of=self.cancelled[1]),
            "too early": await self.get(f"/consultation/{self.tomorrow[2]}",
                                        patient_of=self.tomorrow[1]),
            "visitor": await self.get(f"/consultation/{self.open[2]}?{q}"),
            "not found": await self.get(f"/no-such-page?{q}"),
            "kiosk": await self.get(f"/kiosk?{q}", kiosk=True),
            "kiosk, languages first": await self.get("/kiosk", kiosk=True,
                                                     headers={"Accept-Language": lang}),
            "no kiosk": await self.get(f"/kiosk?{q}"),
            "summary link gone": await self.get(f"/summary/{'x' * 43}?{q}"),
            # The readings form at the patient's link: her language, no query, no cookie.
            "readings form": await self.get(f"/m/{self.readings_link}"),
            "readings link gone": await self.get(f"/m/{'x' * 43}?{q}"),
        }
        # The invitation's link: the token moves to a cookie, then the page says "too early".
        self.client.session.cookie_jar.clear()
        resp = await self.client.get(f"/join/{link}?{q}")
        pages["link too early"] = (resp.status, await resp.text())
        self.client.session.cookie_jar.clear()
        resp = await self.client.get(f"/join/{self.moved_link}?{q}")
        pages["link of a moved appointment"] = (resp.status, await resp.text())
        for name, (status, _) in pages.items():
            assert status < 500, name
        return {name: html for name, (_, html) in pages.items()}


@pytest.fixture
def config(config: Config) -> Config:
    """The suite's config with a keyring, so the records pages (a summary link) are on."""
    path = Path(config.data_dir) / "keyring.json"
    keyring.save(keyring.generate(path), path)
    return config


@pytest.fixture
async def world(client: Client, conn: asyncpg.Connection,
                factories: Factories) -> PatientPages:
    return PatientPages(client, conn, factories)


async def _pages(world: PatientPages, lang: str) -> dict[str, str]:
    await world.setup(lang)
    return await world.all(lang)


@pytest.mark.parametrize("lang", list(PATIENT_LANGUAGES))
async def test_every_patient_page_speaks_the_language(world: PatientPages, lang: str) -> None:
    reference_lang = "it" if lang == "en" else "en"
    pages = await _pages(world, lang)
    # The reference pages come from a world made the same way (same names, same times), with
    # patients of the reference language.
    starts_tomorrow = world.starts_tomorrow
    moved_to = world.moved_to
    reference = await _pages(world, reference_lang)
    for name, html in pages.items():
        found = HTML_TAG.search(html)
        assert found, name
        assert found.groups() == (lang, direction(lang)), (name, found.groups())
        left = untranslated(visible_text(html), visible_text(reference[name]), lang)
        assert not left, f"{lang}, {name}: untranslated {left}"
    if lang != "it":
        # The language chooser offers every language in its own words.
        chooser = pages["language chooser"]
        assert 'class="lang-choose"' in chooser
        for code, own_name in PATIENT_LANGUAGES.items():
            assert f'lang="{code}"' in chooser and own_name in chooser
    # "You can come in from ... on <day>": the day in the language's own words.
    assert local_day_text(starts_tomorrow - timedelta(minutes=15), lang) in \
        pages["link too early"] or local_day_text(starts_tomorrow, lang) in \
        pages["link too early"], pages["link too early"]
    moved = pages["link of a moved appointment"]
    assert local_day_text(moved_to, lang) in moved and local_time_text(moved_to, lang) in moved


async def test_the_finder_sees_an_untranslated_sentence() -> None:
    english = ["Join your appointment", "Casa San Siro · 10:05"]
    assert untranslated(["Unisciti", "Casa San Siro · 10:05"], english, "ar") == []
    assert untranslated(["Join your appointment"], english, "ar") == ["Join your appointment"]


async def test_staff_pages_stay_in_italian_or_english(client: Client,
                                                       make_staff: StaffFactory) -> None:
    # A kiosk's browser where the last patient chose Arabic: the login page is still Italian.
    client.session.cookie_jar.update_cookies({"casa_lang": "ar"})
    html = await (await client.get("/login", headers={"Accept-Language": "ar"})).text()
    assert HTML_TAG.search(html).groups() == ("it", "ltr")  # type: ignore[union-attr]
    assert 'value="ar"' not in html, "the staff switcher offers only Italian and English"
    html = await (await client.get("/login?lang=fr")).text()
    assert HTML_TAG.search(html).groups() == ("it", "ltr")  # type: ignore[union-attr]


async def test_the_kiosk_forgets_the_language_after_each_patient(world: PatientPages) -> None:
    await world.setup("ar")
    client = world.client
    client.session.cookie_jar.clear()
    # The patient chose Arabic on the kiosk's code form.
    form = await (await client.get("/join")).text()
    assert 'class="lang-choose"' in form
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    resp = await client.post("/language", data={"lang": "ar", "next": "/join",
                                                "csrf_token": token.group(1)},
                             allow_redirects=False)
    assert resp.status == 303
    form = await (await client.get("/join")).text()
    assert HTML_TAG.search(form).groups() == ("ar", "rtl")  # type: ignore[union-attr]
    assert 'class="lang-choose"' not in form
    # In by the kiosk visit's link (the server sets the consultation's cookie itself).
    entered = await client.get(f"/join/{await world.f.link(world.kiosk[0])}")
    page = await entered.text()
    # The page itself (no redirect), which puts its own address in the bar (address.js).
    assert entered.status == 200 and not entered.history
    assert f'<meta name="casa-address" content="/consultation/{world.kiosk[2]}">' in page
    assert 'id="kiosk-done"' in page and 'href="/join/done"' in page
    # "Finished": nothing of this patient stays, and the next one starts with the languages.
    done = await client.get("/join/done", allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/join"
    assert "storage" in done.headers["Clear-Site-Data"]
    names = {c.key for c in client.session.cookie_jar if c.value}
    assert "casa_lang" not in names and PATIENT_COOKIE not in names
    form = await (await client.get("/join")).text()
    assert 'class="lang-choose"' in form
    assert HTML_TAG.search(form).groups() == ("it", "ltr")  # type: ignore[union-attr]
    gone = await client.get(f"/consultation/{world.kiosk[2]}")
    assert 'data-role="visitor"' in await gone.text()
