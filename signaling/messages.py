"""Wire types: one dataclass per client message of docs/protocol.md, validated on arrival.

Handlers never see raw dicts: ``from_dict`` turns a decoded frame (``signaling.wire.decode``)
into one of these or raises a ``ProtocolError`` naming the catalogued code (and the field at
fault)."""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from server.text import message_problem, name_problem
from signaling.errors import INVALID_FIELD, UNKNOWN_TYPE, ProtocolError

PROTOCOL_VERSION = 1
# Echoed ids are a client's bookkeeping, not a payload channel.
MAX_ID_CHARS = 64
# Peer ids and room ids are short opaque strings made by the server / bookings.
MAX_PEER_ID_CHARS = 40
MAX_ROOM_CHARS = 64
# Credentials are url-safe tokens (~43 chars) or signed probe tokens (~100 chars).
MAX_CREDENTIAL_CHARS = 256
# An SDP with many codecs and candidates is ~10 KiB; the frame cap is 64 KiB anyway.
MAX_SDP_CHARS = 48 * 1024
MAX_CANDIDATE_CHARS = 1024
CHAT_MAX_CHARS = 2000
# Chat text must never be written to the database: its relay to another instance has to fit
# one sealed NOTIFY payload (a plaintext of envelope.MAX_BODY_BYTES = 5912) rather than go
# through signaling_relay. On the way the text is JSON-encoded once, ASCII-escaped, in the
# frame (which the bus carries as it is): a plain letter costs 1 byte, a newline or a quote 2,
# an accented or Arabic letter 6, an emoji 12, so 2000 emoji would be 24 KB. 4800 leaves the
# rest of the event (type, a 64-character id, from, at, room: under 1.1 KB) room to spare;
# 2000 plain characters still fit.
CHAT_MAX_RELAY_BYTES = 4800
GUEST_LABEL_MAX_CHARS = 60
NOTICE_CODES = frozenset({"few_minutes", "running_late", "technical_problem", "please_wait"})
CANDIDATE_KEYS = frozenset({"candidate", "sdpMid", "sdpMLineIndex", "usernameFragment"})


def _bad(name: str) -> ProtocolError:
    return ProtocolError(INVALID_FIELD, {"field": name})


def _text(name: str, value: object, max_chars: int, *, min_chars: int = 1) -> None:
    if type(value) is not str or not min_chars <= len(value) <= max_chars:
        raise _bad(name)


def _opt_text(name: str, value: object, max_chars: int) -> None:
    if value is not None:
        _text(name, value, max_chars)


def _bool(name: str, value: object, *, optional: bool = False) -> None:
    if type(value) is not bool and not (optional and value is None):
        raise _bad(name)


