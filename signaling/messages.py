"""Wire types: one msgspec Struct per client message of docs/protocol.md, validated on arrival.

Handlers never see raw dicts: ``signaling.wire.parse`` decodes a text frame straight into one
of these (``Message``, a union tagged by ``type``) or raises a ``ProtocolError`` naming the
catalogued code and the field at fault. Each field's type, length and range are declared
here (``msgspec.Meta``); the rules that span fields or need ``server.text`` are in
``check``, which every construction runs (``__post_init__``)."""

from __future__ import annotations

import json
from typing import Annotated, ClassVar, Literal, get_args

import msgspec
from msgspec import Meta

from server.text import message_problem, name_problem
from signaling.errors import INVALID_FIELD, ProtocolError

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
# A media section id ("0", "audio") and its index: a call has a handful of sections.
MAX_MID_CHARS = 32
MAX_MLINE_INDEX = 64
MAX_UFRAG_CHARS = 256
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
# A version number far beyond any we will ship: anything else is not a version.
MAX_VERSION = 1_000_000
# Staff ids are PostgreSQL bigints; 2**62 keeps well inside them.
MAX_STAFF_ID = 2**62
# A notice's "in N minutes": within a consultation's slot and its lateness.
MAX_NOTICE_MINUTES = 120

NoticeCode = Literal["few_minutes", "running_late", "technical_problem", "please_wait"]
NOTICE_CODES = frozenset(get_args(NoticeCode))
# "Is it safe to talk now?": the waiting patient's silent answers.
SafeAnswerCode = Literal["yes", "not_now", "text_only"]
# signaling_guests ids are bigint identities.
MAX_GUEST_ID = 2**62

Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
PeerId = Annotated[str, Meta(min_length=1, max_length=MAX_PEER_ID_CHARS)]
Sdp = Annotated[str, Meta(min_length=1, max_length=MAX_SDP_CHARS)]


def _bad(name: str) -> ProtocolError:
    return ProtocolError(INVALID_FIELD, {"field": name})


class _Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type",
            gc=False):
    """Fields every message has. ``gc=False``: messages hold only strings, numbers and a
    candidate, never a cycle, so the collector need not track one per frame."""

    # The ``type`` of the message, for logs, metrics and handler tables.
    TYPE: ClassVar[str] = ""
    id: Id | None = None


class Hello(_Base, tag="hello", kw_only=True):
    version: Annotated[int, Meta(ge=0, le=MAX_VERSION)]
    room: Annotated[str, Meta(min_length=1, max_length=MAX_ROOM_CHARS)] | None = None
    credential: Annotated[str, Meta(min_length=1, max_length=MAX_CREDENTIAL_CHARS)] | None = None
    # Casa's patient languages (server.consultations.languages.PATIENT_LANGUAGES; a test keeps
    # the two equal: a Literal must be spelt out for the schema).
    lang: Literal["it", "en", "ar", "zh", "es", "tl", "ro", "uk", "bn", "sq", "fr",
                  "ru"] | None = None
    nurse_present: bool | None = None


class Ping(_Base, tag="ping", kw_only=True):
    pass


class Admit(_Base, tag="admit", kw_only=True):
    peer: PeerId


class SendBack(_Base, tag="send_back", kw_only=True):
    peer: PeerId


class Notice(_Base, tag="notice", kw_only=True):
    peer: PeerId
    code: NoticeCode
    minutes: Annotated[int, Meta(ge=1, le=MAX_NOTICE_MINUTES)] | None = None


class Invite(_Base, tag="invite", kw_only=True):
    staff_id: Annotated[int, Meta(ge=1, le=MAX_STAFF_ID)] | None = None
    guest: bool | None = None
    label: Annotated[str, Meta(min_length=1, max_length=GUEST_LABEL_MAX_CHARS)] | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """A label is a name (no control or bidirectional formatting characters), and exactly
        one of the two forms: a colleague by ``staff_id``, or a guest (with an optional label)."""
        if self.label is not None and name_problem(self.label):
            raise _bad("label")
        if (self.staff_id is None) == (self.guest is not True):
            raise _bad("staff_id" if self.staff_id is not None else "guest")
        if self.label is not None and self.guest is not True:
            raise _bad("label")


class Offer(_Base, tag="offer", kw_only=True):
    to: PeerId
    sdp: Sdp
    restart: bool | None = None


class Answer(_Base, tag="answer", kw_only=True):
    to: PeerId
    sdp: Sdp


class IceCandidate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel",
                   gc=False):
    """RTCIceCandidateInit as the browser sends it (camelCase on the wire). An empty
    ``candidate`` is the end of candidates."""

    candidate: Annotated[str, Meta(max_length=MAX_CANDIDATE_CHARS)]
    sdp_mid: Annotated[str, Meta(max_length=MAX_MID_CHARS)] | None = None
    sdp_m_line_index: Annotated[int, Meta(ge=0, le=MAX_MLINE_INDEX)] | None = None
    username_fragment: Annotated[str, Meta(min_length=1, max_length=MAX_UFRAG_CHARS)] | None \
        = None


class Candidate(_Base, tag="candidate", kw_only=True):
    to: PeerId
    # Required, null allowed: null is how a browser says it has no more candidates.
    candidate: IceCandidate | None


class MediaState(_Base, tag="media_state", kw_only=True):
    audio: bool
    video: bool


class MediaReport(_Base, tag="media_report", kw_only=True):
    """How the call page's media went, for the activity report: through a TURN relay, and
    whether it fell back to sound only by itself. Two flags, never an address."""

    relay: bool
    sound_only: bool


class Chat(_Base, tag="chat", kw_only=True):
    text: Annotated[str, Meta(min_length=1, max_length=CHAT_MAX_CHARS)]

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Not blank; tab and newline pass, other control characters do not
        (``server.text``); and its relay fits one NOTIFY (``CHAT_MAX_RELAY_BYTES``)."""
        if not self.text.strip() or message_problem(self.text):
            raise _bad("text")
        size = chat_relay_bytes(self.text)
        if size > CHAT_MAX_RELAY_BYTES:
            raise ProtocolError(INVALID_FIELD, {"field": "text", "bytes": size,
                                                "max_bytes": CHAT_MAX_RELAY_BYTES})


class SafeAsk(_Base, tag="safe_ask", kw_only=True):
    peer: PeerId


class SafeAnswer(_Base, tag="safe_answer", kw_only=True):
    answer: SafeAnswerCode


class RevokeGuest(_Base, tag="revoke_guest", kw_only=True):
    guest: Annotated[int, Meta(ge=1, le=MAX_GUEST_ID)]


class Leave(_Base, tag="leave", kw_only=True):
    pass


class End(_Base, tag="end", kw_only=True):
    pass


Message = (Hello | Ping | Admit | SendBack | Notice | Invite | Offer | Answer | Candidate
           | MediaState | MediaReport | Chat | SafeAsk | SafeAnswer | RevokeGuest | Leave | End)

TYPES: dict[str, type[Message]] = {}
for _cls in get_args(Message):
    _cls.TYPE = _cls.__struct_config__.tag
    TYPES[_cls.TYPE] = _cls


def chat_relay_bytes(text: str) -> int:
    """The bytes ``text`` takes in a bus event: JSON-encoded, ASCII-escaped, in the frame
    (as ``frame`` does), which the bus event carries as it is (``envelope.pack``)."""
    return len(json.dumps(text))
