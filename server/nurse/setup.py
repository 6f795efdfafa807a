"""The nurse console's routes and its link on nurses' and coordinators' home pages."""

from __future__ import annotations

from aiohttp import web

from server.errors import N_
from server.home import add_home_link
from server.nurse import views
from server.staff import Role

BOOKING = "/nurse/bookings/{booking_id:\\d{1,18}}"


def setup(app: web.Application) -> None:
    """Register the console (``server.app.create_app`` calls this after signalling)."""
    r = app.router
    r.add_get("/nurse", views.console_page, name="nurse_console")
    r.add_get("/nurse/state", views.state, name="nurse_state")
    r.add_get(BOOKING, views.booking_page, name="nurse_booking")
    r.add_post(BOOKING + "/check-in", views.check_in, name="nurse_check_in")
    r.add_post(BOOKING + "/present", views.present, name="nurse_present")
    r.add_post(BOOKING + "/leave", views.leave, name="nurse_leave")
    r.add_post(BOOKING + "/handover", views.hand_over, name="nurse_handover")
    r.add_post(BOOKING + "/measurements", views.measurements, name="nurse_measurements")
    # Nurses have the console as their home page's first button (home_nurse.html).
    add_home_link(app, (Role.COORDINATOR,), N_("Kiosk visits today"), "/nurse")
