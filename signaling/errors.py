"""The signalling errors (docs/protocol.md): a stable code per failure, whether it closes the
socket, and the close code. Clients translate ``code``; ``message`` never carries the client's
input back. Codes shared with HTTP (``unauthenticated``, ``rate_limited``, ``internal_error``)
are the same registry entries (``server.errors``) with the same meaning."""

from __future__ import annotations

from typing import Any

from server import errors
from server.errors import N_, ErrorKind
from signaling.frames import ErrorFrame, encode, unset_if_none

# The signalling errors are entries of the one registry (server.errors), whose codes are
# unique across HTTP and the WebSocket; the HTTP status says what the error would be on HTTP.
SignalError = ErrorKind


def _error(code: str, message: str, close_code: int = 0, status: int = 400) -> ErrorKind:
    return errors.define(code, status, message, close_code=close_code)


# First message was not hello, or none within Engine.hello_timeout_s.
HELLO_REQUIRED = _error("hello_required", "Send hello first.", 4002)
UNSUPPORTED_VERSION = _error("unsupported_version", "Protocol version not supported.", 4002)
# No valid staff session or patient/guest credential.
UNAUTHENTICATED = errors.UNAUTHENTICATED
# The staff session was logged out, revoked or expired while the socket was open.
SESSION_ENDED = _error("session_ended", "The session has ended.", 4001, 401)
# This role may not send this message.
NOT_ALLOWED = _error("not_allowed", "Not allowed.", status=403)
# Unknown room, or a room this person does not belong to (the two are not told apart).
ROOM_NOT_FOUND = _error("room_not_found", "No such consultation.", 4004, 404)
TOO_EARLY = _error("too_early", "The consultation is not open yet.", 4005, 425)
# Over HTTP too (the pre-call check, signaling.echo_access): 410, and a message to translate.
TOO_LATE = _error("too_late", N_("The time for this consultation is over."), 4005, 410)
# Ended by the clinician, cancelled or fulfilled: its credentials open nothing more.
CONSULTATION_ENDED = _error("consultation_ended", N_("This consultation has ended."), 4005, 410)
BAD_JSON = _error("bad_json", "The message is not a JSON object.")
UNKNOWN_TYPE = _error("unknown_type", "Unknown message type.")
# details.field names the field.
INVALID_FIELD = _error("invalid_field", "A field is missing or not valid.", status=422)
# Not part of the protocol, which no client of ours sends: closed at once (1003: unsupported
# data), so a flood of them costs one answer.
BINARY_FRAME = _error("binary_frame", "Binary frames are not part of the protocol.", 1003)
DUPLICATE_HELLO = _error("duplicate_hello", "hello was already accepted.", status=409)
# Relaying before admit, or after being sent back.
NOT_IN_CALL = _error("not_in_call", "Not in the call.", status=409)
UNKNOWN_PEER = _error("unknown_peer", "No such peer in this consultation.", status=404)
NOT_WAITING = _error("not_waiting", "That patient is not waiting.", status=409)
RATE_LIMITED = errors.RATE_LIMITED
FLOODING = _error("flooding", "Too many messages for too long.", 4008, 429)
TOO_MANY_ERRORS = _error("too_many_errors", "Too many invalid messages.", 4008, 429)
MESSAGE_TOO_LARGE = _error("message_too_large", "Message too large.", 1009, 413)
# The same participant connected again (another tab, another instance).
REPLACED = _error("replaced", "Connected again elsewhere.", 4009, 409)
# The clinician revoked the guest link this socket came with.
GUEST_REVOKED = _error("guest_revoked", "This guest link was revoked.", 4001, 403)
INTERNAL = errors.INTERNAL
SERVER_SHUTDOWN = _error("server_shutdown", "The server is restarting; reconnect.", 1001, 503)
# hello could not be handled for a reason of the server's (the database away, a fault): the
# client is told so, and to come back, rather than seeing its socket simply close.
TRY_AGAIN = _error("try_again", "The server could not take this now; reconnect.", 1013,
                   503)
# The client did not take what was sent to it: its queue overflowed, or one write missed the
# deadline (``signaling.conn``). It is disconnected so nobody waits for it; it may reconnect.
# No answer to a WebSocket ping within 5 s (``conn.PONG_WAIT_S``): the peer is gone.
NO_ANSWER = _error("no_answer", "No answer to the server's ping; reconnect.", 4011, 408)
TOO_SLOW = _error("too_slow", "The connection is too slow to keep up; reconnect.", 4010,
                  408)


# Closed without waiting for the peer's close frame (``Conn.cut``): the peer is flooding, and
# aiohttp would go on reading its flood until that frame came.
CUT_OFF = frozenset({FLOODING, TOO_MANY_ERRORS, BINARY_FRAME})


class ProtocolError(Exception):
    """Raised by validation and handlers; the connection loop turns it into an ``error``."""

    def __init__(self, kind: SignalError, details: dict[str, Any] | None = None) -> None:
        super().__init__(kind.code)
        self.kind = kind
        self.details = details


def error_frame(kind: SignalError, msg_id: str | None = None,
                details: dict[str, Any] | None = None) -> bytes:
    """The ``error`` message as sent on the wire."""
    return encode(ErrorFrame(code=kind.code, message=kind.message, fatal=kind.fatal,
                             details=unset_if_none(details or None),
                             id=unset_if_none(msg_id)))
