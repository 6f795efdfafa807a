"""Plug-in point: the call pages' routes and the dashboard link on clinicians' home pages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import openapi
from server.calls import precall, views
from server.errors import N_
from server.home import add_home_link
from server.staff import Role

# Roles that hold or attend video consultations and so have a live dashboard.
DASHBOARD_ROLES = (Role.GP, Role.PSYCHOLOGIST, Role.NURSE)


def setup(app: web.Application) -> None:
    """Register the call pages (``server.app.FEATURES`` calls this)."""
    app.router.add_get("/consultation/{room_id}", views.consultation, name="consultation")
    app.router.add_get("/precall", views.precall, name="precall")
    app.router.add_get("/dashboard", views.dashboard, name="dashboard")
    openapi.route(app, openapi.Operation(
        "GET", "/precall/ice-servers", "precall_ice_servers",
        "STUN and TURN servers for the device check", answer=dict[str, Any],
        errors=(401, 410), tag="precall"), precall.ice_servers_view)
    add_home_link(app, DASHBOARD_ROLES, N_("Today's consultations"), "/dashboard")
