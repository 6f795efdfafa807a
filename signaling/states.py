"""The names of signalling's states, as enums (their values are what the wire and the database
carry): a member's role and place, a socket's kind, the changes announced between instances,
and a patient's state in a waiting entry."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A member's role in a consultation (docs/protocol.md, "Identities")."""

    PATIENT = "patient"
    CLINICIAN = "clinician"
    GUEST = "guest"


class Kind(StrEnum):
    """What a socket is: a member of a consultation by role, a dashboard or a probe."""

    PATIENT = "patient"
    CLINICIAN = "clinician"
    GUEST = "guest"
    DASHBOARD = "dashboard"
    PROBE = "probe"
    NONE = ""          # before hello


class Place(StrEnum):
    """Where a member is (``signaling_participants.status``)."""

    WAITING = "waiting"
    IN_CALL = "in_call"
    LEFT = "left"


class Change(StrEnum):
    """A change of a member, announced to the sockets here and to the other instances."""

    JOINED = "joined"        # entered the call (staff, guests; a patient on resume)
    WAITING = "waiting"      # entered the waiting room
    RESUMED = "resumed"      # came back within the grace
    AWAY = "away"            # socket dropped; place kept for the grace
    ADMITTED = "admitted"
    SENT_BACK = "sent_back"
    LEFT = "left"
    UPDATED = "updated"      # the waiting entry's details changed (a nurse declared present,
                             # the answer to "safe to talk?")


class EntryState(StrEnum):
    """A patient's state in a waiting entry (docs/protocol.md, "waiting entry")."""

    WAITING = "waiting"
    IN_CALL = "in_call"
    AWAY = "away"
    LEFT = "left"
    ENDED = "ended"


class LeftReason(StrEnum):
    """``peer_left.reason``."""

    LEFT = "left"
    TIMEOUT = "timeout"
    SENT_BACK = "sent_back"
