"""The language lists, kept apart because they mean different things.

- ``PATIENT_LANGUAGES``: what everything a patient or guest sees is written in (pages, e-mails,
  texts, calendar entries, the call page's notices): the largest communities of the centres'
  districts. Each has a catalogue (``web/translations``), each named in its own language for
  the switcher (never a flag: a flag is a country, not a language).
- ``STAFF_LANGUAGES``: what staff pages are written in (a subset of the patients').
- ``SPOKEN_LANGUAGES``: what a patient may say she speaks, recorded with her (ISO 639-1) so a
  clinician can bring an interpreter; messages to a patient whose language has no catalogue are
  written in English (``server.bookings.invitations``).
"""

from __future__ import annotations

PATIENT_LANGUAGES: dict[str, str] = {
    "it": "Italiano",
    "en": "English",
    "ar": "العربية",
    "zh": "中文（简体）",
    "es": "Español",
    "tl": "Filipino",
    "ro": "Română",
    "uk": "Українська",
    "bn": "বাংলা",
    "sq": "Shqip",
    "fr": "Français",
    "ru": "Русский",
}
STAFF_LANGUAGES: dict[str, str] = {code: PATIENT_LANGUAGES[code] for code in ("it", "en")}
# Every language with a catalogue.
UI_LANGUAGES = PATIENT_LANGUAGES
DEFAULT_UI_LANGUAGE = "it"
# Written right to left: the page gets dir="rtl" and the layout mirrors (logical CSS).
RIGHT_TO_LEFT = frozenset({"ar"})
# The CLDR locale dates, times and numbers are formatted with (Babel on the server, Intl in the
# browser: i18n-client.js keeps the same table), where it is not the code itself: English as
# written in Europe (a 24-hour clock), Chinese in simplified characters, Filipino's CLDR code.
CLDR_LOCALES: dict[str, str] = {"en": "en_GB", "zh": "zh_Hans_CN", "tl": "fil"}

SPOKEN_LANGUAGES = ("it", "en", "ar", "zh", "es", "fr", "ro", "uk", "tl", "bn", "sq", "ru", "pt",
                    "de", "pl", "ur", "hi", "ta", "si", "am", "ti", "wo", "ff", "so")


def direction(lang: str) -> str:
    return "rtl" if lang in RIGHT_TO_LEFT else "ltr"


def cldr_locale(lang: str) -> str:
    return CLDR_LOCALES.get(lang, lang)
