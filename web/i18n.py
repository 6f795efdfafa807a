"""Translations: gettext catalogues read with Babel, and the choice of a request's language.

Catalogues live as plain ``.po`` files under ``web/translations/<lang>/LC_MESSAGES/``; every
``*.po`` of a language is one domain (``casa``, ``bookings``, ``records``, ``call``) and they are
merged into one catalogue per language, so each part of Casa keeps its own file. They are
compiled in memory at start-up: no build step, nothing to forget before running.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from markupsafe import Markup

from server.consultations.languages import (
    DEFAULT_UI_LANGUAGE,
    PATIENT_LANGUAGES,
    STAFF_LANGUAGES,
    UI_LANGUAGES,
    cldr_locale,
)

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
# Casa's own languages (the list lives with the consultation core, beside the languages a
# patient may speak): the catalogues loaded here.
LANGUAGES = UI_LANGUAGES
DEFAULT_LANGUAGE = DEFAULT_UI_LANGUAGE
LANGUAGE_COOKIE = "casa_lang"
# Staff pages are written in Italian and English only: a patient's language chosen on a shared
# browser (a kiosk, a family's phone) must not turn them into half-translated pages.
# (The API is not here: the patient's pages call it too, for the pre-call check.)
STAFF_PATHS = ("/login", "/logout", "/account", "/home", "/dashboard", "/bookings", "/records",
               "/patients", "/consultations/", "/admin", "/nurse", "/kiosks", "/kiosk/enrol",
               "/monitoring")


def page_languages(path: str, staff_signed_in: bool) -> dict[str, str]:
    """The languages a page may be shown in (and its switcher offers): every patient language
    on the pages patients and guests see, Italian and English on staff pages and for staff."""
    if staff_signed_in or path.startswith(STAFF_PATHS):
        return STAFF_LANGUAGES
    return PATIENT_LANGUAGES


def _load_language(lang: str, directory: Path) -> gettext.NullTranslations:
    merged: Translations | None = None
    for po_path in sorted((directory / lang / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=lang, domain=po_path.stem)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        t = Translations(buf, domain="casa")
        if merged is None:
            merged = t
        else:
            merged.merge(t)
    return merged if merged is not None else gettext.NullTranslations()


@functools.cache
def _compiled(directory: Path) -> dict[str, gettext.NullTranslations]:
    """Every language's catalogue, compiled once per process: the files do not change while
    Casa runs (a release restarts it), and every app made in the process shares them instead of
    compiling twelve languages again (about 110 ms each time; the test suite makes hundreds of
    apps). Nothing writes to the translations once compiled."""
    return {lang: _load_language(lang, directory) for lang in LANGUAGES}


@dataclass
class Catalogues:
    by_language: dict[str, gettext.NullTranslations]

    @classmethod
    def load(cls, directory: Path = TRANSLATIONS_DIR) -> Catalogues:
        return cls(_compiled(directory))

    def get(self, lang: str) -> gettext.NullTranslations:
        return self.by_language.get(lang) or self.by_language[DEFAULT_LANGUAGE]

    def gettext(self, lang: str) -> Callable[..., str]:
        """A new-style gettext: ``_("Hello %(name)s", name=x)`` formats after translating."""
        tr = self.get(lang)

        def _(message: str, **variables: Any) -> str:
            text = tr.gettext(message)
            if any(isinstance(v, Markup) for v in variables.values()):
                # A template passed markup (a name in <bdi>): escape the sentence, keep that.
                return Markup.escape(text) % variables
            return text % variables if variables else text

        return _

    def ngettext(self, lang: str) -> Callable[..., str]:
        tr = self.get(lang)

        def n_(singular: str, plural: str, num: int, **variables: Any) -> str:
            text = tr.ngettext(singular, plural, num)
            variables.setdefault("num", num)
            return text % variables

        return n_


def parse_accept_language(header: str | None) -> list[str]:
    """Primary language subtags in the client's order of preference (q-values honoured)."""
    if not header:
        return []
    scored: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        scored.append((-q, i, tag.strip().split("-")[0].lower()))
    return [tag for q, _, tag in sorted(scored) if q < 0]


def choose_language(explicit: Iterable[str | None], accept_language: str | None,
                    default: str = DEFAULT_LANGUAGE,
                    allowed: Mapping[str, str] | None = None) -> str:
    """The user's own choice first (the link, the cookie, the account), then the browser's,
    among the ``allowed`` languages of the page (all of Casa's by default)."""
    allowed = LANGUAGES if allowed is None else allowed
    for chosen in explicit:
        if chosen is not None and chosen in allowed:
            return chosen
    for lang in parse_accept_language(accept_language):
        if lang in allowed:
            return lang
    return default if default in allowed else DEFAULT_LANGUAGE


def language_autonym(code: str) -> str:
    """A language's name in itself (``"ar"`` -> ``"العربية"``), first letter capitalised as a
    list item begins; the code itself when CLDR does not know the language."""
    name = language_name(code, code)
    return code if name == code else name[:1].upper() + name[1:]


def language_label(code: str, in_language: str) -> str:
    """How a language is offered in a list: its own name, for the person who speaks it, then
    the reader's name for it when that differs (``"العربية (arabo)"``, ``"Italiano"``)."""
    own, theirs = language_autonym(code), language_name(code, in_language)
    return own if own.casefold() == theirs.casefold() else f"{own} ({theirs})"


def language_name(code: str, in_language: str) -> str:
    """A language's name in another one (``("ro", "it")`` -> ``"rumeno"``), from CLDR via
    Babel; the code itself when either is unknown."""
    # CLDR's own code for the language where Casa's differs (Filipino is "fil", not "tl").
    key = cldr_locale(code).split("_")[0]
    try:
        name = Locale.parse(cldr_locale(in_language)).languages.get(key)
    except (ValueError, UnknownLocaleError):
        return code
    return str(name) if name else code
