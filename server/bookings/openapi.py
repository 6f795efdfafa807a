"""The OpenAPI 3 description of ``/api/v1/``, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.bookings import paging, slots
from server.bookings.api_bookings import STATUS_ACTIONS
from server.consultations import status

ERROR = {"$ref": "#/components/responses/Error"}
ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
INSTANT = {"type": "string", "format": "date-time",
           "description": "ISO 8601 with offset; shown in Europe/Rome"}
NULLABLE_INSTANT = {"type": "string", "format": "date-time", "nullable": True}
CENTRE_CODE = {"type": "string", "minLength": 1, "maxLength": 100}
PAST_REASON = {"type": "string", "nullable": True, "minLength": 10, "maxLength": 500,
               "description": "coordinators only: why this booking starts in the past (a "
                             "start in the past is refused otherwise)"}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def _q(name: str, schema: dict[str, Any], required: bool = False,
       description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        out["description"] = description
    return out


def _op(op_id: str, summary: str, ok: int, ok_schema: dict[str, Any], *,
        params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
        errors: tuple[int, ...] = (401, 403)) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary,
                          "responses": {str(ok): {"description": "OK", "content": {
                              "application/json": {"schema": ok_schema}}}}}
    for code in (400, 422, *errors):
        op["responses"][str(code)] = ERROR
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    return op


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "array", "items": _ref(item)}}}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": "object"}}}}},
    "Centre": {"type": "object", "required": ["id", "name", "address", "kiosks"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "address": {"type": "string"},
        "phone": {"type": "string", "nullable": True},
        "kiosks": {"type": "array", "items": _ref("Resource")},
        "rooms": {"type": "array", "items": _ref("Resource")}}},
    "Resource": {"type": "object", "required": ["id", "name"],
                 "properties": {"id": ID, "name": {"type": "string"}}},
    "Service": {"type": "object",
                "required": ["code", "name", "default_minutes", "roles", "modes", "sensitive"],
                "properties": {
                    "code": {"type": "string"}, "name": {"type": "string"},
                    "default_minutes": {"type": "integer"},
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "modes": {"type": "array", "items": _ref("Mode")},
                    "sensitive": {"type": "boolean"}}},
    "Mode": {"type": "string", "enum": ["home_video", "kiosk_video", "in_person"]},
    "Status": {"type": "string", "enum": list(status.STATUSES)},
    "Slot": {"type": "object", "required": ["clinician_id", "starts_at", "ends_at"],
             "properties": {"clinician_id": ID, "starts_at": INSTANT, "ends_at": INSTANT}},
    "NewPatient": {"type": "object", "required": ["given_name", "family_name", "date_of_birth"],
                   "properties": {
                       "given_name": {"type": "string", "minLength": 1, "maxLength": 200},
                       "family_name": {"type": "string", "minLength": 1, "maxLength": 200},
                       "date_of_birth": {"type": "string", "format": "date"},
                       "phone": {"type": "string", "nullable": True},
                       "email": {"type": "string", "nullable": True},
                       "language": {"type": "string"},
                       "codice_fiscale": {"type": "string", "nullable": True},
                       "home_centre_id": {"type": "string", "nullable": True}}},
    "Patient": {"allOf": [_ref("NewPatient"), {"type": "object", "required": ["id"],
                                                "properties": {"id": ID}}]},
    "PatientWithBookings": {"allOf": [_ref("Patient"), {"type": "object", "properties": {
        "upcoming": {"type": "array", "items": {"type": "object"}},
        "past": {"type": "array", "items": {"type": "object"}}}}]},
    "NewBooking": {"type": "object", "required": ["centre_id", "service_code", "mode",
                                                  "patient_id", "clinician_id", "starts_at"],
                   "properties": {
                       "centre_id": CENTRE_CODE, "service_code": {"type": "string"},
                       "mode": _ref("Mode"), "patient_id": ID, "clinician_id": ID,
                       "starts_at": INSTANT, "ends_at": NULLABLE_INSTANT,
                       "kiosk_id": {**ID, "nullable": True},
                       "nurse_id": {**ID, "nullable": True},
                       "patient_pick": {
                           "type": "string", "nullable": True, "minLength": 1, "maxLength": 64,
                           "description": "for a patient outside the caller's scope: the pick "
                                          "the booking form gives for a patient found by the "
                                          "full codice fiscale or just registered"},
                       "past_reason": PAST_REASON}},
    "Consultation": {"type": "object", "nullable": True, "properties": {
        "id": ID, "room_id": {"type": "string"},
        "state": {"type": "string", "enum": ["scheduled", "waiting", "in_call", "ended"]},
        "join_opens_at": INSTANT, "join_closes_at": INSTANT}},
    "Booking": {"type": "object",
                "required": ["id", "centre_id", "service_code", "mode", "patient_id",
                             "clinician_id", "starts_at", "ends_at", "status"],
                "properties": {
                    "id": ID, "centre_id": {"type": "string"},
                    "service_code": {"type": "string"}, "mode": _ref("Mode"),
                    "patient_id": ID, "clinician_id": ID,
                    "kiosk_id": {**ID, "nullable": True}, "nurse_id": {**ID, "nullable": True},
                    "starts_at": INSTANT, "ends_at": INSTANT, "status": _ref("Status"),
                    "cancel_reason": {"type": "string", "nullable": True},
                    "consultation": _ref("Consultation")}},
    "BookingPage": {"type": "object", "required": ["bookings", "next_cursor"], "properties": {
        "bookings": {"type": "array", "items": _ref("Booking"), "maxItems": paging.MAX_LIMIT},
        "next_cursor": {"type": "string", "nullable": True,
                        "description": "pass as cursor for the next page; null on the last"}}},
    "Reschedule": {"type": "object", "required": ["starts_at"],
                   "properties": {"starts_at": INSTANT, "ends_at": NULLABLE_INSTANT,
                                  "past_reason": PAST_REASON}},
    "Cancel": {"type": "object", "properties": {
        "reason": {"type": "string", "maxLength": 500, "nullable": True}}},
    "StatusChange": {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string", "enum": sorted(STATUS_ACTIONS)}}},
    "FhirAppointment": {"type": "object", "required": ["resourceType", "status"],
                        "properties": {"resourceType": {"type": "string",
                                                        "enum": ["Appointment"]},
                                       "status": {"type": "string"}}},
}

BOOKING_ID = [_path_id("booking_id")]


def _fhir(op: dict[str, Any]) -> dict[str, Any]:
    """FHIR resources are served as ``application/fhir+json``."""
    ok = op["responses"]["200"]
    ok["content"] = {"application/fhir+json": ok["content"]["application/json"]}
    return op


def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Casa bookings API", "version": "1",
                 "description": "Centres, services, slots, patients and bookings. Errors are "
                                "JSON with a stable code and a human message."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/centres": {"get": _op("listCentres", "Centres with their kiosks and rooms", 200,
                                    _list("centres", "Centre"))},
            "/services": {"get": _op("listServices", "The services and how they are given",
                                     200, _list("services", "Service"))},
            "/slots": {"get": _op("listSlots", "Free slots of a service at a centre", 200,
                                  _list("slots", "Slot"), params=[
                                      _q("centre", CENTRE_CODE, True),
                                      _q("service", {"type": "string", "minLength": 1,
                                                     "maxLength": 100}, True),
                                      _q("date", {"type": "string", "format": "date"}, True,
                                         "first day (Europe/Rome)"),
                                      _q("days", {"type": "integer", "minimum": 1,
                                                  "maximum": slots.MAX_DAYS}),
                                      _q("clinician", ID), _q("patient", ID)])},
            "/patients": {
                "post": _op("createPatient", "Register a patient", 201, _ref("Patient"),
                            body=_ref("NewPatient"), errors=(401, 403, 409)),
                "get": _op("searchPatients", "Find patients by name or codice fiscale", 200,
                           _list("patients", "Patient"),
                           params=[_q("q", {"type": "string", "maxLength": 100})])},
            "/patients/{patient_id}": {"get": _op(
                "getPatient", "A patient with past and upcoming bookings", 200,
                _ref("PatientWithBookings"), params=[_path_id("patient_id")],
                errors=(401, 403, 404))},
            "/bookings": {
                "post": _op("createBooking", "Book a slot", 201, _ref("Booking"),
                            body=_ref("NewBooking"), errors=(401, 403, 404, 409)),
                "get": _op("listBookings", "Bookings by centre, clinician, day and status, "
                           "a page at a time in (start, id) order", 200, _ref("BookingPage"),
                           params=[
                               _q("centre", CENTRE_CODE), _q("clinician", ID),
                               _q("day", {"type": "string", "format": "date"}),
                               _q("status", _ref("Status")),
                               _q("limit", {"type": "integer", "minimum": 1,
                                            "maximum": paging.MAX_LIMIT,
                                            "default": paging.DEFAULT_LIMIT},
                                  description="bookings per page"),
                               _q("cursor", {"type": "string", "minLength": 1,
                                             "maxLength": paging.MAX_CURSOR_CHARS,
                                             "pattern": "^[A-Za-z0-9_-]+$"},
                                  description="next_cursor of the previous page")])},
            "/bookings/{booking_id}": {"get": _op("getBooking", "One booking", 200,
                                                  _ref("Booking"), params=BOOKING_ID,
                                                  errors=(401, 403, 404))},
            "/bookings/{booking_id}/reschedule": {"post": _op(
                "rescheduleBooking", "Move a booking", 200, _ref("Booking"), params=BOOKING_ID,
                body=_ref("Reschedule"), errors=(401, 403, 404, 409))},
            "/bookings/{booking_id}/cancel": {"post": _op(
                "cancelBooking", "Cancel a booking", 200, _ref("Booking"), params=BOOKING_ID,
                body=_ref("Cancel"), errors=(401, 403, 404, 409))},
            "/bookings/{booking_id}/status": {"post": _op(
                "setBookingStatus", "Check in, no-show, fulfilled", 200, _ref("Booking"),
                params=BOOKING_ID, body=_ref("StatusChange"), errors=(401, 403, 404, 409))},
            "/bookings/{booking_id}/fhir": {"get": _fhir(_op(
                "getBookingFhir", "The booking as a FHIR R4 Appointment", 200,
                _ref("FhirAppointment"), params=BOOKING_ID, errors=(401, 403, 404)))},
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "casa token create --user EMAIL"},
                "session": {"type": "apiKey", "in": "cookie", "name": "casa_session"}},
            "responses": {"Error": {"description": "A catalogued error", "content": {
                "application/json": {"schema": _ref("Error")}}}},
            "schemas": SCHEMAS,
        },
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document())
