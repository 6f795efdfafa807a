"""Server -> client messages of docs/protocol.md as typed structures, and their encoding.

Every frame the server builds is one of these (relayed offers, answers, candidates and media
states excepted: they go out as the sender wrote them, with ``from`` spliced in, see
``signaling.handlers``). Optional fields are ``UNSET`` and then absent from the JSON, as the
protocol says; ``None`` is sent as ``null``."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType, field

_ENCODER = msgspec.json.Encoder()


class PeerObject(Struct, kw_only=True):
    peer_id: str
    role: str
    name: str | None
    connected: bool


class WaitingEntry(Struct, kw_only=True):
    room: str
    consultation_id: int
    peer_id: str | None
    state: str
    since: str | None
    from_: str | None = field(name="from")
    kiosk_id: int | None
    nurse_present: bool
    language: str
    name: str
    service: str
    starts_at: str
    connected: bool
    place: str | UnsetType = UNSET      # away entries only: the place kept
    role: str = "patient"               # or "guest", waiting in a sensitive consultation
    safe: str | None = None             # "asked", then the answer to "safe to talk?"


class Limits(Struct, kw_only=True):
    max_message_bytes: int
    chat_max_chars: int
    chat_max_relay_bytes: int
    sdp_max_chars: int
    grace_s: float


class Frame(Struct, tag_field="type", kw_only=True):
    """A server message; ``type`` is the subclass's tag."""


class Welcome(Frame, tag="welcome"):
    version: int
    peer_id: str
    role: str
    state: str
    room: str | None
    peers: list[PeerObject]
    ice_servers: list[dict[str, Any]]
    resumed: bool
    since: str | None
    limits: Limits


class Pong(Frame, tag="pong"):
    id: str | UnsetType = UNSET


class WaitingList(Frame, tag="waiting_list"):
    entries: list[WaitingEntry]
    refresh: bool | UnsetType = UNSET


class Admitted(Frame, tag="admitted"):
    peers: list[PeerObject]


class SentBack(Frame, tag="sent_back"):
    pass


class NoticeFrame(Frame, tag="notice"):
    code: str
    minutes: int | None
    text: str


class PeerJoined(Frame, tag="peer_joined"):
    peer: PeerObject


class PeerAway(Frame, tag="peer_away"):
    peer_id: str


class PeerResumed(Frame, tag="peer_resumed"):
    peer_id: str


class PeerLeft(Frame, tag="peer_left"):
    peer_id: str
    reason: str


class Invited(Frame, tag="invited"):
    id: str | UnsetType = UNSET
    staff_id: int | UnsetType = UNSET
    link: str | UnsetType = UNSET
    expires_at: str | UnsetType = UNSET
    guest_id: int | UnsetType = UNSET


class SafeAskFrame(Frame, tag="safe_ask"):
    pass


class SafetyAlert(Frame, tag="safety_alert"):
    code: str
    at: str


class Ended(Frame, tag="ended"):
    by: str


class ChatFrame(Frame, tag="chat", kw_only=True):
    """A chat line as relayed: re-encoded by the server, never the sender's own spelling."""

    id: str | UnsetType = UNSET
    text: str
    at: str
    from_: str = field(name="from")


class ChatSent(Frame, tag="chat_sent", kw_only=True):
    """The answer to a chat's sender: its line was relayed, to how many. Never the text: the
    sender has it on screen already, and a slow uplink need not download it again."""

    id: str | UnsetType = UNSET
    at: str
    delivered: int


class ErrorFrame(Frame, tag="error", kw_only=True):
    code: str
    message: str
    fatal: bool
    details: dict[str, Any] | UnsetType = UNSET
    id: str | UnsetType = UNSET


def encode(frame: Frame) -> bytes:
    """The frame as sent: compact UTF-8 JSON (a text frame's payload)."""
    return _ENCODER.encode(frame)


def unset_if_none(value: Any) -> Any:
    """``UNSET`` for None: an optional field the protocol leaves out rather than nulls."""
    return UNSET if value is None else value
