"""Wires the bookings package into the app: API routes, pages, patient join, outbox sender."""

from __future__ import annotations

from aiohttp import web

from server import openapi
from server.bookings import api_bookings as ab
from server.bookings import api_catalogue as ac
from server.bookings import calendar_feed, join, outbox, pages, reminders, schemas
from server.errors import N_
from server.home import add_home_link
from server.staff import Role

Op = openapi.Operation
# The bookings API (under openapi.PREFIX): each route and its entry in the OpenAPI document.
API_ROUTES: list[tuple[openapi.Operation, openapi.Handler]] = [
    (Op("GET", "/centres", "listCentres", "Centres with their kiosks and rooms",
        answer=schemas.CentreList), ac.list_centres),
    (Op("GET", "/services", "listServices", "The services and how they are given",
        answer=schemas.ServiceList), ac.list_services),
    (Op("GET", "/slots", "listSlots", "Free slots of a service at a centre",
        answer=schemas.SlotList, query=schemas.SlotsQuery), ac.list_slots),
    (Op("POST", "/patients", "createPatient", "Register a patient", 201,
        answer=schemas.Patient, body=schemas.NewPatientBody, errors=(401, 403, 409)),
     ac.create_patient),
    (Op("GET", "/patients", "searchPatients", "Find patients by name or codice fiscale",
        answer=schemas.PatientList, query=schemas.PatientSearchQuery), ac.search_patients),
    (Op("GET", "/patients/{patient_id}", "getPatient",
        "A patient with past and upcoming bookings", answer=schemas.PatientWithBookings,
        errors=(401, 403, 404)), ac.get_patient),
    (Op("POST", "/bookings", "createBooking", "Book a slot", 201, answer=schemas.Booking,
        body=schemas.NewBookingBody, errors=(401, 403, 404, 409)), ab.create_booking),
    (Op("GET", "/bookings", "listBookings", "Bookings by centre, clinician, day and status, "
        "a page at a time in (start, id) order", answer=schemas.BookingPage,
        query=schemas.BookingsQuery), ab.list_bookings),
    (Op("GET", "/bookings/{booking_id}", "getBooking", "One booking", answer=schemas.Booking,
        errors=(401, 403, 404)), ab.get_booking),
    (Op("POST", "/bookings/{booking_id}/reschedule", "rescheduleBooking", "Move a booking",
        answer=schemas.Booking, body=schemas.RescheduleBody, errors=(401, 403, 404, 409)),
     ab.reschedule_booking),
    (Op("POST", "/bookings/{booking_id}/cancel", "cancelBooking", "Cancel a booking",
        answer=schemas.Booking, body=schemas.CancelBody, body_required=False,
        errors=(401, 403, 404, 409)), ab.cancel_booking),
    (Op("POST", "/bookings/{booking_id}/status", "setBookingStatus",
        "Check in, no-show, fulfilled", answer=schemas.Booking, body=schemas.StatusChangeBody,
        errors=(401, 403, 404, 409)), ab.set_booking_status),
    (Op("GET", "/bookings/{booking_id}/fhir", "getBookingFhir",
        "The booking as a FHIR R4 Appointment", answer=schemas.FhirAppointment,
        errors=(401, 403, 404), media_type="application/fhir+json"), ab.get_booking_fhir),
]


def setup(app: web.Application) -> None:
    r = app.router
    for op, handler in API_ROUTES:
        openapi.route(app, op, handler)

    r.add_get("/join", join.join_form, name="join_form")
    r.add_post("/join", join.join_submit, name="join_submit")
    # Before /join/{token}, which would otherwise take "status" for a token.
    r.add_get(join.STATUS_PATH, join.join_status, name="join_status")
    r.add_get("/join/done", join.join_done, name="join_done")
    r.add_get("/join/{token}", join.join_link, name="join_link")
    r.add_get("/calendar/{token}.ics", calendar_feed.feed, name="calendar_feed")
    pages.setup_routes(app)
    app.cleanup_ctx.append(outbox.run_sender)
    app.cleanup_ctx.append(reminders.run)

    add_home_link(app, (Role.COORDINATOR, Role.NURSE), N_("Centre calendar"), "/bookings/calendar")
    add_home_link(app, (Role.COORDINATOR,), N_("Availability"), "/bookings/availability")
    add_home_link(app, (Role.COORDINATOR, Role.NURSE, Role.GP, Role.PSYCHOLOGIST),
                  N_("Patients"), "/bookings/patients")
    add_home_link(app, (Role.COORDINATOR, Role.NURSE, Role.GP, Role.PSYCHOLOGIST),
                  N_("New booking"), "/bookings/new")
    add_home_link(app, (Role.GP, Role.PSYCHOLOGIST, Role.NURSE), N_("My bookings by day"),
                  "/bookings/today")
    add_home_link(app, (Role.GP, Role.PSYCHOLOGIST, Role.NURSE), N_("My calendar feed"),
                  "/bookings/feed")
