"""The bookings API's bodies, queries and answers as msgspec Structs: the handlers decode with
them (``server.validation``) and the OpenAPI document is made from them (``server.openapi``).
Constraints live in the types; rules that need the database or the caller stay in the
handlers and the workflow."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from server.bookings import paging, slots
from server.validation import Id, Instant, Text200, text

Mode = Literal["home_video", "kiosk_video", "in_person"]
# status.STATUSES (a test holds the two equal).
Status = Literal["proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                 "entered-in-error", "checked-in", "waitlist"]
# The changes setBookingStatus offers (api_bookings.STATUS_ACTIONS; cancel has its own).
StatusAction = Literal["checked-in", "arrived", "noshow", "fulfilled", "entered-in-error"]
Code = Annotated[str, text(100)]
# Coordinators only: why a booking starts in the past (refused otherwise).
PastReason = Annotated[str, text(500), Meta(
    description="coordinators only: why this booking starts in the past (a start in the past "
                "is refused otherwise); 10 to 500 characters")]
HoursReason = Annotated[str, text(500), Meta(
    description="coordinators only: why this booking moves outside its clinician's hours or "
                "into their leave (refused otherwise, 409 outside_hours or "
                "clinician_on_leave); 10 to 500 characters, recorded")]
# A contact field: empty means none.
Contact = Annotated[str, Meta(pattern=r"^([^\x00]*[^\s\x00][^\x00]*)?$")]


# Bodies.

class NewBookingBody(msgspec.Struct, kw_only=True):
    centre_id: Code
    service_code: Code
    mode: Mode
    patient_id: Id
    clinician_id: Id
    starts_at: Instant
    ends_at: Instant | None = None
    kiosk_id: Id | None = None
    nurse_id: Id | None = None
    patient_pick: Annotated[str, text(64), Meta(
        description="for a patient outside the caller's scope: the pick the booking form "
                    "gives for a patient found by the full codice fiscale or just "
                    "registered")] | None = None
    past_reason: PastReason | None = None


class RescheduleBody(msgspec.Struct, kw_only=True):
    starts_at: Instant
    ends_at: Instant | None = None
    past_reason: PastReason | None = None
    hours_reason: HoursReason | None = None


class CancelBody(msgspec.Struct, kw_only=True):
    reason: Annotated[str, text(500)] | None = None


class StatusChangeBody(msgspec.Struct, kw_only=True):
    status: StatusAction


class NewPatientBody(msgspec.Struct, kw_only=True):
    given_name: Text200
    family_name: Text200
    date_of_birth: Annotated[date, Meta(description="YYYY-MM-DD, years 1900-2100")]
    phone: Annotated[Contact, Meta(max_length=30)] | None = None
    email: Annotated[Contact, Meta(max_length=254)] | None = None
    language: Annotated[str, Meta(max_length=10)] = "it"
    codice_fiscale: Annotated[Contact, Meta(max_length=16)] | None = None
    home_centre_id: Annotated[Contact, Meta(max_length=100)] | None = None


# Queries.

class SlotsQuery(msgspec.Struct, kw_only=True):
    centre: Code
    service: Code
    date: Annotated[date, Meta(description="first day (Europe/Rome)")]
    days: Annotated[int, Meta(ge=1, le=slots.MAX_DAYS)] = 1
    clinician: Id | None = None
    patient: Id | None = None


class BookingsQuery(msgspec.Struct, kw_only=True):
    centre: Code | None = None
    clinician: Id | None = None
    day: date | None = None
    status: Status | None = None
    limit: Annotated[int, Meta(ge=1, le=paging.MAX_LIMIT,
                               description="bookings per page")] = paging.DEFAULT_LIMIT
    cursor: Annotated[str, Meta(min_length=1, max_length=paging.MAX_CURSOR_CHARS,
                                pattern="^[A-Za-z0-9_-]+$",
                                description="next_cursor of the previous page")] | None = None


class PatientSearchQuery(msgspec.Struct, kw_only=True):
    q: Annotated[str, Meta(max_length=100)] = ""


# Answers (what the handlers' JSON holds).

class Resource(msgspec.Struct):
    id: int
    name: str


class Centre(msgspec.Struct):
    id: str
    name: str
    address: str
    phone: str | None
    kiosks: list[Resource]
    rooms: list[Resource]


class CentreList(msgspec.Struct):
    centres: list[Centre]


class Service(msgspec.Struct):
    code: str
    name: str
    default_minutes: int
    roles: list[str]
    modes: list[Mode]
    sensitive: bool


class ServiceList(msgspec.Struct):
    services: list[Service]


class Slot(msgspec.Struct):
    clinician_id: int
    starts_at: datetime
    ends_at: datetime


class SlotList(msgspec.Struct):
    slots: list[Slot]


class Patient(msgspec.Struct):
    id: int
    given_name: str
    family_name: str
    date_of_birth: date
    phone: str | None
    email: str | None
    language: str
    codice_fiscale: str | None
    home_centre_id: str | None


class PatientList(msgspec.Struct):
    patients: list[Patient]


class PatientBooking(msgspec.Struct):
    id: int
    centre_id: str
    service_code: str
    mode: Mode
    clinician_id: int
    status: Status
    starts_at: datetime
    ends_at: datetime


class PatientWithBookings(Patient):
    upcoming: list[PatientBooking]
    past: list[PatientBooking]


class Consultation(msgspec.Struct):
    id: int
    room_id: str
    state: Literal["scheduled", "waiting", "in_call", "ended"]
    join_opens_at: datetime
    join_closes_at: datetime


class Booking(msgspec.Struct):
    id: int
    centre_id: str
    service_code: str
    mode: Mode
    patient_id: int
    clinician_id: int
    kiosk_id: int | None
    nurse_id: int | None
    starts_at: datetime
    ends_at: datetime
    status: Status
    cancel_reason: str | None
    consultation: Consultation | None


class BookingPage(msgspec.Struct):
    bookings: Annotated[list[Booking], Meta(max_length=paging.MAX_LIMIT)]
    next_cursor: Annotated[str | None, Meta(
        description="pass as cursor for the next page; null on the last")]


class FhirAppointment(msgspec.Struct):
    """A FHIR R4 Appointment (more fields than these two)."""

    resourceType: Literal["Appointment"]
    status: str
