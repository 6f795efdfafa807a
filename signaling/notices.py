"""The short messages a clinician sends a waiting patient, translated into the patient's
language by the server (the patient's client shows ``text`` as is, or translates ``code``)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from server.pages import catalogues

NoticeText = Callable[[str, str, "int | None"], str]


def translator(app: web.Application) -> NoticeText:
    """``notice_text`` in the app's catalogues."""
    return lambda lang, code, minutes: notice_text(app, lang, code, minutes)


def notice_text(app: web.Application, lang: str, code: str, minutes: int | None) -> str:
    """The notice in ``lang``; codes are validated by ``messages.Notice``."""
    _ = catalogues(app).gettext(lang)
    if code == "few_minutes" and minutes is not None:
        return _("The clinician will be with you in %(minutes)s minutes.", minutes=minutes)
    if code == "few_minutes":
        return _("The clinician will be with you in a few minutes.")
    if code == "running_late":
        return _("The clinician is running late. Please keep this page open.")
    if code == "technical_problem":
        return _("The clinician has a technical problem and will be with you shortly.")
    return _("Please wait: the clinician will let you in soon.")
