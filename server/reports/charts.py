"""Bar charts of the report, drawn on the server as inline SVG (no script, no style
attribute: the CSP allows neither). Only published figures are drawn: a withheld cell gets no
bar, just its mark, so a chart cannot reveal what the table hides."""

from __future__ import annotations

from dataclasses import dataclass

from server.reports.model import Report


@dataclass(frozen=True)
class Bar:
    label: str
    shown: str
    width: float          # 0..100, of the chart's widest published bar


@dataclass(frozen=True)
class Chart:
    key: str              # the table it is drawn from
    column: str
    bars: tuple[Bar, ...]


def chart(report: Report, table_key: str, column: str) -> Chart:
    table = report.table(table_key)
    i = table.columns.index(column)
    rows = [r for r in table.rows if not r.total]
    values = [r.cells[i].value for r in rows]
    top = max((v for v in values if v is not None), default=0) or 1
    return Chart(table_key, column, tuple(
        Bar(r.label, r.cells[i].shown, round(100 * (r.cells[i].value or 0) / top, 1))
        for r in rows))


def of(report: Report) -> dict[str, Chart]:
    """Attended consultations along each dimension, and patients reached by language."""
    out = {dim: chart(report, f"{dim}.activity", "attended")
           for dim in ("month", "centre", "service", "mode")}
    out["language"] = chart(report, "language.patients", "language_patients")
    return out
