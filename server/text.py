"""Free text that people type and others read: names, labels, chat. One check for every place
that takes them (patients, staff, guests' labels, API token labels, chat), so each refuses the
same characters with the field named.

Refused everywhere: C0 controls (NUL, which PostgreSQL cannot store, bell, escape, ...), DEL and
C1 controls. They are invisible, break logs and layouts, and no name or message needs them;
chat keeps tab and newline. Refused in names and labels, allowed in chat: the bidirectional
embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069). A name never needs them,
while a message mixing Arabic and Italian may; pages show every name and message isolated
(``<bdi>``, ``unicode-bidi: isolate``), so an unbalanced one cannot reverse the text around it.
The marks U+200E, U+200F and U+061C change no text but their own neighbours: allowed."""

from __future__ import annotations

import re

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BIDI_FORMATTING = re.compile("[\u202a-\u202e\u2066-\u2069]")

CONTROL_REASON = "must not contain control characters"
BIDI_REASON = "must not contain bidirectional formatting characters"


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name or label (a reason for the field's error), or None."""
    if _CONTROLS.search(value):
        return CONTROL_REASON
    if _BIDI_FORMATTING.search(value):
        return BIDI_REASON
    return None


def message_problem(value: str) -> str | None:
    """Why ``value`` cannot be a chat message, or None: like a name, but tab and newline are
    allowed and so are bidirectional formatting characters (shown isolated)."""
    if _CONTROLS_BUT_LINES.search(value):
        return CONTROL_REASON
    return None
