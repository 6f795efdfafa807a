"""Every message shown to people has an Italian translation, and placeholders survive it."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

from web.i18n import Catalogues, choose_language, parse_accept_language

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "add_home_link": (3,)}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def extracted_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("server", "web", "records", "signaling"):
        for filename, _lineno, message, _comments, _ctx in extract_from_dir(
            ROOT / package, METHODS, keywords=KEYWORDS,
            options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        ):
            msgids = message if isinstance(message, tuple) else (message,)
            for msgid in msgids:
                if msgid:
                    found.setdefault(msgid, f"{package}/{filename}")
    return found


def test_every_message_has_an_italian_translation():
    it = Catalogues.load().get("it")
    messages = extracted_messages()
    assert len(messages) > 50, "extraction found too few messages: is the extractor broken?"
    missing = [f"{where}: {msgid!r}" for msgid, where in messages.items()
               if it.gettext(msgid) == msgid and not _same_in_both(msgid)]
    assert not missing, "untranslated into Italian:\n" + "\n".join(sorted(missing))


def test_translations_keep_their_placeholders():
    it = Catalogues.load().get("it")
    broken = []
    for msgid in extracted_messages():
        if set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(it.gettext(msgid))):
            broken.append(msgid)
    assert not broken, broken


def _same_in_both(msgid: str) -> bool:
    # Words that are the same in Italian and English (brand names, language names).
    return msgid in {"Casa", "Italiano", "English", "OK", "SpO2", "Computer", "Tablet",
                     "Smartphone", "Chat", "Online", "Login", "FHIR", "Email", "PDF", "Audit",
                     "Reset", "Kiosk", "Staff", "Password"}


def test_accept_language_order_and_quality():
    assert parse_accept_language("en-GB,en;q=0.8,it;q=0.9") == ["en", "it", "en"]
    assert parse_accept_language("fr;q=0, it") == ["it"]
    assert parse_accept_language(None) == []


def test_language_choice_prefers_the_users_own_choice():
    assert choose_language(["en"], "it-IT,it") == "en"
    assert choose_language([None, "xx"], "de, en;q=0.5") == "en"
    assert choose_language([], "de") == "it"
    # A browser set to Arabic gets Arabic, a link saying ?lang=ar too.
    assert choose_language([], "ar-EG,ar;q=0.9,en;q=0.5") == "ar"
    assert choose_language(["bn"], "it") == "bn"


def test_staff_pages_stay_in_italian_and_english():
    from server.consultations.languages import PATIENT_LANGUAGES, STAFF_LANGUAGES
    from web.i18n import page_languages

    assert page_languages("/join", False) == PATIENT_LANGUAGES
    assert page_languages("/consultation/abc", False) == PATIENT_LANGUAGES
    assert page_languages("/", False) == PATIENT_LANGUAGES
    # A clinician on the call page, and every staff page, whatever was chosen on the browser.
    assert page_languages("/consultation/abc", True) == STAFF_LANGUAGES
    for path in ("/login", "/home", "/bookings/calendar", "/records/x", "/dashboard"):
        assert page_languages(path, False) == STAFF_LANGUAGES
    assert choose_language(["ar"], "ar", allowed=STAFF_LANGUAGES) == "it"
    assert choose_language(["ar", "en"], None, allowed=STAFF_LANGUAGES) == "en"


def test_language_names_in_the_readers_language():
    from web.i18n import language_name

    assert language_name("ro", "it") == "rumeno"
    assert language_name("ar", "en") == "Arabic"
    assert language_name("zh", "it") == "cinese"
    # Unknown codes or reader languages fall back to the code, never an error.
    assert language_name("xx", "it") == "xx"
    assert language_name("ro", "not-a-locale") == "ro"


def test_every_patient_language_is_complete_and_usable():
    from server.consultations.languages import PATIENT_LANGUAGES
    from web import catalogue

    reports = {r.lang: r for r in catalogue.check()}
    assert set(reports) == set(PATIENT_LANGUAGES)
    for lang, r in reports.items():
        assert (r.missing, r.fuzzy, r.broken) == ([], [], []), lang


def test_the_translators_template_is_current():
    # patient.pot is what translators work from: every patient-facing message is in it.
    from web import catalogue

    with catalogue.TEMPLATE.open("rb") as fh:
        from babel.messages.pofile import read_po

        kept = {(m.id, m.context) for m in read_po(fh) if m.id}
    now = {(m.id, m.context) for m in catalogue.extract_patient_messages() if m.id}
    assert kept == now, "run `casa i18n update`: " + repr(sorted(map(str, kept ^ now)))
    # Every string tells the translator where a patient meets it.
    assert all(m.auto_comments for m in catalogue.extract_patient_messages() if m.id)


def test_the_check_fails_on_a_translation_that_would_break(tmp_path: Path):
    import shutil

    from server.cli import main
    from web import catalogue

    directory = tmp_path / "translations"
    shutil.copytree(catalogue.TRANSLATIONS_DIR, directory)
    assert main(["i18n", "check", "--directory", str(directory)]) == 0
    po = catalogue.po_path("fr", directory)
    text = po.read_text()
    # A placeholder renamed by a translator: the server would raise KeyError at run time.
    broken = text.replace('msgstr "Le soignant vous recevra dans %(minutes)s minutes."',
                          'msgstr "Le soignant vous recevra dans %(minuti)s minutes."')
    assert broken != text
    po.write_text(broken)
    assert main(["i18n", "check", "--directory", str(directory)]) == 1
    report = next(r for r in catalogue.check(directory) if r.lang == "fr")
    assert report.broken and "minuti" in report.broken[0] and report.machine


def test_plural_forms_are_counted():
    from babel.messages.catalog import Catalog

    from web import catalogue

    template = Catalog()
    template.add(("%(num)s minute", "%(num)s minutes"), None)
    ar = Catalog(locale="ar")
    ar.add(("%(num)s minute", "%(num)s minutes"), ("%(num)s دقيقة", "%(num)s دقيقتان"))
    report = catalogue.check_catalog("ar", ar, template)
    assert report.broken and "6 expected" in report.broken[0]
    ru = Catalog(locale="ru")
    ru.add(("%(num)s minute", "%(num)s minutes"), ("%(num)s минута", "%(num)s минуты",
                                                     "%(num)s минут"))
    assert catalogue.check_catalog("ru", ru, template).broken == []
