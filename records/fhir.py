"""A patient's record as a FHIR R4 ``Bundle`` (type collection): the Patient, one
``Encounter`` (class VR, virtual) per consultation, a ``Composition`` per signed note version
and an ``Observation`` per measurement. Only notes the exporting clinician may read are in it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from records import vitals
from records.content import Measurement, NoteContent
from records.readings import Stored
from records.service import NoteView
from server.patients import Patient

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# LOINC codes of the nurse's measurements.
LOINC_CODES: dict[str, tuple[str, str]] = {
    "heart_rate": ("8867-4", "Heart rate"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    "temperature": ("8310-5", "Body temperature"),
    "glucose": ("2339-0", "Glucose [Mass/volume] in Blood"),
    "weight": ("29463-7", "Body weight"),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_PARTS = {"bp_systolic": ("8480-6", "Systolic blood pressure"),
            "bp_diastolic": ("8462-4", "Diastolic blood pressure")}
# Consultation note (LOINC 11488-4) for GP and nurse notes and psychological/psychiatric ones.
NOTE_TYPE = ("11488-4", "Consult note")
SECTIONS = (("reason", "29299-5", "Reason for visit"), ("assessment", "51848-0", "Assessment"),
            ("plan", "18776-5", "Plan of care"), ("text", "61150-9", "Subjective narrative"))


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _quantity(m: Measurement) -> dict[str, Any]:
    return {"value": m.value, "unit": m.unit, "system": UCUM, "code": m.unit}


def _div(text: str) -> dict[str, str]:
    body = escape(text).replace("\n", "<br/>")
    return {"status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def _observations(c: NoteContent, base: dict[str, Any], when: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    obs = {"resourceType": "Observation", "status": "final", **base, "effectiveDateTime": when,
           "category": [_coding(OBS_CATEGORY, "vital-signs", "Vital Signs")]}
    sys_, dia = c.measurement("bp_systolic"), c.measurement("bp_diastolic")
    if sys_ and dia:
        out.append({**obs, "code": _coding(LOINC, *BP_PANEL), "component": [
            {"code": _coding(LOINC, *BP_PARTS[m.kind]), "valueQuantity": _quantity(m)}
            for m in (sys_, dia)]})
    for m in c.measurements:
        if m.kind in LOINC_CODES:
            out.append({**obs, "code": _coding(LOINC, *LOINC_CODES[m.kind]),
                        "valueQuantity": _quantity(m)})
    return out


def _reading_quantity(part: vitals.Part, value: float) -> dict[str, Any]:
    return {"value": value, "unit": part.unit, "system": UCUM, "code": part.unit}


def reading_observation(r: Stored) -> dict[str, Any] | None:
    """One monitoring reading as a vital-signs Observation (``None`` for free symptoms, which
    have no LOINC vital sign, and for an erased reading)."""
    m = vitals.MEASUREMENTS[r.measurement]
    if r.content is None or not m.parts:
        return None
    obs: dict[str, Any] = {
        "resourceType": "Observation", "id": f"reading-{r.id}", "status": "final",
        "category": [_coding(OBS_CATEGORY, "vital-signs", "Vital Signs")],
        "subject": {"reference": f"Patient/{r.patient_id}"},
        "effectiveDateTime": r.measured_at.isoformat(),
        "identifier": [{"system": "urn:casa:reading", "value": str(r.id)}],
        "basedOn": [{"identifier": {"system": "urn:casa:monitoring-plan",
                                    "value": str(r.plan_id)}}],
    }
    if m.panel is not None:
        return {**obs, "code": _coding(LOINC, *m.panel), "component": [
            {"code": _coding(LOINC, *p.loinc),
             "valueQuantity": _reading_quantity(p, r.content.values[p.name])}
            for p in m.parts]}
    (part,) = m.parts
    return {**obs, "code": _coding(LOINC, *part.loinc),
            "valueQuantity": _reading_quantity(part, r.content.values[part.name])}


def reading_entries(readings: list[Stored]) -> list[dict[str, Any]]:
    return [{"fullUrl": f"urn:casa:Observation/{o['id']}", "resource": o}
            for o in map(reading_observation, readings) if o is not None]


def observations_bundle(readings: list[Stored]) -> dict[str, Any]:
    """The patient's monitoring readings alone, as a searchset Bundle of Observations."""
    entries = reading_entries(readings)
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": entries}


def bundle(patient: Patient, views: list[NoteView],
           readings: list[Stored] | None = None) -> dict[str, Any]:
    """The FHIR R4 Bundle for ``patient`` from the notes in ``views`` (readable ones only) and
    her monitoring ``readings``."""
    patient_ref = f"Patient/{patient.id}"
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:casa:{patient_ref}", "resource": {
        "resourceType": "Patient", "id": str(patient.id),
        "name": [{"family": patient.family_name, "given": [patient.given_name]}],
        "birthDate": patient.date_of_birth.isoformat(),
        **({"identifier": [{"system": "http://hl7.it/sid/codiceFiscale",
                            "value": patient.codice_fiscale}]} if patient.codice_fiscale else {}),
    }}]
    encounters: set[int] = set()
    for view in views:
        note = view.note
        enc_id = f"booking-{note.booking_id}"
        if note.booking_id not in encounters:
            encounters.add(note.booking_id)
            entries.append({"fullUrl": f"urn:casa:Encounter/{enc_id}", "resource": {
                "resourceType": "Encounter", "id": enc_id, "status": "finished",
                "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
                "subject": {"reference": patient_ref},
                "identifier": [{"system": "urn:casa:booking", "value": str(note.booking_id)}],
            }})
        signed = view.latest_signed
        if signed is None or signed.content is None or signed.signed_at is None:
            continue
        c = signed.content
        base = {"subject": {"reference": patient_ref},
                "encounter": {"reference": f"Encounter/{enc_id}"}}
        when = signed.signed_at.isoformat()
        comp_id = f"note-{note.id}-v{signed.version}"
        sections = [{"title": title, "code": _coding(LOINC, code, title), "text": _div(value)}
                    for field, code, title in SECTIONS if (value := getattr(c, field))]
        entries.append({"fullUrl": f"urn:casa:Composition/{comp_id}", "resource": {
            "resourceType": "Composition", "id": comp_id,
            "status": "amended" if signed.amends_version else "final",
            "type": _coding(LOINC, *NOTE_TYPE), "date": when,
            "title": f"Consultation note ({note.category.value})",
            "author": [{"reference": f"Practitioner/{signed.author_id}"}],
            "confidentiality": "R" if note.category.restricted else "N",
            **base, "section": sections,
        }})
        for i, o in enumerate(_observations(c, base, when)):
            entries.append({"fullUrl": f"urn:casa:Observation/{comp_id}-{i}",
                            "resource": {**o, "id": f"{comp_id}-{i}"}})
    entries += reading_entries(readings or [])
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
