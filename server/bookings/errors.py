"""Errors of bookings, in the one registry (``server.errors``), and how a refused booking
change (``model.BookingError``) becomes one of them."""

from __future__ import annotations

from server.bookings.model import BadTransition, BookingError, Clash, Invalid, OutsideHours
from server.errors import N_, ApiError, define, invalid, maps

# The clinician, the patient or the kiosk already has a live booking at that time.
CLINICIAN_BUSY = define("clinician_busy", 409,
                        N_("The clinician already has a booking at this time."))
PATIENT_BUSY = define("patient_busy", 409, N_("The patient already has a booking at this time."))
KIOSK_BUSY = define("kiosk_busy", 409, N_("The kiosk is already booked at this time."))
# FHIR lifecycle: e.g. a fulfilled booking cannot be cancelled.
BAD_STATUS_CHANGE = define("invalid_status_change", 409,
                           N_("This booking cannot change to that status."))
BOOKING_NOT_FOUND = define("booking_not_found", 404, N_("There is no such booking."))
PATIENT_NOT_FOUND = define("patient_not_found", 404, N_("There is no such patient."))
CENTRE_NOT_FOUND = define("centre_not_found", 404, N_("There is no such centre."))
DUPLICATE_PATIENT = define("duplicate_patient", 409,
                           N_("A patient with this codice fiscale is already registered."))
# Invitations staff act on (server/bookings/invitation_actions.py).
INVITATION_CLOSED = define(
    "invitation_closed", 409,
    N_("This appointment can no longer be joined: there is no invitation to send or print."))
NO_PHONE = define("patient_no_phone", 422, N_("The patient has no phone number."))
NO_EMAIL = define("patient_no_email", 422, N_("The patient has no e-mail address."))
NO_CODE = define("booking_no_code", 409,
                 N_("This booking has no join code: it is not a video consultation."))
# A reschedule to a time the clinician does not work (weekly hours, extra hours) or is away;
# a coordinator may still move it there, giving ``hours_reason``.
OUTSIDE_HOURS = define("outside_hours", 409,
                       N_("The clinician does not work at this time (outside their hours)."))
ON_LEAVE = define("clinician_on_leave", 409, N_("The clinician is away at this time (leave)."))
BAD_TOKEN = define("invalid_token", 401, N_("This access token is not valid."))

CLASH_KINDS = {"clinician": CLINICIAN_BUSY, "patient": PATIENT_BUSY, "kiosk": KIOSK_BUSY}
HOURS_KINDS = {"outside_hours": OUTSIDE_HOURS, "leave": ON_LEAVE}


@maps(BookingError)
def booking_error(exc: BookingError) -> ApiError:
    """The catalogued error for a refused booking change; a clash names what clashes. The
    remaining kind, ``NotFound``, is the booking that is not there."""
    if isinstance(exc, Clash):
        return ApiError(CLASH_KINDS[exc.what],
                        details={"clash": exc.what, "other_booking_id": exc.other_booking_id})
    if isinstance(exc, Invalid):
        return invalid(exc.problems)
    if isinstance(exc, OutsideHours):
        return ApiError(HOURS_KINDS[exc.reason],
                        details={"reason": exc.reason, "override": "hours_reason"})
    if isinstance(exc, BadTransition):
        return ApiError(BAD_STATUS_CHANGE, details={"from": exc.old, "to": exc.new})
    return ApiError(BOOKING_NOT_FOUND)
