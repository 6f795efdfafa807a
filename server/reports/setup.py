"""The activity report's routes, its API operation and its link on coordinators' and admins'
home pages."""

from __future__ import annotations

from aiohttp import web

from server import openapi
from server.errors import N_
from server.home import add_home_link
from server.reports import schemas, service, views

OPERATION = openapi.Operation(
    "GET", "/reports/activity", "getActivityReport",
    "Activity report for a period by centre, service, mode and month (format=csv: the same "
    "cells as CSV); counts under 5 withheld", answer=schemas.ActivityReport,
    query=schemas.ReportQuery, errors=(401, 403))


def setup(app: web.Application) -> None:
    openapi.route(app, OPERATION, views.api_report)
    app.router.add_get("/reports/activity", views.page, name="reports_activity")
    app.router.add_get("/reports/activity.{ext:csv|xlsx}", views.download,
                       name="reports_activity_download")
    add_home_link(app, service.ROLES, N_("Activity report"), "/reports/activity")
