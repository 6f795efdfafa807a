"""From the facts of each booking to the published tables: counts, medians, and suppression
(``suppression.suppress`` on every table's counts; a median of fewer than five values is
withheld as well). Pure functions: the tests feed them facts they made by hand."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from server.errors import N_
from server.reports.model import (
    MODES,
    SENSITIVE,
    BookingFacts,
    Cell,
    MonitoringFacts,
    Period,
    Report,
    Row,
    Table,
)
from server.reports.suppression import THRESHOLD, Mark, suppress

Translate = Callable[[str], str]

ACTIVITY = ("bookings", "attended", "no_shows", "cancelled_patient", "cancelled_staff",
            "cancelled_system", "patients", "new_patients", "returning_patients")
CALL_COUNTS = ("video_attended", "kiosk_attended", "nurse_present", "guest_joined",
               "staff_invited", "relayed", "sound_only")
CALL_MEDIANS = ("lead_median_days", "lead_p90_days", "wait_median_min", "duration_median_min")
CALLS = CALL_COUNTS + CALL_MEDIANS

COLUMN_TITLES = {
    "bookings": N_("Bookings"),
    "attended": N_("Attended"),
    "no_shows": N_("No-shows"),
    "cancelled_patient": N_("Cancelled by the patient"),
    "cancelled_staff": N_("Cancelled by staff"),
    "cancelled_system": N_("Cancelled by the system"),
    "patients": N_("Patients reached"),
    "new_patients": N_("New patients"),
    "returning_patients": N_("Returning patients"),
    "video_attended": N_("Video consultations held"),
    "kiosk_attended": N_("Of which at a kiosk"),
    "nurse_present": N_("Kiosk with a nurse present"),
    "guest_joined": N_("With a guest (interpreter)"),
    "staff_invited": N_("With another staff member invited"),
    "relayed": N_("Through a TURN relay"),
    "sound_only": N_("Fell back to sound only"),
    "lead_median_days": N_("Days from booking to appointment (median)"),
    "lead_p90_days": N_("Days from booking to appointment (90th percentile)"),
    "wait_median_min": N_("Minutes in the waiting room (median)"),
    "duration_median_min": N_("Minutes of consultation (median)"),
    "language_patients": N_("Patients reached"),
    "monitored": N_("Patients monitored"),
    "enrolled": N_("Newly enrolled"),
    "sent": N_("Sent readings"),
    "out_of_range": N_("With a reading out of range"),
    "missed": N_("With readings missed"),
    "escalated": N_("Patients escalated to the GP"),
}
# Tele-monitoring by centre: every column counts patients, so suppression applies as elsewhere.
MONITORING = ("monitored", "enrolled", "sent", "out_of_range", "missed", "escalated")
DIMENSIONS = {
    "centre": N_("By centre"),
    "service": N_("By service"),
    "mode": N_("By mode"),
    "month": N_("By month"),
}
MODE_NAMES = {
    "home_video": N_("Video from home"),
    "kiosk_video": N_("Video at the centre kiosk"),
    "in_person": N_("In person"),
}
SENSITIVE_NAME = N_("Sensitive services (psychological, psychiatric, violence support)")
TOTAL = N_("Total")
# Asked for, and not in the database yet (docs/reports.md, "Not recorded yet").
NOT_RECORDED = (
    N_("Who asked for a cancellation: the database records who made the change (patients "
       "cannot cancel in Casa, so staff cancel on their behalf); the reason is free text."),
    N_("Duration and waiting time of in-person visits: only video consultations record their "
       "times."),
)


@dataclass(frozen=True)
class Group:
    key: str
    label: str


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _minutes(a: datetime | None, b: datetime | None) -> float | None:
    if a is not None and b is not None and b >= a:
        return (b - a).total_seconds() / 60
    return None


def counts(facts: Iterable[BookingFacts]) -> dict[str, int]:
    """The count columns of one group."""
    fs = list(facts)
    came = [f for f in fs if f.attended]
    reached = {f.patient_id for f in came}
    new = {f.patient_id for f in came if f.new_patient}
    video = [f for f in came if f.video]
    kiosk = [f for f in video if f.mode == "kiosk_video"]
    cancelled = [f for f in fs if f.status == "cancelled"]
    return {
        "bookings": len(fs),
        "attended": len(came),
        "no_shows": sum(f.status == "noshow" for f in fs),
        "cancelled_patient": sum(f.cancelled_by == "patient" for f in cancelled),
        "cancelled_staff": sum(f.cancelled_by == "staff" for f in cancelled),
        "cancelled_system": sum(f.cancelled_by not in ("patient", "staff") for f in cancelled),
        "patients": len(reached),
        "new_patients": len(new),
        "returning_patients": len(reached - new),
        "video_attended": len(video),
        "kiosk_attended": len(kiosk),
        "nurse_present": sum(f.nurse_present for f in kiosk),
        "guest_joined": sum(f.guest_joined for f in video),
        "staff_invited": sum(f.staff_invited for f in video),
        "relayed": sum(f.relayed for f in video),
        "sound_only": sum(f.sound_only for f in video),
    }


def medians(facts: Iterable[BookingFacts]) -> dict[str, tuple[float | None, int]]:
    """Each median column of one group and how many values it is taken from."""
    fs = list(facts)
    lead = [(f.starts_at - f.created_at).total_seconds() / 86400 for f in fs
            if f.status != "cancelled" and f.created_at <= f.starts_at]
    wait = [m for f in fs if (m := _minutes(f.first_arrived_at, f.admitted_at)) is not None]
    held = [m for f in fs if (m := _minutes(f.admitted_at, f.ended_at)) is not None]

    def of(values: list[float], q: float) -> tuple[float | None, int]:
        return (percentile(values, q) if values else None, len(values))

    return {"lead_median_days": of(lead, 0.5), "lead_p90_days": of(lead, 0.9),
            "wait_median_min": of(wait, 0.5), "duration_median_min": of(held, 0.5)}


def _count_table(key: str, title: str, columns: tuple[str, ...], groups: list[Group],
                 grid: list[list[int]], total_label: str,
                 extra: list[list[Cell]] | None = None,
                 extra_columns: tuple[str, ...] = ()) -> Table:
    """Rows of ``grid`` (the last one the total), suppressed as one table."""
    marks = suppress(grid)
    rows = []
    for i, (values, row_marks) in enumerate(zip(grid, marks, strict=True)):
        cells = tuple(Cell(None if m is not Mark.SHOWN else v, m)
                      for v, m in zip(values, row_marks, strict=True))
        if extra is not None:
            cells += tuple(extra[i])
        last = i == len(grid) - 1
        g = Group("total", total_label) if last else groups[i]
        rows.append(Row(g.key, g.label, cells, total=last))
    return Table(key, title, columns + extra_columns, tuple(rows))


def _median_cells(facts: list[BookingFacts]) -> list[Cell]:
    out = []
    for name, (value, n) in medians(facts).items():
        assert name in CALL_MEDIANS
        if value is None:
            out.append(Cell(None))
        elif n < THRESHOLD:
            out.append(Cell(None, Mark.PRIMARY))
        else:
            out.append(Cell(round(value, 1)))
    return out


def _key(dim: str, f: BookingFacts) -> str:
    if dim == "centre":
        return f.centre_id
    if dim == "service":
        return SENSITIVE if f.sensitive else f.service_code
    if dim == "mode":
        return f.mode
    return f.month


def monitoring_counts(facts: Iterable[MonitoringFacts]) -> list[int]:
    """The tele-monitoring columns of one group: distinct patients."""
    fs = list(facts)
    return [len({f.patient_id for f in fs if flag(f)}) for flag in (
        lambda f: True, lambda f: f.enrolled, lambda f: f.sent, lambda f: f.out_of_range,
        lambda f: f.missed, lambda f: f.escalated)]


def build(facts: list[BookingFacts], period: Period, centres: list[Group],
          services: list[tuple[str, str, bool]], language_name: Callable[[str], str],
          _: Translate, monitored: Sequence[MonitoringFacts] = ()) -> Report:
    """The whole report: for each dimension an activity table and a calls table, then the
    patients reached by language (sensitive services left out of it)."""
    groups: dict[str, list[Group]] = {
        "centre": [Group(c.key, c.label) for c in centres],
        "service": [Group(code, _(name)) for code, name, sensitive in services
                    if not sensitive] + [Group(SENSITIVE, _(SENSITIVE_NAME))],
        "mode": [Group(m, _(MODE_NAMES[m])) for m in MODES],
        "month": [Group(m, m) for m in period.months()],
    }
    tables: list[Table] = []
    # Every dimension's total line is the same: counted once.
    total_counts, total_medians = counts(facts), _median_cells(facts)
    for dim, dim_groups in groups.items():
        # One pass over the facts per dimension (a year of the five centres is ~60,000).
        buckets: dict[str, list[BookingFacts]] = {g.key: [] for g in dim_groups}
        for f in facts:
            bucket = buckets.get(_key(dim, f))
            if bucket is not None:
                bucket.append(f)
        members = [buckets[g.key] for g in dim_groups]
        by_group = [counts(m) for m in members] + [total_counts]
        title = _(DIMENSIONS[dim])
        tables.append(_count_table(f"{dim}.activity", title, ACTIVITY, dim_groups,
                                   [[c[k] for k in ACTIVITY] for c in by_group], _(TOTAL)))
        tables.append(_count_table(f"{dim}.calls", title, CALL_COUNTS, dim_groups,
                                   [[c[k] for k in CALL_COUNTS] for c in by_group], _(TOTAL),
                                   extra=[_median_cells(m) for m in members]
                                   + [total_medians],
                                   extra_columns=CALL_MEDIANS))
    # Never by language for sensitive services: their patients are left out of this table.
    plain = [f for f in facts if f.attended and not f.sensitive]
    by_language: dict[str, set[int]] = {}
    for f in plain:
        by_language.setdefault(f.language, set()).add(f.patient_id)
    languages = sorted(by_language, key=lambda code: (-len(by_language[code]), code))
    lang_groups = [Group(code, language_name(code)) for code in languages]
    grid = [[len(by_language[code])] for code in languages] + [[len({f.patient_id
                                                                     for f in plain})]]
    tables.append(_count_table("language.patients", _(N_("Patients reached by language")),
                               ("language_patients",), lang_groups, grid, _(TOTAL)))
    centre_groups = [Group(c.key, c.label) for c in centres]
    grid = [monitoring_counts(f for f in monitored if f.centre_id == g.key)
            for g in centre_groups] + [monitoring_counts(monitored)]
    tables.append(_count_table("monitoring.centre", _(N_("Tele-monitoring by centre")),
                               MONITORING, centre_groups, grid, _(TOTAL)))
    return Report(period=period, centres=tuple(c.key for c in centres), tables=tuple(tables),
                  not_recorded=tuple(_(n) for n in NOT_RECORDED))