def _int(name: str, value: object, lo: int, hi: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if type(value) is not int or not lo <= value <= hi:
        raise _bad(name)


@dataclass(slots=True, kw_only=True)
class Message:
    TYPE: ClassVar[str] = ""
    FIELDS: ClassVar[frozenset[str]] = frozenset()
    REQUIRED: ClassVar[frozenset[str]] = frozenset()
    id: str | None = None

    def check(self) -> None:
        """Per-type validation; called from ``__post_init__``."""

    def __post_init__(self) -> None:
        i = self.id
        if i is not None and (type(i) is not str or not 1 <= len(i) <= MAX_ID_CHARS):
            raise _bad("id")
        self.check()


@dataclass(slots=True, kw_only=True)
class Hello(Message):
    TYPE = "hello"
    version: int
    room: str | None = None
    credential: str | None = None
    lang: str | None = None
    nurse_present: bool | None = None

    def check(self) -> None:
        _int("version", self.version, 0, 1_000_000)
        _opt_text("room", self.room, MAX_ROOM_CHARS)
        _opt_text("credential", self.credential, MAX_CREDENTIAL_CHARS)
        if self.lang is not None and self.lang not in ("it", "en"):
            raise _bad("lang")
        _bool("nurse_present", self.nurse_present, optional=True)


@dataclass(slots=True, kw_only=True)
class Ping(Message):
    TYPE = "ping"


@dataclass(slots=True, kw_only=True)
class Admit(Message):
    TYPE = "admit"
    peer: str

    def check(self) -> None:
        _text("peer", self.peer, MAX_PEER_ID_CHARS)


@dataclass(slots=True, kw_only=True)
class SendBack(Admit):
    TYPE = "send_back"


@dataclass(slots=True, kw_only=True)
class Notice(Message):
    TYPE = "notice"
    peer: str
    code: str
    minutes: int | None = None

    def check(self) -> None:
        _text("peer", self.peer, MAX_PEER_ID_CHARS)
        if self.code not in NOTICE_CODES:
            raise _bad("code")
        _int("minutes", self.minutes, 1, 120, optional=True)


@dataclass(slots=True, kw_only=True)
class Invite(Message):
    TYPE = "invite"
    staff_id: int | None = None
    guest: bool | None = None
    label: str | None = None

    def check(self) -> None:
        _int("staff_id", self.staff_id, 1, 2**62, optional=True)
        _bool("guest", self.guest, optional=True)
        _opt_text("label", self.label, GUEST_LABEL_MAX_CHARS)
        if self.label is not None and name_problem(self.label):
            raise _bad("label")
        # Exactly one of the two forms.
        if (self.staff_id is None) == (self.guest is not True):
            raise _bad("staff_id" if self.staff_id is not None else "guest")
        if self.label is not None and self.guest is not True:
            raise _bad("label")


@dataclass(slots=True, kw_only=True)
class Offer(Message):
    TYPE = "offer"
    to: str
    sdp: str
    restart: bool | None = None

    def check(self) -> None:
        _text("to", self.to, MAX_PEER_ID_CHARS)
        _text("sdp", self.sdp, MAX_SDP_CHARS)
        _bool("restart", self.restart, optional=True)


@dataclass(slots=True, kw_only=True)
class Answer(Message):
    TYPE = "answer"
    to: str
    sdp: str

    def check(self) -> None:
        _text("to", self.to, MAX_PEER_ID_CHARS)
        _text("sdp", self.sdp, MAX_SDP_CHARS)


@dataclass(slots=True, kw_only=True)
class Candidate(Message):
    TYPE = "candidate"
    to: str
    candidate: dict[str, Any] | None

    def check(self) -> None:
        # The commonest message of all (a trickle of them per call): checks written inline.
        to = self.to
        if type(to) is not str or not 1 <= len(to) <= MAX_PEER_ID_CHARS:
            raise _bad("to")
        c = self.candidate
        if c is None:
            return
        if type(c) is not dict or not c.keys() <= CANDIDATE_KEYS:
            raise _bad("candidate")
        line = c.get("candidate")
        if type(line) is not str or len(line) > MAX_CANDIDATE_CHARS:
            raise _bad("candidate.candidate")
        mid = c.get("sdpMid")
        if mid is not None and (type(mid) is not str or len(mid) > 32):
            raise _bad("candidate.sdpMid")
        index = c.get("sdpMLineIndex")
        if index is not None and (type(index) is not int or not 0 <= index <= 64):
            raise _bad("candidate.sdpMLineIndex")
        _opt_text("candidate.usernameFragment", c.get("usernameFragment"), 256)


@dataclass(slots=True, kw_only=True)
class MediaState(Message):
    TYPE = "media_state"
    audio: bool
    video: bool

    def check(self) -> None:
        _bool("audio", self.audio)
        _bool("video", self.video)


@dataclass(slots=True, kw_only=True)
class Chat(Message):
    TYPE = "chat"
    text: str

    def check(self) -> None:
        _text("text", self.text, CHAT_MAX_CHARS)
        # Tab and newline pass; other control characters do not (server/text.py).
        if not self.text.strip() or message_problem(self.text):
            raise _bad("text")
        size = chat_relay_bytes(self.text)
        if size > CHAT_MAX_RELAY_BYTES:
            raise ProtocolError(INVALID_FIELD, {"field": "text", "bytes": size,
                                                "max_bytes": CHAT_MAX_RELAY_BYTES})


def chat_relay_bytes(text: str) -> int:
    """The bytes ``text`` takes in a bus event: JSON-encoded, ASCII-escaped, in the frame
    (as ``frame`` does), which the bus event carries as it is (``envelope.pack``)."""
    return len(json.dumps(text))


@dataclass(slots=True, kw_only=True)
class Leave(Message):
    TYPE = "leave"


@dataclass(slots=True, kw_only=True)
class End(Message):
    TYPE = "end"


TYPES: dict[str, type[Message]] = {}
for _cls in (Hello, Ping, Admit, SendBack, Notice, Invite, Offer, Answer, Candidate, MediaState,
             Chat, Leave, End):
    _all = [f for f in fields(_cls) if f.name not in ("TYPE", "FIELDS", "REQUIRED")]
    _cls.FIELDS = frozenset(f.name for f in _all) | {"type"}
    _cls.REQUIRED = frozenset(f.name for f in _all if f.default is MISSING)
    TYPES[_cls.TYPE] = _cls
# Messages relayed verbatim (plus the stamped sender) to another peer of the consultation.
RELAYED = frozenset({"offer", "answer", "candidate", "media_state", "chat"})


def from_dict(obj: dict[str, Any]) -> Message:
    """Validate a decoded frame into its message class (consumes ``obj``)."""
    kind = obj.get("type")
    cls = TYPES.get(kind) if type(kind) is str else None
    if cls is None:
        raise ProtocolError(UNKNOWN_TYPE)
    keys = obj.keys()
    # dict_keys comparisons test membership key by key, without building a set per message.
    if not keys <= cls.FIELDS:
        raise _bad(sorted(k for k in obj if k not in cls.FIELDS)[0])
    if not keys >= cls.REQUIRED:
        raise _bad(sorted(cls.REQUIRED.difference(obj))[0])
    del obj["type"]
    return cls(**obj)


def frame(kind: str, **fields_: Any) -> str:
    """A server message as sent on the wire."""
    return json.dumps({"type": kind, **fields_}, separators=(",", ":"), default=str)
