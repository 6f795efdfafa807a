"""Patients are addressed in one register in Italian: the formal "Lei", as a public health
service writes ("Entri nel suo appuntamento", never "Entra nella tua visita" beside it).

Every Italian translation of a patient-facing message (``web.catalogue.PATIENT_SOURCES``, as
the pages show it: the domain files merged, the last one winning) is searched for the words
that only the informal "tu" uses. The list is short on purpose: only words that cannot be
anything else in Casa's texts, so a hit is always a slip of register. Verbs whose informal
imperative is also a third person or a noun ("controlla", "prova", "usa", "chiama", "torna":
"il medico controlla", "una prova di connessione") are left out: they would be false alarms.
"""

from __future__ import annotations

import re

from babel.messages.catalog import Catalog

from web.catalogue import TRANSLATIONS_DIR, extract_patient_messages, read_catalog

INFORMAL = {
    # pronouns and possessives of "tu"
    "tu", "ti", "te", "tuo", "tua", "tuoi", "tue",
    # second-person present: "sei" is also "six", but Casa writes numbers as digits ("6 cifre")
    "sei", "hai", "puoi", "devi", "vuoi", "vedrai",
    # informal imperatives with no other reading in Casa's texts
    "entra", "clicca", "apri", "attendi", "inserisci", "inseriscilo", "scegli", "premi",
    "tieni", "chiudi", "consenti", "consentilo", "accedi", "esci", "fai", "vai", "di'",
    "fammi", "invialo", "provalo", "riprova", "ricarica",
}
# Shown on a patient page's top bar only to signed-in staff, whom Casa's Italian addresses
# with "tu" on every staff page.
STAFF_ONLY = {"Sign out"}
WORD = re.compile(r"[\w']+")
# A quoted word is the label of a button, the browser's own ("Consenti") or Casa's.
QUOTED = re.compile(r'"[^"]*"')


def _italian() -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((TRANSLATIONS_DIR / "it" / "LC_MESSAGES").glob("*.po")):
        catalog: Catalog = read_catalog(path, "it")
        for m in catalog:
            if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string:
                merged[m.id] = m.string
    return merged


def informal_words(text: str) -> set[str]:
    words = {w.lower() for w in WORD.findall(QUOTED.sub("", text))}
    # "di'" (say!) keeps its apostrophe; "dell'", "l'" and the like are not in the list.
    return words & INFORMAL


def test_the_word_list_finds_the_informal_register():
    assert informal_words("Sei nella sala d'attesa. Il medico ti farà entrare.") == {"sei", "ti"}
    assert informal_words("Entra nella tua visita") == {"entra", "tua"}
    assert informal_words("Di' qualche parola") == {"di'"}
    assert informal_words("È nella sala d'attesa. Il medico la farà entrare.") == set()
    assert informal_words("Inserisca il codice di 6 cifre dell'invito.") == set()
    assert informal_words('Scelga "Consenti".') == set()


def test_patient_italian_is_in_the_formal_register():
    italian = _italian()
    slips = []
    for message in extract_patient_messages():
        if not message.id or not isinstance(message.id, str) or message.id in STAFF_ONLY:
            continue
        text = italian.get(message.id, "")
        if found := informal_words(text):
            slips.append(f"{message.id!r} -> {text!r}: {sorted(found)}")
    assert not slips, "informal Italian on patient pages:\n" + "\n".join(slips)
