"""What a note version says: free text, structured fields and the nurse's measurements.

Validated here, serialised to JSON and only then encrypted; nothing in this module touches
the database. Units are UCUM codes (they go into FHIR as they are); ranges are what is
physiologically plausible, to catch typing slips (72 typed as 720), not clinical alarms.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from records.errors import InvalidContent

# A long consultation note is a few thousand characters; this bounds one request's work.
MAX_FIELD_CHARS = 20_000
TEXT_FIELDS = ("reason", "assessment", "plan", "text", "summary")

# kind -> unit -> (lowest, highest) plausible value. The first unit is the default.
MEASURES: dict[str, dict[str, tuple[float, float]]] = {
    "bp_systolic": {"mm[Hg]": (60, 260)},
    "bp_diastolic": {"mm[Hg]": (30, 160)},
    "heart_rate": {"/min": (20, 250)},
    "spo2": {"%": (50, 100)},
    "temperature": {"Cel": (30, 44)},
    "glucose": {"mg/dL": (20, 800), "mmol/L": (1.1, 44.4)},
    "weight": {"kg": (1, 350)},
}


@dataclass(frozen=True)
class Measurement:
    kind: str
    value: float
    unit: str


@dataclass(frozen=True)
class NoteContent:
    """The plaintext of one note version."""

    reason: str = ""
    assessment: str = ""
    plan: str = ""
    text: str = ""
    summary: str = ""  # plain language, for the patient
    measurements: tuple[Measurement, ...] = field(default=())
    amend_reason: str = ""  # why this version corrects the one it amends

    def to_bytes(self) -> bytes:
        body = {f: getattr(self, f) for f in (*TEXT_FIELDS, "amend_reason")}
        body["measurements"] = {m.kind: {"value": m.value, "unit": m.unit}
                                for m in self.measurements}
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> NoteContent:
        return parse(json.loads(raw))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.to_bytes())
        return out

    def measurement(self, kind: str) -> Measurement | None:
        return next((m for m in self.measurements if m.kind == kind), None)


def parse(data: object) -> NoteContent:
    """Validate untrusted input (a JSON object); ``InvalidContent`` lists every problem."""
    if not isinstance(data, dict):
        raise InvalidContent({"content": "must be an object"})
    problems: dict[str, str] = {}
    texts: dict[str, str] = {}
    for name in (*TEXT_FIELDS, "amend_reason"):
        value = data.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            problems[name] = "must be text"
        elif len(value) > MAX_FIELD_CHARS:
            problems[name] = f"at most {MAX_FIELD_CHARS} characters"
        else:
            texts[name] = value
    measurements = _measurements(data.get("measurements") or {}, problems)
    if problems:
        raise InvalidContent(problems)
    return NoteContent(measurements=measurements, **texts)


def _measurements(raw: object, problems: dict[str, str]) -> tuple[Measurement, ...]:
    if not isinstance(raw, dict):
        problems["measurements"] = "must be an object"
        return ()
    out: list[Measurement] = []
    for kind, item in raw.items():
        key = f"measurements.{kind}"
        if kind not in MEASURES:
            problems[key] = "unknown measurement"
            continue
        if item is None or item == "" or (isinstance(item, dict) and item.get("value") in
                                          (None, "")):
            continue  # an empty field in the form: not measured
        if not isinstance(item, dict):
            item = {"value": item}
        units = MEASURES[kind]
        unit = item.get("unit") or next(iter(units))
        if unit not in units:
            problems[key] = "unit must be one of " + ", ".join(units)
            continue
        try:
            value = float(str(item["value"]).replace(",", "."))
        except (TypeError, ValueError):
            problems[key] = "must be a number"
            continue
        lo, hi = units[unit]
        if not math.isfinite(value) or not lo <= value <= hi:
            problems[key] = f"must be between {lo:g} and {hi:g} {unit}"
            continue
        out.append(Measurement(kind, value, unit))
    order = list(MEASURES)
    out.sort(key=lambda m: order.index(m.kind))  # shown in the form's order, not the JSON's
    kinds = {m.kind for m in out}
    if ("bp_systolic" in kinds) != ("bp_diastolic" in kinds):
        problems["measurements.bp"] = "give both systolic and diastolic pressure"
    else:
        sys_ = next((m.value for m in out if m.kind == "bp_systolic"), None)
        dia = next((m.value for m in out if m.kind == "bp_diastolic"), None)
        if sys_ is not None and dia is not None and sys_ <= dia:
            problems["measurements.bp"] = "systolic must be higher than diastolic"
    return tuple(out)
