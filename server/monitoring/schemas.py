"""The monitoring API's bodies, queries and answers as msgspec Structs (``server.validation``
decodes with them, ``server.openapi`` documents them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from server.validation import Id

Condition = Literal["hypertension", "diabetes", "heart_failure", "copd"]
Kind = Literal["blood_pressure", "heart_rate", "spo2", "glucose", "weight", "temperature",
               "symptoms"]
Limits = dict[str, Annotated[float, Meta(ge=0, le=1000)] | None]
Thresholds = Annotated[dict[str, Limits], Meta(description=(
    "per part (systolic, diastolic, heart_rate, spo2, glucose, weight, temperature): "
    "{low, high}; a part given replaces its default, null removes a limit"))]
Values = Annotated[dict[str, float], Meta(description=(
    "blood_pressure: systolic, diastolic (mm[Hg]); heart_rate (/min); spo2 (%); glucose "
    "(mg/dL); weight (kg); temperature (Cel)"))]


class NewPlanBody(msgspec.Struct, kw_only=True):
    patient_id: Id
    conditions: Annotated[list[Condition], Meta(max_length=4)] = []
    measurements: Annotated[list[Kind], Meta(max_length=7)] | None = None
    every_hours: Annotated[int, Meta(ge=4, le=24 * 28)] | None = None
    tolerance_hours: Annotated[int, Meta(ge=1, le=24 * 14)] | None = None
    thresholds: Thresholds | None = None
    ends_on: date


class ReadingBody(msgspec.Struct, kw_only=True):
    measurement: Kind
    values: Values | None = None
    text: Annotated[str, Meta(max_length=500)] | None = None
    measured_at: datetime | None = None
    source: Literal["nurse", "kiosk", "device", "api"] = "api"


class ReadingsQuery(msgspec.Struct, kw_only=True):
    measurement: Kind | None = None
    since: datetime | None = None


class AlertsQuery(msgspec.Struct, kw_only=True):
    state: Literal["open", "acknowledged", "to_call", "escalated"] | None = None


class AlertStateBody(msgspec.Struct, kw_only=True):
    state: Literal["acknowledged", "to_call", "escalated"] = "acknowledged"


class Plan(msgspec.Struct):
    id: int
    patient_id: int
    created_by: int
    conditions: list[str]
    measurements: list[str]
    every_hours: int
    tolerance_hours: int
    thresholds: dict[str, dict[str, float]]
    starts_at: str
    ends_at: str
    ended_at: str | None


class PlanCreated(msgspec.Struct):
    plan: Plan
    # The patient's personal link, shown once (only its hash is kept).
    link: str


class Reading(msgspec.Struct):
    id: int
    plan_id: int
    measurement: str
    measured_at: str
    source: str
    out_of_range: bool
    erased: bool
    values: dict[str, float] | None
    text: str | None


class ReadingList(msgspec.Struct):
    readings: list[Reading]


class ReadingStored(msgspec.Struct):
    id: int
    out_of_range: bool
    alerts: list[int]


class Alert(msgspec.Struct):
    id: int
    plan_id: int
    patient_id: int
    kind: Literal["out_of_range", "missed"]
    measurement: str
    reading_id: int | None
    due_at: str | None
    raised_at: str
    state: str
    state_at: str | None


class AlertList(msgspec.Struct):
    alerts: list[Alert]


class FhirBundle(msgspec.Struct):
    """A FHIR R4 Bundle (searchset) of vital-signs Observations."""

    resourceType: Literal["Bundle"]
    type: str
    total: int
    entry: list[dict[str, Any]]
