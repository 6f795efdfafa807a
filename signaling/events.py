"""Events between instances (carried by ``signaling.bus``), as typed structures.

They carry ids and states only, never a name or a guest's label: each instance looks names up
itself. A relayed frame travels as the text it is (``text``), after the event's JSON head and
a newline, so it is neither re-encoded nor escaped twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import Struct, field
from msgspec.structs import replace

from signaling.presence import Member
from signaling.states import Change, Place, Role

_ENCODER = msgspec.json.Encoder()
_SEPARATOR = b"\n"   # never inside compact JSON, where a newline is escaped
# A guest's label is free text a clinician typed (it may be a name): it stays in the database.
_PRIVATE_DETAIL = ("label",)


class WireMember(Struct, kw_only=True):
    peer_id: str
    participant: str
    role: Role
    status: Place
    instance_id: str | None
    arrived_at: datetime
    detail: dict[str, Any]
    version: int


class Event(Struct, tag_field="k", kw_only=True):
    """An event; ``k`` is the subclass's tag."""


class Relay(Event, tag="relay", kw_only=True):
    """A frame for the socket(s) of a room on the reading instance: ``to`` one peer in the
    call, or everyone in the call but ``from_``."""

    room: str
    to: str | None
    from_: str = field(name="from", default="")
    text: str = ""


class Direct(Event, tag="direct"):
    """A server frame for one socket, whatever its state (a notice)."""

    room: str
    to: str
    text: str = ""


class MemberChanged(Event, tag="member", kw_only=True):
    room: str
    cid: int
    member: WireMember
    change: Change
    reason: str = ""
    staff: list[int]


class Replace(Event, tag="replace"):
    """The socket of ``peer_id`` on instance ``target`` was replaced by a newer one."""

    room: str
    peer_id: str
    target: str


class Ended(Event, tag="ended"):
    room: str
    cid: int
    staff: list[int]
    by: str


class Invited(Event, tag="invited"):
    cid: int
    staff_id: int


class ProbeMember(Event, tag="probe"):
    """A member of a probe room joined or left on another instance (``reply``: the answer of
    an instance that heard of a newcomer, which is not answered again)."""

    room: str
    member: WireMember
    change: Change
    reply: bool = False


class Resync(Event, tag="resync"):
    """The sender had to drop events it could not publish: re-read from the database."""


class Ref(Event, tag="ref"):
    """An event too large for one notification, stored in ``signaling_relay`` (row ``ref``)
    for one reading instance ``r``, or for all."""

    ref: int
    r: str | None = None


BusEvent = Relay | Direct | MemberChanged | Replace | Ended | Invited | ProbeMember | Resync | Ref
_DECODER = msgspec.json.Decoder(BusEvent)


def encode(event: BusEvent) -> bytes:
    """The event as sealed: its JSON head, then the relayed frame's text as it is."""
    if isinstance(event, Relay | Direct) and event.text:
        return (_ENCODER.encode(replace(event, text="")) + _SEPARATOR
                + event.text.encode("utf-8", "surrogatepass"))
    return _ENCODER.encode(event)


def decode(body: bytes) -> BusEvent:
    """The event ``encode`` made (raises ``msgspec.ValidationError`` or ``DecodeError``)."""
    head, sep, text = body.partition(_SEPARATOR)
    event = _DECODER.decode(head)
    if sep and isinstance(event, Relay | Direct):
        event.text = text.decode("utf-8", "surrogatepass")
    return event


def to_wire(m: Member) -> WireMember:
    """A member as the bus carries it: ids and state, no name or label."""
    return WireMember(peer_id=m.peer_id, participant=m.participant, role=m.role,
                      status=m.status, instance_id=m.instance_id, arrived_at=m.arrived_at,
                      detail={k: v for k, v in m.detail.items() if k not in _PRIVATE_DETAIL},
                      version=m.version)


def from_wire(w: WireMember) -> Member:
    return Member(w.peer_id, w.participant, w.role, w.status, w.instance_id, w.arrived_at,
                  w.detail, w.version)
