"""What the activity report is made of: the facts of one booking as the database records them,
and the published tables (every cell already passed through suppression)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from server.reports.suppression import Mark

MODES = ("home_video", "kiosk_video", "in_person")
SENSITIVE = "sensitive"   # the one line every sensitive service is reported under


@dataclass(frozen=True)
class Period:
    """Whole days in Milan, both ends included."""

    first: date
    last: date

    def months(self) -> list[str]:
        """``YYYY-MM`` of every month the period touches."""
        out, y, m = [], self.first.year, self.first.month
        while (y, m) <= (self.last.year, self.last.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


@dataclass(frozen=True)
class BookingFacts:
    """One booking whose appointment starts in the period (entered-in-error ones excluded)."""

    id: int
    centre_id: str
    service_code: str
    sensitive: bool
    mode: str
    month: str                        # YYYY-MM of the start, Milan time
    status: str
    patient_id: int
    language: str                     # the patient's preferred language
    new_patient: bool                 # no booking of hers starts before the period
    cancelled_by: str | None          # 'patient', 'staff', 'system' (who changed the status)
    created_at: datetime
    starts_at: datetime
    video: bool                       # has a consultation (home or kiosk video)
    first_arrived_at: datetime | None
    admitted_at: datetime | None
    ended_at: datetime | None
    nurse_present: bool               # a nurse declared herself with the patient
    guest_joined: bool                # someone came in by a guest link (an interpreter)
    staff_invited: bool               # another staff member was added to the call
    relayed: bool                     # a participant's media went through a TURN relay
    sound_only: bool                  # a participant's call page fell back to sound only

    @property
    def attended(self) -> bool:
        return self.status in ("arrived", "fulfilled")


@dataclass(frozen=True)
class MonitoringFacts:
    """One patient with a tele-monitoring plan in force during the period, at her home centre
    (server/monitoring: plans, readings, alerts); what happened in the period."""

    centre_id: str
    patient_id: int
    enrolled: bool                    # a plan of hers was made in the period
    sent: bool                        # a reading of hers was received in the period
    out_of_range: bool                # an out-of-range alert was raised
    missed: bool                      # a missed-reading alert was raised
    escalated: bool                   # an alert raised in the period was escalated to the GP


@dataclass(frozen=True)
class Cell:
    """A published figure: ``value`` is None when withheld."""

    value: int | float | None
    mark: Mark = Mark.SHOWN

    @property
    def shown(self) -> str:
        if self.mark is Mark.PRIMARY:
            return "<5"
        if self.mark is Mark.SECONDARY:
            return "x"
        if self.value is None:
            return "–"
        if isinstance(self.value, float):
            return f"{self.value:.1f}"
        return str(self.value)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    cells: tuple[Cell, ...]
    total: bool = False


@dataclass(frozen=True)
class Table:
    key: str                          # e.g. "centre.activity"
    title: str
    columns: tuple[str, ...]          # column keys (COLUMN_TITLES)
    rows: tuple[Row, ...]

    def column(self, key: str) -> list[Cell]:
        i = self.columns.index(key)
        return [r.cells[i] for r in self.rows]


@dataclass(frozen=True)
class Report:
    period: Period
    centres: tuple[str, ...]          # the centres covered
    tables: tuple[Table, ...]
    not_recorded: tuple[str, ...]     # figures asked for that the database does not hold yet

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)
