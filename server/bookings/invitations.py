"""Invitation texts (SMS and e-mail) and their calendar entry, in the patient's language.

For a sensitive service (psychological, psychiatric, violence-support) neither the text nor the
calendar entry names the service or the clinician: a phone seen by someone else must show only
"Appointment at Casa San Siro".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import icalendar

from server import centres
from server.consultations.languages import UI_LANGUAGES
from server.errors import N_
from server.timeutil import local_when_text

Gettext = Callable[..., str]
# Invitations are written in the patient's language when Casa has it; otherwise in Italian for
# Italian speakers and English for everyone else (the centres' own advice).
# A calendar entry's UID is stable per booking, so a reschedule updates the same event.
UID_NAMESPACE = uuid.UUID("6f1c5d7e-0b8a-4e0c-9a51-cb2a8c0f7a11")


def message_language(patient_language: str) -> str:
    return patient_language if patient_language in UI_LANGUAGES else "en"


@dataclass(frozen=True)
class Appointment:
    """What an invitation may say about a booking."""

    booking_id: int
    centre_name: str
    centre_address: str
    service_name: str  # English msgid
    sensitive: bool
    clinician_name: str
    mode: str
    starts_at: datetime
    ends_at: datetime
    join_url: str | None  # the invitation link (video bookings)
    code: str | None  # the 6-digit code
    code_url: str | None  # where the code is entered
    sequence: int = 0  # raised on each reschedule, for calendar clients
    centre_phone: str | None = None  # as centres.json writes it


def phone_line(a: Appointment, _: Gettext) -> str:
    """The centre's number, for every message that says to call the centre ("" if none)."""
    if not a.centre_phone:
        return ""
    return _("Phone of %(centre)s: %(phone)s", centre=a.centre_name,
             phone=centres.phone_text(a.centre_phone))


def title(a: Appointment, _: Gettext) -> str:
    """The one-line title: discreet for sensitive services."""
    if a.sensitive:
        return _("Appointment at %(centre)s", centre=a.centre_name)
    return _("%(service)s at %(centre)s", service=_(a.service_name), centre=a.centre_name)


def when(a: Appointment, lang: str) -> str:
    return local_when_text(a.starts_at, lang)


def _how(a: Appointment, _: Gettext) -> str:
    if a.mode == "kiosk_video":
        text = _("Please come to %(address)s a few minutes early: staff will help you at the "
                 "video kiosk.", address=a.centre_address)
        if a.code:
            text += " " + _("At the kiosk, enter the code %(code)s with your date of birth.",
                            code=a.code)
        return text
    if a.mode == "in_person":
        return _("Please come to %(address)s.", address=a.centre_address)
    parts = [_("It is a video call from home. Open this link a few minutes before: %(url)s",
               url=a.join_url or "")]
    if a.code and a.code_url:
        parts.append(_("Or go to %(url)s and enter the code %(code)s with your date of birth.",
                       url=a.code_url, code=a.code))
    return " ".join(parts)


def sms(a: Appointment, _: Gettext, lang: str) -> str:
    """The SMS body."""
    head = _("Casa: %(title)s on %(when)s.", title=title(a, _), when=when(a, lang))
    if not a.sensitive:
        head += " " + _("With %(clinician)s.", clinician=a.clinician_name)
    return head + " " + _how(a, _)


def email(a: Appointment, _: Gettext, lang: str) -> tuple[str, str]:
    """(subject, plain-text body) of the e-mail."""
    lines = [_("Hello,"), "",
             _("Your appointment: %(title)s.", title=title(a, _)),
             _("When: %(when)s.", when=when(a, lang))]
    if not a.sensitive:
        lines.append(_("With %(clinician)s.", clinician=a.clinician_name))
    phone = phone_line(a, _)
    lines += [_how(a, _), "", _("If you cannot come, please call the centre."),
              *([phone] if phone else []), "", "Casa"]
    return title(a, _), "\n".join(lines)


def cancellation(a: Appointment, _: Gettext, lang: str) -> tuple[str, str]:
    """(subject, body) telling the patient a booking was cancelled; equally discreet."""
    subject = _("Cancelled: %(title)s", title=title(a, _))
    body = _("Casa: your appointment at %(centre)s on %(when)s has been cancelled. Please call "
             "the centre to book again.", centre=a.centre_name, when=when(a, lang))
    return subject, " ".join(filter(None, (body, phone_line(a, _))))


def event_uid(booking_id: int) -> str:
    return f"{uuid.uuid5(UID_NAMESPACE, str(booking_id))}@casa"


def vevent(a: Appointment, _: Gettext, *, with_link: bool = True,
           cancelled: bool = False) -> icalendar.Event:
    """One calendar event; no service nor clinician for sensitive bookings."""
    ev = icalendar.Event()
    ev.add("uid", event_uid(a.booking_id))
    ev.add("dtstamp", datetime.now(UTC))
    ev.add("dtstart", a.starts_at.astimezone(UTC))
    ev.add("dtend", a.ends_at.astimezone(UTC))
    ev.add("summary", title(a, _))
    ev.add("sequence", a.sequence)
    ev.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if a.mode == "home_video":
        ev.add("location", _("Video call"))
        if with_link and a.join_url:
            ev.add("url", a.join_url)
            ev.add("description", _how(a, _))
    else:
        ev.add("location", f"{a.centre_name}, {a.centre_address}")
    return ev


def ics(a: Appointment, _: Gettext, *, cancelled: bool = False) -> str:
    """A one-event calendar (the e-mail attachment)."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Casa//Casa bookings//IT")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "REQUEST")
    cal.add_component(vevent(a, _, cancelled=cancelled))
    raw: bytes = cal.to_ical()
    return raw.decode()


# Service names as msgids, for the extractor; the database holds the same English names.
SERVICE_NAMES = (N_("GP visit"), N_("Psychological session"), N_("Psychiatric follow-up"),
                 N_("Community-nurse visit"), N_("Violence-support listening session"),
                 N_("Vaccination"))
