"""Languages are named, never shown as codes: in the registration form's list and on the
patient's page, each in its own language and then in the page's (``العربية (arabo)``)."""

from __future__ import annotations

import re

from server.consultations.languages import SPOKEN_LANGUAGES
from server.staff import Role
from tests.bookings.conftest import Api
from tests.conftest import login
from web.i18n import language_label


def test_language_labels_in_their_own_language_and_the_readers() -> None:
    assert language_label("ar", "it") == "العربية (arabo)"
    assert language_label("ar", "en") == "العربية (Arabic)"
    assert language_label("it", "it") == "Italiano"          # the same name: said once
    assert language_label("en", "it") == "English (inglese)"
    assert language_label("tl", "it") == "Filipino (filippino)"  # CLDR's "fil", not a code
    assert language_label("zh", "en") == "中文 (Chinese)"
    assert language_label("xx", "it") == "xx"                # unknown: the code, no error
    # Every language a patient may speak has a name in Italian and English.
    for code in SPOKEN_LANGUAGES:
        for reader in ("it", "en"):
            assert language_label(code, reader) != code, (code, reader)


async def test_registration_form_and_patient_page_name_languages(api: Api, make_staff):
    desk = await make_staff(Role.COORDINATOR, ("san-siro", "gratosoglio"))
    assert (await login(api.client, desk.email)).status == 303
    html = await (await api.client.get("/bookings/new")).text()
    select = re.search(r'<select id="language" name="language">(.*?)</select>', html, re.S)
    assert select is not None
    options = dict(re.findall(r'<option value="(\w+)">([^<]+)</option>', select.group(1)))
    assert list(options) == list(SPOKEN_LANGUAGES)
    assert options["ar"] == "العربية (arabo)" and options["tl"] == "Filipino (filippino)"
    assert options["it"] == "Italiano"
    assert not [code for code, label in options.items() if label == code]
    page = await (await api.client.get(f"/bookings/patients/{api.world.patient2}")).text()
    assert '<span lang="ar" dir="auto">العربية</span> (arabo)' in page
