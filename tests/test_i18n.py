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
    assert choose_language([None, "xx"], "fr, en;q=0.5") == "en"
    assert choose_language([], "de") == "it"


def test_language_names_in_the_readers_language():
    from web.i18n import language_name

    assert language_name("ro", "it") == "rumeno"
    assert language_name("ar", "en") == "Arabic"
    assert language_name("zh", "it") == "cinese"
    # Unknown codes or reader languages fall back to the code, never an error.
    assert language_name("xx", "it") == "xx"
    assert language_name("ro", "not-a-locale") == "ro"
