"""Error kinds of the bookings API, in the foundation's catalogue (stable snake_case codes)."""

from __future__ import annotations

from server.errors import CATALOGUE, ErrorKind


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


def _kind(code: str, status: int, message: str) -> ErrorKind:
    kind = ErrorKind(code, status, message)
    CATALOGUE.setdefault(code, kind)
    return kind


# The clinician, the patient or the kiosk already has a live booking at that time.
CLINICIAN_BUSY = _kind("clinician_busy", 409,
                       N_("The clinician already has a booking at this time."))
PATIENT_BUSY = _kind("patient_busy", 409, N_("The patient already has a booking at this time."))
KIOSK_BUSY = _kind("kiosk_busy", 409, N_("The kiosk is already booked at this time."))
# FHIR lifecycle: e.g. a fulfilled booking cannot be cancelled.
BAD_STATUS_CHANGE = _kind("invalid_status_change", 409,
                          N_("This booking cannot change to that status."))
BOOKING_NOT_FOUND = _kind("booking_not_found", 404, N_("There is no such booking."))
PATIENT_NOT_FOUND = _kind("patient_not_found", 404, N_("There is no such patient."))
CENTRE_NOT_FOUND = _kind("centre_not_found", 404, N_("There is no such centre."))
DUPLICATE_PATIENT = _kind("duplicate_patient", 409,
                          N_("A patient with this codice fiscale is already registered."))
BAD_TOKEN = _kind("invalid_token", 401, N_("This access token is not valid."))

CLASH_KINDS = {"clinician": CLINICIAN_BUSY, "patient": PATIENT_BUSY, "kiosk": KIOSK_BUSY}
