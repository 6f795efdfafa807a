"""The two language lists, kept apart because they mean different things.

- ``UI_LANGUAGES``: what Casa is written in: pages, e-mails and texts, invitations, the call
  page's notices. Each has a translation catalogue (``web/translations``).
- ``SPOKEN_LANGUAGES``: what a patient may say she speaks, recorded with her (ISO 639-1) so a
  clinician can bring an interpreter. Many of them have no catalogue yet; messages to such a
  patient are written in Italian or English (``server.bookings.invitations``).
"""

from __future__ import annotations

# Each with its name in its own language, for the language switcher.
UI_LANGUAGES: dict[str, str] = {"it": "Italiano", "en": "English"}
DEFAULT_UI_LANGUAGE = "it"

SPOKEN_LANGUAGES = ("it", "en", "ar", "zh", "es", "fr", "ro", "uk", "tl", "bn")

