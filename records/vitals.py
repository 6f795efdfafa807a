"""What a monitoring reading may hold: each measurement's parts, their UCUM units, the values a
person can plausibly have (anything outside is a typing slip, refused with the range named),
and the LOINC codes of their FHIR Observations (vital-signs profile).

A reading's content is ``{"values": {part: number}, "text": str}``: numbers for every
measurement but ``symptoms``, whose words are ``text``. ``parse`` checks it and names each
field it refuses (``records.errors.InvalidContent``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from records.errors import InvalidContent

SYMPTOMS_MAX_CHARS = 500


@dataclass(frozen=True)
class Part:
    name: str
    unit: str          # UCUM code
    low: float         # plausible range, inclusive
    high: float
    decimals: int
    loinc: tuple[str, str]


@dataclass(frozen=True)
class Measurement:
    kind: str
    parts: tuple[Part, ...]
    # The FHIR Observation's own code when it has parts (the blood-pressure panel).
    panel: tuple[str, str] | None = None


MEASUREMENTS: dict[str, Measurement] = {m.kind: m for m in (
    Measurement("blood_pressure", (
        Part("systolic", "mm[Hg]", 50, 260, 0, ("8480-6", "Systolic blood pressure")),
        Part("diastolic", "mm[Hg]", 30, 160, 0, ("8462-4", "Diastolic blood pressure"))),
        panel=("85354-9", "Blood pressure panel with all children optional")),
    Measurement("heart_rate", (Part("heart_rate", "/min", 25, 250, 0,
                                    ("8867-4", "Heart rate")),)),
    Measurement("spo2", (Part("spo2", "%", 50, 100, 0, (
        "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")),)),
    Measurement("glucose", (Part("glucose", "mg/dL", 20, 600, 0, (
        "2339-0", "Glucose [Mass/volume] in Blood")),)),
    Measurement("weight", (Part("weight", "kg", 2, 350, 1, ("29463-7", "Body weight")),)),
    Measurement("temperature", (Part("temperature", "Cel", 33, 43, 1,
                                     ("8310-5", "Body temperature")),)),
    Measurement("symptoms", ()),
)}
KINDS = tuple(MEASUREMENTS)
PARTS: dict[str, Part] = {p.name: p for m in MEASUREMENTS.values() for p in m.parts}


@dataclass(frozen=True)
class Reading:
    """A reading's content, once opened."""

    values: dict[str, float]
    text: str = ""

    def to_bytes(self) -> bytes:
        return json.dumps({"values": self.values, "text": self.text},
                          separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def from_bytes(raw: bytes) -> Reading:
        data = json.loads(raw)
        return Reading({k: float(v) for k, v in data.get("values", {}).items()},
                       str(data.get("text", "")))


def parse(kind: str, values: dict[str, Any] | None, text: str | None) -> Reading:
    """A reading of ``kind`` from what a form or the API sent; ``InvalidContent`` names every
    field refused (``values.<part>``, ``text``)."""
    m = MEASUREMENTS.get(kind)
    if m is None:
        raise InvalidContent({"measurement": "unknown measurement"})
    bad: dict[str, str] = {}
    out: dict[str, float] = {}
    given = values or {}
    for name in given.keys() - {p.name for p in m.parts}:
        bad[f"values.{name}"] = "not part of this measurement"
    for p in m.parts:
        raw = given.get(p.name)
        try:
            value = float(str(raw).replace(",", ".")) if raw not in (None, "") else None
        except ValueError:
            value = math.nan
        if value is None:
            bad[f"values.{p.name}"] = "required"
        elif not (math.isfinite(value) and p.low <= value <= p.high):
            bad[f"values.{p.name}"] = f"between {p.low:g} and {p.high:g} {p.unit}"
        else:
            out[p.name] = round(value, p.decimals) if p.decimals else float(round(value))
    words = (text or "").strip()
    if kind == "symptoms" and not words:
        bad["text"] = "required"
    elif len(words) > SYMPTOMS_MAX_CHARS:
        bad["text"] = f"at most {SYMPTOMS_MAX_CHARS} characters"
    if bad:
        raise InvalidContent(bad)
    return Reading(out, words)
