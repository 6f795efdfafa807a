"""The words the browser client shows, translated on the server and handed to the page as a
JSON block (``<script type="application/json">``: data, not script, so the CSP allows it).

The client never builds sentences itself: it looks a key up here and fills ``%(name)s``."""

from __future__ import annotations

from collections.abc import Callable

from server.calls.clinician_strings import CLINICIAN
from server.errors import N_

# Waiting-room notices, by the protocol's ``notice.code``.
NOTICES: dict[str, str] = {
    "few_minutes": N_("The clinician will be with you in a few minutes."),
    "few_minutes_n": N_("The clinician will be with you in %(minutes)s minutes."),
    "running_late": N_("The clinician is running late. Please keep this page open."),
    "technical_problem": N_("The clinician has a technical problem and will be with you "
                            "shortly."),
    "please_wait": N_("Please wait: the clinician will let you in soon."),
}

CLIENT: dict[str, str] = {
    # pre-call check
    "camera_ok": N_("Your camera works."),
    "camera_denied": N_("The browser is not allowed to use the camera. Allow the camera in your "
                        "browser settings, then press \"Check again\"."),
    "camera_missing": N_("No camera found. You can still take part with sound only."),
    "camera_busy": N_("The camera is being used by another app. Close the other app, then "
                      "press \"Check again\"."),
    "mic_ok": N_("Your microphone works: the bar moves when you speak."),
    "mic_silent": N_("We hear nothing yet. Say a few words: the bar should move."),
    "mic_tap": N_("Tap anywhere on this page, then say a few words: the bar should move."),
    "mic_missing": N_("No microphone found. The clinician will not hear you: connect "
                      "headphones with a microphone."),
    "mic_denied": N_("The browser is not allowed to use the microphone. Allow it in your "
                     "browser settings, then press \"Check again\"."),
    "speaker_question": N_("Did you hear the sound?"),
    "speaker_ok": N_("Your speaker works."),
    "speaker_bad": N_("Turn up the volume, or connect headphones, and press \"Play a test "
                      "sound\" again."),
    "net_checking": N_("Checking your connection..."),
    "net_good": N_("Your connection is good for video (round trip %(rtt)s ms)."),
    "net_fair": N_("Your connection is slow (round trip %(rtt)s ms). The call may switch to "
                   "sound only."),
    "net_failed": N_("We could not reach our video server. Try another Wi-Fi or mobile data, "
                     "or call your centre."),
    "net_via_relay": N_("Your network blocks direct connections; we will go through our "
                        "relay server."),
    "relay_checking": N_("Checking our relay server, the way round networks that block "
                         "video calls..."),
    "relay_ok": N_("Our relay server works from here: if your network blocks a direct "
                   "connection, the call will go through it."),
    "relay_failed": N_("Our relay server cannot be reached from this network. If the call "
                       "does not start, try another Wi-Fi or mobile data."),
    "relay_untested": N_("We could not test our relay server just now. You can still go on."),
    "unsupported": N_("This browser cannot make video calls. Use an up-to-date Chrome, "
                      "Firefox or Safari."),
    "join_consultation": N_("Join the consultation"),
    # waiting room and call
    "connecting": N_("Connecting..."),
    "reconnecting": N_("Reconnecting... Please keep this page open."),
    "waiting": N_("You are in the waiting room. The clinician will let you in."),
    "waiting_since": N_("Waiting since %(time)s"),
    "admitted": N_("You are in the consultation."),
    "sent_back": N_("The clinician has put you back in the waiting room for a moment."),
    "peer_away": N_("%(name)s lost the connection. Waiting for them to come back..."),
    "peer_left": N_("%(name)s has left."),
    "alone": N_("Waiting for the other person to join..."),
    "audio_only_auto": N_("Your connection is weak: we switched to sound only."),
    "quality_good": N_("Connection: good"),
    "quality_fair": N_("Connection: fair"),
    "quality_poor": N_("Connection: poor"),
    "mute": N_("Mute"),
    "unmute": N_("Unmute"),
    "camera_off": N_("Turn camera off"),
    "camera_on": N_("Turn camera on"),
    "share_start": N_("Share screen"),
    "share_stop": N_("Stop sharing"),
    "screen_shared": N_("The clinician is showing you their screen."),
    "peer_muted": N_("%(name)s has muted their microphone."),
    "chat_you": N_("You"),
    "chat_too_long": N_("This message is too long. Please send it in shorter parts."),
    # the state of one's own chat line, and its retry button
    "chat_sending": N_("Sending..."),
    "chat_sent": N_("Sent"),
    "chat_not_sent": N_("Not sent"),
    "chat_retry": N_("Send again"),
    "chat_failed": N_("Your message was not sent."),
    # said by the screen reader when a message comes while the chat is closed
    "chat_new_from": N_("New message from %(name)s"),
    "chat_new_clinician": N_("New message from the clinician"),
    "chat_new_patient": N_("New message from the patient"),
    "chat_new_guest": N_("New message from the guest"),
    "chat_new_count": N_("New messages: %(count)s"),
    "ended": N_("The consultation has ended."),
    "you_left": N_("You left the consultation. If that was a mistake, you can go back in."),
    "error_generic": N_("Something went wrong. Reload the page to try again."),
    "room_not_found": N_("This link does not open this consultation. Use the link from your "
                         "invitation, or enter your code."),
    "unauthenticated": N_("We could not recognise you. Open the link in your invitation "
                          "again, or enter your code."),
    "too_early": N_("It is too early. Come back at %(time)s."),
    "too_late": N_("This consultation's time is over. Call your centre for a new appointment."),
    "consultation_ended": N_("This consultation has ended or was cancelled."),
    "replaced": N_("You opened this consultation in another window or device. This page is "
                   "no longer connected."),
    "session_ended": N_("Your sign-in has expired. Sign in again."),
    "not_allowed": N_("You cannot do this here."),
    "not_waiting": N_("This patient is no longer waiting."),
    "unknown_peer": N_("This person is no longer here."),
    # the people on the call, and leaving it
    "patient": N_("Patient"),
    "guest": N_("Guest"),
    "clinician": N_("Clinician"),
    "confirm_end": N_("End the consultation for everyone?"),
    "confirm_leave": N_("Leave the consultation?"),
    # On the chat button while the chat is closed: "Chat (1 new)", "Chat (2 new)".
    "chat_unread_one": N_("(1 new)"),
    "chat_unread": N_("(%(count)s new)"),
    # A video's name for screen readers: whose camera it shows.
    "video_of": N_("Video of %(name)s"),
}

def client_strings(_: Callable[..., str], *, clinician: bool = False) -> dict[str, str]:
    """The page's client strings, translated with the request's gettext: the clinician's
    words only for a clinician."""
    chosen = CLIENT | {f"notice_{k}": v for k, v in NOTICES.items()}
    if clinician:
        chosen |= CLINICIAN
    return {key: _(msgid) for key, msgid in chosen.items()}
