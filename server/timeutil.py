"""Europe/Rome time helpers: every day boundary and weekly hour in Casa is local time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
