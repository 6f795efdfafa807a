"""The words of the patient's readings form: its fields and units, and what its script says
(sent, kept on the phone, refused). Patient-facing: translated in every patient language."""

from __future__ import annotations

from aiohttp import web

from server.pages import translator


def field_words(request: web.Request) -> dict[str, str]:
    _ = translator(request)
    return {
        "blood_pressure": _("Blood pressure"),
        "systolic": _("Upper number (systolic)"),
        "diastolic": _("Lower number (diastolic)"),
        "heart_rate": _("Pulse"),
        "spo2": _("Oxygen (SpO2)"),
        "glucose": _("Blood sugar"),
        "weight": _("Weight"),
        "temperature": _("Temperature"),
        "symptoms": _("How do you feel? Anything new?"),
    }


def unit_words(request: web.Request) -> dict[str, str]:
    """UCUM code -> what the patient reads beside the field."""
    _ = translator(request)
    return {"mm[Hg]": "mmHg", "/min": _("beats per minute"), "%": "%", "mg/dL": "mg/dL",
            "kg": "kg", "Cel": "°C"}


def script_words(request: web.Request) -> dict[str, str]:
    _ = translator(request)
    return {
        "sent": _("Sent. Thank you."),
        "sending": _("Sending…"),
        "kept": _("No connection. Your readings are kept on this phone and will be sent "
                  "when you are back online."),
        "refused": _("Please check the fields marked below."),
        "range": _("Please write a number between %(low)s and %(high)s."),
        "empty": _("Please write at least one reading."),
        "ended": _("This link no longer works. Please ask your nurse for a new one."),
        # A Bluetooth device filled the fields: nothing is sent until the patient says so.
        "device_check": _("Check the numbers, then press Send."),
        "device_old": _("This reading is from %(when)s."),
        "device_failed": _("Could not read the device. Please write the numbers yourself."),
    }
