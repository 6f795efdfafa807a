"""The report as CSV (one line per published cell, for machines) and as an XLSX workbook (one
sheet per table, as on the page, for people). Both carry only published cells: a withheld one
is "<5" or "x", never its value."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from openpyxl import Workbook
from openpyxl.styles import Font

from server.reports.figures import COLUMN_TITLES
from server.reports.model import Report

Translate = Callable[[str], str]
CSV_HEADER = ("table", "table_title", "row_key", "row", "column_key", "column", "value")


def legend(_: Translate) -> list[str]:
    return [_("“<5”: fewer than 5, withheld so that nobody can be recognised."),
            _("“x”: withheld so that a figure below 5 cannot be worked out from the totals."),
            _("Sensitive services are reported only together, and never by language.")]


def csv_text(report: Report, _: Translate) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for t in report.tables:
        for r in t.rows:
            for key, cell in zip(t.columns, r.cells, strict=True):
                w.writerow((t.key, t.title, r.key, r.label, key, _(COLUMN_TITLES[key]),
                            cell.shown))
    return out.getvalue()


def xlsx_bytes(report: Report, centre_names: list[str], _: Translate) -> bytes:
    wb = Workbook()
    about = wb.active
    assert about is not None
    about.title = _("Report")
    bold = Font(bold=True)
    about.append([_("Activity report")])
    about["A1"].font = bold
    about.append([_("From"), report.period.first.isoformat()])
    about.append([_("To"), report.period.last.isoformat()])
    about.append([_("Centres"), ", ".join(centre_names)])
    about.append([])
    for line in legend(_):
        about.append([line])
    about.append([])
    about.append([_("Not recorded yet")])
    for line in report.not_recorded:
        about.append([line])
    for t in report.tables:
        # Sheet names: at most 31 characters, and no ":" "/" "?" "*" "[" "]".
        ws = wb.create_sheet(t.key.replace(".", " ")[:31])
        ws.append([t.title])
        ws["A1"].font = bold
        ws.append(["", *[_(COLUMN_TITLES[c]) for c in t.columns]])
        for cell in ws[2]:
            cell.font = bold
        for r in t.rows:
            ws.append([r.label, *[c.value if c.value is not None else c.shown
                                  for c in r.cells]])
            if r.total:
                for cell in ws[ws.max_row]:
                    cell.font = bold
        ws.column_dimensions["A"].width = 40
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
