"""The translators' workflow: which words patients see, the template they are translated from,
and the check that keeps every translation usable.

Every message in the files of ``PATIENT_SOURCES`` is patient-facing: it goes into
``web/translations/patient.pot`` with a comment saying where a patient meets it (the context a
translator needs), and every patient language keeps its translation in
``<lang>/LC_MESSAGES/patient.po``. Italian and English also translate the staff pages, in the
other domain files. ``casa i18n update`` rebuilds the template from the sources and merges it
into each patient language (new messages empty, changed ones fuzzy); ``casa i18n check`` lists
what is missing, fuzzy or machine-made and fails on a translation that would break at run time
(placeholders that differ from the source, a wrong number of plural forms).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from server.consultations.languages import PATIENT_LANGUAGES, STAFF_LANGUAGES, cldr_locale

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS_DIR = Path(__file__).parent / "translations"
TEMPLATE = TRANSLATIONS_DIR / "patient.pot"
DOMAIN = "patient"
PACKAGES = ("server", "web", "records", "signaling")
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "add_home_link": (3,)}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
# A catalogue whose header carries this line was made by machine: usable, but every string
# waits for a native speaker (docs/translating.md). Removing the line marks it reviewed.
MACHINE_MARK = "Review: machine translation, not yet reviewed by a native speaker."

# Where patients and guests meet Casa's words, each with the note translators see beside
# every string of that file. Staff-only words live elsewhere (e.g. the clinician's panel).
PATIENT_SOURCES: dict[str, str] = {
    "web/templates/base.html": "Every page: the top bar and the language chooser.",
    "web/templates/_read_aloud.html": "A button on the patient's pages that reads the main "
                                      "instruction aloud (keep it very short).",
    "web/templates/landing.html": "Casa's front page, for someone who arrives without a link.",
    "web/templates/error.html": "The error page (a link that does not work, a page not found).",
    "web/templates/_centre_phone.html": "The health centre's phone number, shown under a "
                                        "message that says to call the centre; %(phone)s is "
                                        "the number.",
    "web/templates/_quick_exit.html": "A large button on the pages of a sensitive appointment "
                                      "(e.g. violence support) that leaves at once for a "
                                      "neutral page; keep it short.",
    "web/templates/call/away.html": "The neutral page a patient lands on after the quick exit: "
                                    "it must look like an ordinary weather page.",
    "web/templates/join/form.html": "The page where a patient types the 6-digit code of their "
                                    "invitation and their date of birth.",
    "web/templates/join/refused.html": "The page a patient sees when their link or code cannot "
                                       "be used (too early, expired, cancelled).",
    "web/templates/call/consultation.html": "The video consultation page: the quick check of "
                                            "camera and microphone, the waiting room, the call "
                                            "and the end page.",
    "web/templates/call/_precall.html": "The quick check of camera, microphone and connection "
                                        "before a video consultation.",
    "web/templates/call/precall.html": "The stand-alone check of camera and microphone.",
    "web/templates/call/closed.html": "The page a patient sees when their consultation cannot "
                                      "be joined now (not open yet, over, cancelled).",
    "web/templates/records/summary.html": "The summary of a consultation a patient reads "
                                          "through a link from their clinician.",
    "web/templates/kiosks/kiosk.html": "A shared kiosk at the health centre, with a touch "
                                       "screen: the patient chooses a language, then types "
                                       "the code and date of birth on on-screen keys or shows "
                                       "the invitation's QR code to the camera.",
    "server/kiosks/strings.py": "Messages on the kiosk at the health centre while a patient "
                                "types their code or shows their QR code.",
    "server/calls/strings.py": "Short messages the video consultation page shows while it "
                               "runs (checks, waiting room, call, end).",
    "server/bookings/invitations.py": "The invitation a patient receives by e-mail or text "
                                      "message (SMS: keep it short) and its calendar entry.",
    "web/templates/bookings/invitation_print.html": "The invitation printed at the health "
                                                    "centre and handed or posted to the "
                                                    "patient, with the code to join.",
    "server/bookings/reminder_texts.py": "The reminder a patient receives by e-mail or text "
                                         "message (SMS: keep it short) the day before and "
                                         "shortly before an appointment.",
    "web/templates/monitoring/form.html": "The one-screen form where a patient at home writes "
                                          "her measurements (blood pressure, pulse, sugar...) "
                                          "for her nurse; on an old phone: keep it short.",
    "web/templates/monitoring/closed.html": "The page a patient sees when her readings link "
                                            "was replaced, revoked or has ended.",
    "server/monitoring/strings.py": "The fields, units and short messages of the patient's "
                                    "readings form (sent, kept on the phone while offline).",
    "server/errors.py": "An error message a patient can see on a page.",
    "records/errors.py": "An error message a patient can see on a page.",
    "signaling/notices.py": "A short message the clinician sends to a patient in the waiting "
                            "room.",
    "signaling/errors.py": "An error message shown on the video consultation page.",
    "signaling/echo_access.py": "An error message shown during the camera and connection "
                                "check.",
}

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


def _is_patient_source(path: str) -> str | None:
    for pattern, note in PATIENT_SOURCES.items():
        if fnmatch.fnmatch(path, pattern):
            return note
    return None


def extract_patient_messages() -> Catalog:
    """The template: every patient-facing message, with where it appears and what it is."""
    template = Catalog(domain=DOMAIN, project="Casa", version="1", charset="utf-8",
                       fuzzy=False, creation_date=datetime(2026, 1, 1, tzinfo=UTC),
                       msgid_bugs_address="translations@casa.example",
                       header_comment="# Casa: every word a patient or guest sees, to translate.\n"
                                      "# Each string says where it appears (#.) and in which "
                                      "file (#:).\n# docs/translating.md explains the "
                                      "workflow.")
    for package in PACKAGES:
        for filename, lineno, message, comments, context in extract_from_dir(
                ROOT / package, METHODS, keywords=KEYWORDS, options_map=OPTIONS,
                comment_tags=("Translators:",), strip_comment_tags=True):
            path = f"{package}/{filename}"
            note = _is_patient_source(path)
            if note is None or not message:
                continue
            existing = template.get(message if isinstance(message, str) else message[0],
                                    context)
            auto = [note, *comments]
            if existing is not None:
                existing.locations.append((path, lineno))
                existing.auto_comments.extend(c for c in auto if c not in existing.auto_comments)
                continue
            template.add(message, None, [(path, lineno)], auto_comments=auto, context=context)
    return template


def write_template(template: Catalog, path: Path = TEMPLATE) -> None:
    with path.open("wb") as fh:
        write_po(fh, template, width=96, sort_output=False, omit_header=False)


def po_path(lang: str, directory: Path = TRANSLATIONS_DIR) -> Path:
    return directory / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(path: Path, lang: str) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=cldr_locale(lang), domain=DOMAIN)


def update(template: Catalog, directory: Path = TRANSLATIONS_DIR) -> list[str]:
    """Merge the template into every patient language that has no staff catalogue of its own;
    returns the files written."""
    written = []
    for lang in PATIENT_LANGUAGES:
        if lang in STAFF_LANGUAGES:
            continue
        path = po_path(lang, directory)
        if path.exists():
            catalog = read_catalog(path, lang)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=cldr_locale(lang), domain=DOMAIN, project="Casa",
                              header_comment=f"# Casa: what patients see, in {lang}.\n"
                                             f"# {MACHINE_MARK}")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as fh:
            write_po(fh, catalog, width=96, sort_output=False, include_previous=True)
        written.append(str(path.relative_to(ROOT)))
    return written


@dataclass
class LanguageReport:
    lang: str
    machine: bool = False
    missing: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def _strings(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_catalog(lang: str, catalog: Catalog, template: Catalog) -> LanguageReport:
    report = LanguageReport(lang, machine=MACHINE_MARK in (catalog.header_comment or ""))
    for source in template:
        if not source.id:
            continue
        msgid = source.id if isinstance(source.id, str) else source.id[0]
        found = catalog.get(source.id, source.context)
        texts = [t for t in _strings(found.string if found else None) if t]
        if found is None or not texts:
            report.missing.append(msgid)
            continue
        if found.fuzzy:
            report.fuzzy.append(msgid)
        expected = set().union(*(placeholders(i) for i in _strings(source.id)))
        for text in texts:
            if placeholders(text) != expected:
                report.broken.append(f"{msgid!r}: placeholders {sorted(placeholders(text))} "
                                     f"differ from {sorted(expected)}")
        if source.pluralizable and len(_strings(found.string)) != catalog.num_plurals:
            report.broken.append(f"{msgid!r}: {len(_strings(found.string))} plural forms, "
                                 f"{catalog.num_plurals} expected")
    return report


def check(directory: Path = TRANSLATIONS_DIR) -> Iterator[LanguageReport]:
    """Every patient language against the template built from the sources now."""
    template = extract_patient_messages()
    for lang in PATIENT_LANGUAGES:
        if lang in STAFF_LANGUAGES:
            yield _check_merged(lang, template, directory)
            continue
        path = po_path(lang, directory)
        if not path.exists():
            yield LanguageReport(lang, missing=[str(m.id) for m in template if m.id])
            continue
        yield check_catalog(lang, read_catalog(path, lang), template)


def _check_merged(lang: str, template: Catalog, directory: Path) -> LanguageReport:
    """Italian and English keep patient words beside staff words, in several domain files."""
    merged = Catalog(locale=cldr_locale(lang))
    for path in sorted((directory / lang / "LC_MESSAGES").glob("*.po")):
        for message in read_catalog(path, lang):
            if message.id and message.string:
                merged[message.id] = message
    report = check_catalog(lang, merged, template)
    if lang == "en":
        # English is the source language: a message it does not list is shown as written.
        report.missing = []
    return report
