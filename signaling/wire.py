"""Frames in: ``parse`` turns one text frame into its message (``signaling.messages``) in one
pass of msgspec's decoder, or raises a ``ProtocolError`` with the catalogued code:

- ``bad_json``: not JSON, not an object, NaN or Infinity, anything after the object;
- ``unknown_type``: ``type`` missing, not a string, or not a message of the protocol;
- ``invalid_field`` with ``details.field``: an unknown field (its name; inside ``candidate``,
  ``candidate``), a missing one (its name), or a value of the wrong type, length or range
  (its name, dotted when nested: ``candidate.sdpMid``); chat over its relay size adds
  ``bytes`` and ``max_bytes``.

Every frame goes through the same decoder, the relayed offers, answers and candidates too.
Only a refused frame costs more: msgspec stops at the first fault in the order of the text,
so the frame is decoded once more as plain JSON to name the fault the protocol names when
there are several (unknown fields, then missing ones, then the fields in the order
``messages`` declares them), whatever order the client wrote them in."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, get_args

import msgspec

from signaling.errors import BAD_JSON, INVALID_FIELD, UNKNOWN_TYPE, ProtocolError
from signaling.messages import MAX_ID_CHARS, TYPES, Message

_DECODER = msgspec.json.Decoder(Message)
# Plain JSON, for the refused frames only. float_hook: a number too large for a float
# (1e400) is still JSON; as infinity it fails the field's type check like any float.
_PLAIN = msgspec.json.Decoder(float_hook=float)
_MISSING = "Object missing required field `"
_AT = " - at `$"


def parse(text: str) -> Message:
    """Validate one text frame into its message (raises ``ProtocolError``)."""
    try:
        return _DECODER.decode(text)
    except (msgspec.ValidationError, ProtocolError):
        # ProtocolError: a rule of ``check``, raised before the decoder has seen the rest of
        # the text, which may not be JSON.
        pass
    except (msgspec.DecodeError, UnicodeEncodeError):
        # UnicodeEncodeError: a lone surrogate in the str, which no UTF-8 frame can carry.
        raise ProtocolError(BAD_JSON) from None
    outcome = _fault(text)
    if isinstance(outcome, ProtocolError):
        raise outcome
    return outcome


def reply_id(text: str) -> str | None:
    """The ``id`` to echo in an error about the frame ``text``: its own, if it has a string
    one short enough to echo, even when the frame was refused."""
    try:
        obj = _PLAIN.decode(text)
    except (msgspec.MsgspecError, UnicodeEncodeError):
        return None
    if type(obj) is not dict:
        return None
    msg_id = obj.get("id")
    return msg_id if type(msg_id) is str and len(msg_id) <= MAX_ID_CHARS else None


def _fault(text: str) -> ProtocolError | Message:
    """The error for a frame the decoder refused (or, for a frame whose keys repeat, the
    message JSON means: the last value of each key, as browsers read it)."""
    try:
        obj = _PLAIN.decode(text)
    except (msgspec.MsgspecError, UnicodeEncodeError):
        return ProtocolError(BAD_JSON)   # e.g. trailing text after a refused object
    if type(obj) is not dict:
        return ProtocolError(BAD_JSON)
    kind = obj.get("type")
    cls = TYPES.get(kind) if type(kind) is str else None
    if cls is None:
        return ProtocolError(UNKNOWN_TYPE)
    names, required = _keys(cls)
    unknown = sorted(k for k in obj if k != "type" and k not in names)
    if unknown:
        return _invalid(unknown[0])
    missing = sorted(required.difference(obj))
    if missing:
        return _invalid(missing[0])
    try:
        # Fields in declared order, so the first fault msgspec meets is the one to name.
        # Valid this way, the frame is valid once its repeated keys are read as JSON reads
        # them (the decoder checks every occurrence of a key; JSON, and each browser, keeps
        # the last): the message is the one the client meant.
        accepted: Message = msgspec.convert(_ordered(cls, obj), cls)
    except msgspec.ValidationError as exc:
        return _invalid(_field(str(exc)))
    except ProtocolError as exc:   # a rule of ``check``
        return exc
    return accepted


class _Field(NamedTuple):
    name: str                             # as on the wire (``sdpMid``)
    required: bool
    nested: type[msgspec.Struct] | None   # the Struct it holds (IceCandidate), if any


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[_Field, ...]:
    """The fields of ``cls`` in declared order (cached: msgspec reads annotations anew)."""
    return tuple(_Field(f.encode_name, f.required, _nested(f.type))
                 for f in msgspec.structs.fields(cls))


@functools.cache
def _keys(cls: type[msgspec.Struct]) -> tuple[frozenset[str], frozenset[str]]:
    fields = _fields(cls)
    return frozenset(f.name for f in fields), frozenset(f.name for f in fields if f.required)


def _nested(tp: Any) -> type[msgspec.Struct] | None:
    for arg in (tp, *get_args(tp)):
        if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
            return arg
    return None


def _ordered(cls: type[msgspec.Struct], obj: dict[str, Any]) -> dict[str, Any]:
    """The message's fields in declared order after its ``type`` (it has no unknown or
    missing ones: those were named before)."""
    return {"type": obj["type"]} | _in_order(cls, {k: v for k, v in obj.items() if k != "type"})


def _in_order(cls: type[msgspec.Struct], obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with the fields of ``cls`` in declared order. Inside a nested object, unknown
    fields come first (all of them, a ``type`` too) and nothing follows a missing required
    field: that is where the protocol names them."""
    names, _ = _keys(cls)
    out = {k: v for k, v in obj.items() if k not in names}
    for f in _fields(cls):
        if f.name not in obj:
            if f.required:
                break
            continue
        value = obj[f.name]
        out[f.name] = (_in_order(f.nested, value) if f.nested is not None
                       and type(value) is dict else value)
    return out


def _field(error: str) -> str:
    """The dotted field of a msgspec validation error: its path, plus the field's name when
    it is missing; an unknown field inside an object names the object."""
    message, at, path = error.rpartition(_AT)
    if not at:
        message, path = error, "`"
    parts = [p for p in path[:-1].split(".") if p]
    if message.startswith(_MISSING):
        parts.append(message[len(_MISSING):message.index("`", len(_MISSING))])
    return ".".join(parts)


def _invalid(name: str) -> ProtocolError:
    return ProtocolError(INVALID_FIELD, {"field": name})
