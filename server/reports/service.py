"""Who may see which centres' figures, which period a request means, and the report made for
them. Coordinators report on their own centres, admins on all; nobody else (the care roles
see patients, not the programme's figures)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg

from server import errors
from server.reports import queries
from server.reports.figures import Group, Translate, build
from server.reports.model import Period, Report
from server.reports.schemas import ReportQuery
from server.staff import Role, Staff
from server.timeutil import ROME

ROLES = (Role.ADMIN, Role.COORDINATOR)
# A longer period is a different question (and a long query): a year and a day at most.
MAX_DAYS = 400


def last_full_month(today: date) -> Period:
    first_of_this = today.replace(day=1)
    last = first_of_this - timedelta(days=1)
    return Period(last.replace(day=1), last)


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def period_of(q: ReportQuery, today: date) -> Period:
    """The period asked for: both ends given, or one end and the rest of its month, or the
    last full month."""
    default = last_full_month(today)
    first, last = q.from_ or default.first, q.to or default.last
    if q.from_ is not None and q.to is None:
        last = _month_end(first)
    if q.to is not None and q.from_ is None:
        first = last.replace(day=1)
    for name, day in (("from", first), ("to", last)):
        if not 2000 <= day.year <= 2100:
            raise errors.invalid({name: "years 2000-2100"})
    if last < first:
        raise errors.invalid({"to": "on or after from"})
    if (last - first).days >= MAX_DAYS:
        raise errors.invalid({"to": f"at most {MAX_DAYS} days after from"})
    return Period(first, last)


def centres_of(user: Staff, names: dict[str, str], centre: str | None) -> tuple[str, ...]:
    """The centres the report covers: the caller's (all for an admin), or the one asked for
    if it is among them. Another centre is refused, never reported empty."""
    if user.role not in ROLES:
        raise errors.ApiError(errors.FORBIDDEN)
    mine = tuple(c for c in names if user.role is Role.ADMIN or c in user.centres)
    if centre is None:
        return mine
    if centre not in mine:
        raise errors.ApiError(errors.FORBIDDEN)
    return (centre,)


def today_in_milan(now: datetime | None = None) -> date:
    return (now or datetime.now(ROME)).astimezone(ROME).date()


async def make(pool: asyncpg.Pool, user: Staff, q: ReportQuery, _: Translate,
               language_name: Translate, today: date) -> tuple[Report, list[str]]:
    """The report the caller asked for, and the names of the centres it covers."""
    names = await queries.centre_names(pool)
    covered = centres_of(user, names, q.centre)
    period = period_of(q, today)
    facts = await queries.facts(pool, period, covered)
    services = await queries.services(pool)
    monitored = await queries.monitoring(pool, period, covered)
    report = build(facts, period, [Group(c, names[c]) for c in covered], services,
                   language_name, _, monitored)
    return report, [names[c] for c in covered]
