"""Wires the bookings package into the app: API routes, pages, patient join, outbox sender."""

from __future__ import annotations

from aiohttp import web

from server.bookings import api_bookings as ab
from server.bookings import api_catalogue as ac
from server.bookings import calendar_feed, join, openapi, outbox, pages
from server.bookings.errors import N_
from server.home import add_home_link
from server.staff import Role

API = "/api/v1"


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{API}/openapi.json", openapi.serve, name="bookings_openapi")
    r.add_get(f"{API}/centres", ac.list_centres, name="listCentres")
    r.add_get(f"{API}/services", ac.list_services, name="listServices")
    r.add_get(f"{API}/slots", ac.list_slots, name="listSlots")
    r.add_post(f"{API}/patients", ac.create_patient, name="createPatient")
    r.add_get(f"{API}/patients", ac.search_patients, name="searchPatients")
    r.add_get(f"{API}/patients/{{patient_id}}", ac.get_patient, name="getPatient")
    r.add_post(f"{API}/bookings", ab.create_booking, name="createBooking")
    r.add_get(f"{API}/bookings", ab.list_bookings, name="listBookings")
    r.add_get(f"{API}/bookings/{{booking_id}}", ab.get_booking, name="getBooking")
    r.add_post(f"{API}/bookings/{{booking_id}}/reschedule", ab.reschedule_booking,
               name="rescheduleBooking")
    r.add_post(f"{API}/bookings/{{booking_id}}/cancel", ab.cancel_booking, name="cancelBooking")
    r.add_post(f"{API}/bookings/{{booking_id}}/status", ab.set_booking_status,
               name="setBookingStatus")
    r.add_get(f"{API}/bookings/{{booking_id}}/fhir", ab.get_booking_fhir, name="getBookingFhir")

    r.add_get("/join", join.join_form, name="join_form")
    r.add_post("/join", join.join_submit, name="join_submit")
    # Before /join/{token}, which would otherwise take "status" for a token.
    r.add_get(join.STATUS_PATH, join.join_status, name="join_status")
    r.add_get("/join/{token}", join.join_link, name="join_link")
    r.add_get("/calendar/{token}.ics", calendar_feed.feed, name="calendar_feed")
    pages.setup_routes(app)
    app.cleanup_ctx.append(outbox.run_sender)

    add_home_link(app, (Role.COORDINATOR, Role.NURSE), N_("Centre calendar"), "/bookings/calendar")
    add_home_link(app, (Role.COORDINATOR,), N_("Availability"), "/bookings/availability")
    add_home_link(app, (Role.COORDINATOR, Role.NURSE, Role.GP, Role.PSYCHOLOGIST),
                  N_("Patients"), "/bookings/patients")
    add_home_link(app, (Role.COORDINATOR, Role.NURSE, Role.GP, Role.PSYCHOLOGIST),
                  N_("New booking"), "/bookings/new")
    add_home_link(app, (Role.GP, Role.PSYCHOLOGIST, Role.NURSE), N_("Today"), "/bookings/today")
    add_home_link(app, (Role.GP, Role.PSYCHOLOGIST, Role.NURSE), N_("My calendar feed"),
                  "/bookings/feed")
