"""Europe/Rome time helpers: every day boundary and weekly hour in Casa is local time."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_datetime_format

from server.consultations.languages import cldr_locale

ROME = ZoneInfo("Europe/Rome")
# Python compares and adds datetimes that share a tzinfo by wall clock, which is wrong across a
# DST change; every instant computed here is therefore returned in UTC.
UTC = ZoneInfo("UTC")


def local_midnight(day: date) -> datetime:
    """The instant (UTC) at which ``day`` begins in Rome."""
    return local_instant(day, time(0))


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a Rome calendar day; 23 or 25 hours long on the DST change days."""
    return local_midnight(day), local_midnight(day + timedelta(days=1))


def local_instant(day: date, at: time) -> datetime:
    """A wall-clock time on a Rome day as an instant (UTC). A time that does not exist (the
    spring-forward hour) moves forward; an ambiguous one (autumn) takes the first occurrence,
    because zoneinfo's ``fold=0`` does both."""
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=ROME)
    # Converting to UTC normalises a non-existent wall time to a real instant.
    return aware.astimezone(UTC)


def to_local(instant: datetime) -> datetime:
    return instant.astimezone(ROME)


def local_time_text(instant: datetime, lang: str) -> str:
    """The Rome clock time of ``instant`` as ``lang`` writes it (15:05, 3:05 PM)."""
    return format_time(to_local(instant), "short", locale=cldr_locale(lang))


def local_day_text(day: date | datetime, lang: str) -> str:
    """A day as ``lang`` writes it in full (mercoledì 9 dicembre 2026; الأربعاء، 9 ديسمبر)."""
    if isinstance(day, datetime):
        day = to_local(day).date()
    return format_date(day, "full", locale=cldr_locale(lang))


def local_when_text(instant: datetime, lang: str) -> str:
    """Day and time together, joined the way the language joins them (CLDR's pattern, where
    ``{1}`` is the day, ``{0}`` the time, and quoted words are literal)."""
    parts = {"{1}": local_day_text(instant, lang), "{0}": local_time_text(instant, lang)}
    pattern = str(get_datetime_format("full", locale=cldr_locale(lang)))
    return "".join(parts.get(piece, piece.replace("''", "\x00").replace("'", "")
                             .replace("\x00", "'"))
                   for piece in re.split(r"(\{[01]\})", pattern))
