"""Frames in: ``decode`` (JSON text to a dict, or ``bad_json``), ``parse`` (to a message
object), and the fast path for the relayed trio (offer, answer, candidate: most of all
traffic), ``relay_target``.

The fast path applies the same checks as the message classes' ``check`` methods
(``signaling.messages``), on the decoded dict, without building a message object.
Accept-only: anything it does not accept goes through ``from_dict``, which names the
catalogued error, so both paths reject exactly the same frames
(``test_fast_relay_path_accepts_exactly_what_parse_accepts``)."""

from __future__ import annotations

import json
from typing import Any

from signaling.errors import BAD_JSON, ProtocolError
from signaling.messages import (
    CANDIDATE_KEYS,
    MAX_CANDIDATE_CHARS,
    MAX_ID_CHARS,
    MAX_PEER_ID_CHARS,
    MAX_SDP_CHARS,
    Answer,
    Candidate,
    Message,
    Offer,
    from_dict,
)


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON; a browser's JSON.parse would choke on a relay of them.
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def decode(text: str) -> dict[str, Any]:
    """The frame as a dict, or ``bad_json``."""
    try:
        # The C scanner straight away (JSONDecoder.decode adds two regex passes per frame);
        # leading or trailing whitespace falls back to the full decoder.
        obj, end = _DECODER.scan_once(text, 0)  # type: ignore[attr-defined]
        if end != len(text):
            obj = _DECODER.decode(text)
    except StopIteration:
        try:
            obj = _DECODER.decode(text)
        except (ValueError, RecursionError):
            raise ProtocolError(BAD_JSON) from None
    except (ValueError, RecursionError):
        raise ProtocolError(BAD_JSON) from None
    if type(obj) is not dict:
        raise ProtocolError(BAD_JSON)
    return obj


def parse(text: str) -> Message:
    """Validate one text frame into its message class (raises ``ProtocolError``)."""
    return from_dict(decode(text))


_OFFER_FIELDS = Offer.FIELDS
_ANSWER_FIELDS = Answer.FIELDS
_CANDIDATE_FIELDS = Candidate.FIELDS
_SDP_REQUIRED = Offer.REQUIRED | {"type"}
_CANDIDATE_REQUIRED = Candidate.REQUIRED | {"type"}


def relay_target(obj: dict[str, Any]) -> str | None:
    """The ``to`` of a valid offer, answer or candidate; None for any other frame, valid or
    not (the caller then validates it with ``from_dict``). Does not modify ``obj``."""
    kind = obj.get("type")
    keys = obj.keys()
    if kind == "candidate":
        if not keys <= _CANDIDATE_FIELDS or not keys >= _CANDIDATE_REQUIRED:
            return None
        c = obj["candidate"]
        if c is not None:
            if type(c) is not dict or not c.keys() <= CANDIDATE_KEYS:
                return None
            line = c.get("candidate")
            if type(line) is not str or len(line) > MAX_CANDIDATE_CHARS:
                return None
            mid = c.get("sdpMid")
            if mid is not None and (type(mid) is not str or len(mid) > 32):
                return None
            index = c.get("sdpMLineIndex")
            if index is not None and (type(index) is not int or not 0 <= index <= 64):
                return None
            frag = c.get("usernameFragment")
            if frag is not None and (type(frag) is not str or not 1 <= len(frag) <= 256):
                return None
    elif kind == "offer" or kind == "answer":
        if not keys <= (_OFFER_FIELDS if kind == "offer" else _ANSWER_FIELDS) \
                or not keys >= _SDP_REQUIRED:
            return None
        sdp = obj["sdp"]
        if type(sdp) is not str or not 1 <= len(sdp) <= MAX_SDP_CHARS:
            return None
        restart = obj.get("restart")
        if restart is not None and type(restart) is not bool:
            return None
    else:
        return None
    i = obj.get("id")
    if i is not None and (type(i) is not str or not 1 <= len(i) <= MAX_ID_CHARS):
        return None
    to = obj["to"]
    if type(to) is not str or not 1 <= len(to) <= MAX_PEER_ID_CHARS:
        return None
    return to


def id_of(text: str) -> str | None:
    """The ``id`` of a frame that failed validation, if it has a valid one (echoed with the
    error)."""
    try:
        obj = decode(text)
    except ProtocolError:
        return None
    i = obj.get("id")
    return i if isinstance(i, str) and 1 <= len(i) <= MAX_ID_CHARS else None
