"""What a reminder says (SMS and e-mail), in the patient's language, as discreet as the
invitation (``invitations.title``: a sensitive service is only "Appointment at <centre>", with
no clinician), with the way in: for a video call from home a fresh link and a word that the
code of the invitation works too; at a kiosk or in person, the centre's address."""

from __future__ import annotations

from server.bookings import invitations
from server.bookings.invitations import Appointment, Gettext


def _how(a: Appointment, _: Gettext) -> str:
    if a.mode == "kiosk_video":
        return " ".join((
            _("Please come to %(address)s a few minutes early: staff will help you at the "
              "video kiosk.", address=a.centre_address),
            _("At the kiosk, enter the code from your invitation with your date of birth.")))
    if a.mode == "in_person":
        return _("Please come to %(address)s.", address=a.centre_address)
    parts = [_("It is a video call from home. Open this link a few minutes before: %(url)s",
               url=a.join_url or "")]
    if a.code_url:
        parts.append(_("The code from your invitation works too: enter it at %(url)s with "
                       "your date of birth.", url=a.code_url))
    return " ".join(parts)


def sms(a: Appointment, _: Gettext, lang: str) -> str:
    head = _("Casa reminder: %(title)s on %(when)s.", title=invitations.title(a, _),
             when=invitations.when(a, lang))
    if not a.sensitive:
        head += " " + _("With %(clinician)s.", clinician=a.clinician_name)
    return head + " " + _how(a, _)


def email(a: Appointment, _: Gettext, lang: str) -> tuple[str, str]:
    """(subject, plain-text body)."""
    title = invitations.title(a, _)
    lines = [_("Hello,"), "",
             _("A reminder of your appointment: %(title)s.", title=title),
             _("When: %(when)s.", when=invitations.when(a, lang))]
    if not a.sensitive:
        lines.append(_("With %(clinician)s.", clinician=a.clinician_name))
    lines += [_how(a, _), "",
              _("If you cannot come, please call the centre."), "", "Casa"]
    return _("Reminder: %(title)s", title=title), "\n".join(lines)
