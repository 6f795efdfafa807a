"""The words a patient meets on a kiosk that the server writes (the page's template has the
rest): the kiosk page's script messages and the answers of ``/kiosk/join``."""

from __future__ import annotations

from server.errors import N_

# For kiosk.js, by key (handed to the page as a JSON block).
CLIENT: dict[str, str] = {
    "bad_qr": N_("That QR code is not a Casa invitation. Please type your code instead."),
    "no_camera": N_("The camera cannot be used. Please type your code instead."),
    "failed": N_("Something went wrong. Please try again."),
}
NOT_A_KIOSK = N_("This browser is not a kiosk of the centre.")
ELSEWHERE = N_("This appointment is not at this kiosk. Please ask at the front desk.")
