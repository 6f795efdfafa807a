"""``/reports/activity`` (the page, its CSV and XLSX downloads) and
``GET /api/v1/reports/activity`` (JSON or CSV): the same report under the same rules."""

from __future__ import annotations

from typing import Literal

import msgspec
from aiohttp import web

from server import validation
from server.bookings.access import api, caller
from server.keys import LANG, POOL
from server.pages import current_staff, render, require_staff, translator
from server.reports import charts, export, queries, service
from server.reports.figures import COLUMN_TITLES, DIMENSIONS, Translate
from server.reports.model import Cell, Report
from server.reports.schemas import (
    ActivityReport,
    ReportCell,
    ReportPeriod,
    ReportQuery,
    ReportRow,
    ReportTable,
)
from server.reports.suppression import THRESHOLD, Mark
from server.staff import Staff
from web.i18n import language_name

CSS = "css/reports.css"
WITHHELD: dict[Mark, Literal["primary", "secondary"]] = {Mark.PRIMARY: "primary",
                                                       Mark.SECONDARY: "secondary"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _lang(request: web.Request) -> str:
    return str(request.get(LANG, "it"))


def _page_query(request: web.Request) -> ReportQuery:
    """The page's form: an empty field means its default (the API refuses empty values)."""
    given = {k: v for k, v in request.query.items() if v.strip() and k in ("from", "to",
                                                                           "centre")}
    return validation.convert(given, ReportQuery)


async def _report(request: web.Request, user: Staff,
                  q: ReportQuery) -> tuple[Report, list[str]]:
    lang = _lang(request)
    return await service.make(request.app[POOL], user, q, translator(request),
                              lambda code: language_name(code, lang),
                              service.today_in_milan())


def _filename(report: Report, ext: str) -> str:
    return (f"casa-activity-{report.period.first.isoformat()}-"
            f"{report.period.last.isoformat()}.{ext}")


def _csv(request: web.Request, report: Report) -> web.Response:
    return web.Response(
        text=export.csv_text(report, translator(request)), content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(report, "csv")}"'})


def as_json(report: Report, _: Translate) -> ActivityReport:
    def cell(c: Cell) -> ReportCell:
        return ReportCell(c.value, c.shown, WITHHELD.get(c.mark))

    return ActivityReport(
        period=ReportPeriod(report.period.first, report.period.last),
        centres=list(report.centres), suppression_threshold=THRESHOLD,
        tables=[ReportTable(t.key, t.title, list(t.columns),
                            [_(COLUMN_TITLES[c]) for c in t.columns],
                            [ReportRow(r.key, r.label, r.total, [cell(c) for c in r.cells])
                             for r in t.rows]) for t in report.tables],
        not_recorded=list(report.not_recorded))


@api(*service.ROLES)
async def api_report(request: web.Request) -> web.StreamResponse:
    q = validation.query(request, ReportQuery)
    report, _names = await _report(request, caller(request), q)
    if q.format == "csv":
        return _csv(request, report)
    return web.Response(body=msgspec.json.encode(as_json(report, translator(request))),
                        content_type="application/json")


@require_staff(*service.ROLES)
async def page(request: web.Request) -> web.StreamResponse:
    q = _page_query(request)
    user = current_staff(request)
    report, names = await _report(request, user, q)
    all_names = await _centre_choices(request, user)
    _ = translator(request)
    query = {"from": report.period.first.isoformat(), "to": report.period.last.isoformat()}
    if q.centre:
        query["centre"] = q.centre
    return render(request, "reports/activity.html", report=report, centre_names=names,
                  choices=all_names, chosen=q.centre, query=query,
                  dimensions=[(d, _(title)) for d, title in DIMENSIONS.items()],
                  column_titles={k: _(v) for k, v in COLUMN_TITLES.items()},
                  charts=charts.of(report), legend=export.legend(_), css=CSS)


async def _centre_choices(request: web.Request, user: Staff) -> list[tuple[str, str]]:
    names = await queries.centre_names(request.app[POOL])
    return [(c, n) for c, n in names.items() if c in service.centres_of(user, names, None)]


@require_staff(*service.ROLES)
async def download(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["ext"]
    report, names = await _report(request, current_staff(request), _page_query(request))
    if kind == "csv":
        return _csv(request, report)
    body = export.xlsx_bytes(report, names, translator(request))
    return web.Response(body=body, content_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{_filename(report, "xlsx")}"'})
