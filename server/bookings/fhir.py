"""A booking as a FHIR R4 ``Appointment`` resource."""

from __future__ import annotations

from typing import Any

from server.bookings.bookings import Booking

CASA_SYSTEM = "https://casa.example/fhir"
# HL7 v3 ParticipationMode-like codes for how the patient takes part.
MODE_CODES = {
    "home_video": ("VIDEOCONF", "videoconferencing"),
    "kiosk_video": ("VIDEOCONF", "videoconferencing"),
    "in_person": ("FACE", "face-to-face"),
}


def appointment(b: Booking, *, service_name: str, centre_name: str, sensitive: bool,
                patient_display: str, clinician_display: str) -> dict[str, Any]:
    """FHIR R4 Appointment JSON. Participants are references to Patient, Practitioner and
    Location; the service is a serviceType coding in Casa's own system."""
    mode_code, mode_display = MODE_CODES[b.mode]
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Patient/{b.patient_id}", "display": patient_display},
         "required": "required", "status": "accepted"},
        {"actor": {"reference": f"Practitioner/{b.clinician_id}",
                   "display": clinician_display},
         "required": "required", "status": "accepted"},
        {"actor": {"reference": f"Location/{b.centre_id}", "display": centre_name},
         "required": "required", "status": "accepted"},
    ]
    if b.kiosk_id is not None:
        participants.append({"actor": {"reference": f"Device/kiosk-{b.kiosk_id}"},
                             "required": "required", "status": "accepted"})
    if b.nurse_id is not None:
        participants.append({"actor": {"reference": f"Practitioner/{b.nurse_id}"},
                             "required": "optional", "status": "accepted"})
    out: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(b.id),
        "meta": {"lastUpdated": b.updated_at.isoformat()},
        "status": b.status,
        "serviceType": [{"coding": [{"system": f"{CASA_SYSTEM}/service", "code": b.service_code,
                                     "display": service_name}]}],
        "appointmentType": {"coding": [{"system": f"{CASA_SYSTEM}/mode", "code": b.mode,
                                        "display": mode_display}],
                            "text": mode_code},
        "start": b.starts_at.isoformat(),
        "end": b.ends_at.isoformat(),
        "minutesDuration": int((b.ends_at - b.starts_at).total_seconds() // 60),
        "created": b.created_at.isoformat(),
        "participant": participants,
    }
    if sensitive:
        # Tells a receiving system to keep this appointment restricted.
        out["meta"]["security"] = [{"system":
                                    "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                    "code": "R", "display": "restricted"}]
    if b.cancel_reason and b.status == "cancelled":
        out["cancelationReason"] = {"text": b.cancel_reason}
    return out
