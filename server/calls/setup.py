"""The call pages' routes and the dashboard link on clinicians' home pages."""

from __future__ import annotations

from aiohttp import web

from server.bookings import join
from server.calls import views
from server.errors import N_
from server.home import add_home_link
from server.staff import Role

# Roles that hold or attend video consultations and so have a live dashboard.
DASHBOARD_ROLES = (Role.GP, Role.PSYCHOLOGIST, Role.NURSE)


def setup(app: web.Application) -> None:
    """Register the call pages (``server.app.create_app`` calls this)."""
    app.router.add_get("/consultation/{room_id}", views.consultation, name="consultation")
    # The invitation link (server.bookings.join) answers with the patient's page itself.
    app[join.PATIENT_PAGE] = views.patient_page
    app.router.add_get("/precall", views.precall, name="precall")
    app.router.add_get("/away", views.away, name="away")
    app.router.add_get("/dashboard", views.dashboard, name="dashboard")
    add_home_link(app, DASHBOARD_ROLES, N_("Today's consultations"), "/dashboard")
