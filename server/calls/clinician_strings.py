"""The words of the clinician's side of the call page and dashboard (waiting list,
invitations, live states), translated like ``strings`` but kept in their own module: patients'
pages never download them, and they stay out of the patients' catalogue (Italian and English
only, like every staff page)."""

from __future__ import annotations

from server.errors import N_

CLINICIAN: dict[str, str] = {
    "from_home": N_("from home"),
    "from_kiosk": N_("from a kiosk"),
    "nurse_present": N_("nurse present"),
    "nobody_waiting": N_("Nobody is waiting."),
    "is_waiting": N_("%(name)s is waiting"),
    "in_call": N_("In the call"),
    "no_longer_waiting": N_("No longer waiting"),
    "not_arrived": N_("Not arrived yet"),
    "finished": N_("Finished"),
    "waiting_status": N_("Waiting since %(time)s"),
    "entry_away": N_("Connection lost: keeping their place in the waiting room for 30 seconds"),
    "admit": N_("Admit"),
    "open_consultation": N_("Open the consultation"),
    "send_back": N_("Send back to the waiting room"),
    "invite_link": N_("Guest link (valid until the consultation closes):"),
    "invited_staff": N_("Invitation sent: your colleague sees this consultation on their "
                        "dashboard."),
    "notice_sent": N_("Message sent."),
    "send_notice": N_("Send message"),
    "message_to_patient": N_("Short message to the patient"),
    "live_on": N_("Live updates on"),
    "live_off": N_("Live updates paused: reconnecting..."),
    "title_waiting": N_("(%(count)s waiting)"),
    # Safety (docs/protocol.md, "Safety")
    "safe_ask": N_("Ask: safe to talk?"),
    "safe_asked": N_("asked if safe to talk: no answer yet"),
    "safe_yes": N_("safe to talk: yes"),
    "safe_not_now": N_("safe to talk: not now"),
    "safe_text_only": N_("safe to talk: only by text"),
    "guest": N_("Guest"),
    "revoke_guest": N_("Revoke the link"),
    "guest_revoked": N_("Guest link revoked."),
    "code_word_alert": N_("Code word typed in the chat: the patient may not be safe. Do not "
                          "mention it aloud."),
}
