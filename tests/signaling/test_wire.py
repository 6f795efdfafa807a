"""``wire.parse``: one msgspec decode per frame, with the catalogued error and field the
protocol names (docs/protocol.md), whatever order the faults come in the text.

The tables below are the answers of the validation before msgspec (hand-written checks on the
decoded dict), checked against it frame by frame when it was replaced."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.consultations.store import new_room_id
from signaling import wire
from signaling.errors import ProtocolError
from signaling.messages import (
    TYPES,
    Candidate,
    Chat,
    Hello,
    IceCandidate,
    Invite,
    Message,
    Offer,
    Ping,
)

EMOJI = "\\ud83d\\ude00"
REFUSED = [
    # Several faults: unknown fields first (the first by name), then missing ones (the first by
    # name), then values in declared order (id first), whatever the order of the text.
    ('{"type":"chat","x":1,"from":"a","text":"hi"}', "invalid_field", {"field": "from"}),
    ('{"type":"offer","x":1}', "invalid_field", {"field": "x"}),
    ('{"type":"offer"}', "invalid_field", {"field": "sdp"}),
    ('{"type":"offer","sdp":5,"to":7}', "invalid_field", {"field": "to"}),
    ('{"type":"offer","sdp":5,"to":7,"id":""}', "invalid_field", {"field": "id"}),
    ('{"type":"media_state","video":1,"audio":"on"}', "invalid_field", {"field": "audio"}),
    ('{"type":"media_state","video":1}', "invalid_field", {"field": "audio"}),
    # Inside the candidate: an unknown key names the candidate; the rest are dotted.
    ('{"type":"candidate","to":"p","candidate":{"sdpMid":5}}', "invalid_field",
     {"field": "candidate.candidate"}),
    ('{"type":"candidate","to":"p","candidate":{"candidate":"c","sdpMLineIndex":65}}',
     "invalid_field", {"field": "candidate.sdpMLineIndex"}),
    ('{"type":"candidate","to":"p","candidate":{"candidate":"c","sdpMid":"' + "0" * 33 + '"}}',
     "invalid_field", {"field": "candidate.sdpMid"}),
    ('{"type":"candidate","to":"p","candidate":{"candidate":"c","usernameFragment":""}}',
     "invalid_field", {"field": "candidate.usernameFragment"}),
    ('{"type":"candidate","to":"p","candidate":{"sdpMid":5,"x":1}}', "invalid_field",
     {"field": "candidate"}),
    ('{"type":"candidate","to":"p","candidate":"c"}', "invalid_field", {"field": "candidate"}),
    ('{"type":"candidate","to":"p","candidate":{"candidate":"c","type":1}}', "invalid_field",
     {"field": "candidate"}),
    ('{"type":"candidate","candidate":{"x":1},"to":""}', "invalid_field", {"field": "to"}),
    ('{"type":"candidate","to":"p"}', "invalid_field", {"field": "candidate"}),
    # Numbers: only whole JSON numbers within range, never booleans or 1.0.
    ('{"type":"hello","version":1.0}', "invalid_field", {"field": "version"}),
    ('{"type":"hello","version":true}', "invalid_field", {"field": "version"}),
    ('{"type":"hello","version":1e400}', "invalid_field", {"field": "version"}),
    ('{"type":"hello","version":-1}', "invalid_field", {"field": "version"}),
    ('{"type":"invite","staff_id":100000000000000000000000}', "invalid_field",
     {"field": "staff_id"}),
    ('{"type":"notice","peer":"p","code":"few_minutes","minutes":121}', "invalid_field",
     {"field": "minutes"}),
    ('{"type":"hello","version":1,"lang":"de"}', "invalid_field", {"field": "lang"}),
    ('{"type":"hello","version":1,"nurse_present":0}', "invalid_field",
     {"field": "nurse_present"}),
    # Invite: one of the two forms; a label only for a guest, and no control characters.
    ('{"type":"invite"}', "invalid_field", {"field": "guest"}),
    ('{"type":"invite","guest":false}', "invalid_field", {"field": "guest"}),
    ('{"type":"invite","staff_id":3,"label":"x"}', "invalid_field", {"field": "label"}),
    ('{"type":"invite","guest":true,"label":"a\\u202eb"}', "invalid_field", {"field": "label"}),
    ('{"type":"invite","staff_id":true,"guest":true}', "invalid_field", {"field": "staff_id"}),
    # Chat: its relay size is told.
    ('{"type":"chat","text":"' + EMOJI * 1999 + '"}', "invalid_field",
     {"field": "text", "bytes": 23990, "max_bytes": 4800}),
    ('{"type":"chat","text":"a\\rb"}', "invalid_field", {"field": "text"}),
    # Not JSON first: whatever else is wrong with the object, text after it is bad_json.
    ('{"type":"chat","text":"\\u0000"} x', "bad_json", None),
    ('{"type":"chat","x":1} x', "bad_json", None),
    ('{"type":"teleport"} x', "bad_json", None),
    ('{"type":"chat","x":NaN}', "bad_json", None),
    ('{"type":"chat","text":Infinity}', "bad_json", None),
    ('{"type":"chat","text":"hi"', "bad_json", None),
    ('"chat"', "bad_json", None),
    ("", "bad_json", None),
    ('{"type":5}', "unknown_type", None),
    ('{"type":null,"text":"hi"}', "unknown_type", None),
    ('{"type":"Chat","text":"hi"}', "unknown_type", None),
]


@pytest.mark.parametrize(("text", "code", "details"), REFUSED)
def test_refused_frames_get_the_catalogued_code_and_field(text, code, details):
    with pytest.raises(ProtocolError) as caught:
        wire.parse(text)
    assert (caught.value.kind.code, caught.value.details) == (code, details)


ACCEPTED: list[tuple[str, Message]] = [
    # Repeated keys: the last one counts, as JSON.parse in every browser reads it.
    ('{"type":"chat","text":"","text":"ok"}', Chat(text="ok")),
    ('{"type":"offer","to":"a","sdp":"v","to":"b"}', Offer(to="b", sdp="v")),
    ('{"type":"answer","type":"offer","to":"a","sdp":"v"}', Offer(to="a", sdp="v")),
    (' {"type":"ping", "id":"' + "i" * 64 + '"}\n', Ping(id="i" * 64)),
    ('{"type":"candidate","to":"p","candidate":null}', Candidate(to="p", candidate=None)),
    ('{"candidate":{"candidate":"","sdpMLineIndex":0},"to":"p","type":"candidate"}',
     Candidate(to="p", candidate=IceCandidate(candidate="", sdp_m_line_index=0))),
    ('{"type":"hello","version":1,"lang":"en","room":null,"credential":null}',
     Hello(version=1, lang="en")),
    ('{"type":"invite","guest":true}', Invite(guest=True)),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_frames(text, expected):
    got = wire.parse(text)
    assert got == expected and type(got) is type(expected)
    assert got.TYPE == json.loads(text)["type"]


def test_a_notice_code_that_is_not_a_string_is_an_invalid_field():
    # Was a TypeError (a list is not hashable, so not in the set of codes): internal_error.
    for code in ("[]", '{"a": 1}'):
        with pytest.raises(ProtocolError) as caught:
            wire.parse('{"type":"notice","peer":"p_x","code":' + code + "}")
        assert caught.value.details == {"field": "code"}


def test_reply_id_echoes_a_refused_frames_own_id():
    assert wire.reply_id('{"type":"chat","text":"\\u0007","id":"c1"}') == "c1"
    assert wire.reply_id('{"type":"teleport","id":"t"}') == "t"
    assert wire.reply_id('{"type":"ping","id":"' + "x" * 65 + '"}') is None
    assert wire.reply_id('{"type":"ping","id":7}') is None
    assert wire.reply_id("[1]") is None
    assert wire.reply_id("not json") is None


# Frames near the valid ones: each message's fields, then up to three changes (a field
# dropped, given another value, an unknown field added), keys shuffled, one repeated.
LENGTHS = [0, 1, 32, 33, 40, 41, 60, 61, 64, 65, 256, 257, 1024, 1025, 2000, 2001]
texts = (st.builds(lambda n, c: c * n, st.sampled_from(LENGTHS),
                   st.sampled_from(["a", " ", "\n", "\x00", "\u202e", "\u00e8", "\U0001f600"]))
         | st.text(max_size=8)
         | st.sampled_from(["it", "en", "few_minutes", "please_wait", "p_x", "v=0"]))
numbers = (st.integers(-2, 130) | st.sampled_from([2**62, 2**62 + 1, 2**64, 10**30])
           | st.sampled_from([1.0, 1.5, 1e300]))
scalars = st.none() | st.booleans() | numbers | texts
ice = st.fixed_dictionaries({}, optional={k: scalars for k in (
    "candidate", "sdpMid", "sdpMLineIndex", "usernameFragment", "type", "x")})
values = scalars | ice | st.lists(scalars, max_size=2)
VALID: dict[str, dict[str, Any]] = {
    "hello": {"version": 1, "room": new_room_id(), "credential": "c", "lang": "it",
              "nurse_present": True},
    "ping": {}, "admit": {"peer": "p_x"}, "send_back": {"peer": "p_x"},
    "notice": {"peer": "p_x", "code": "few_minutes", "minutes": 5},
    "invite": {"guest": True, "label": "Interprete"},
    "offer": {"to": "p_x", "sdp": "v=0", "restart": False},
    "answer": {"to": "p_x", "sdp": "v=0"},
    "candidate": {"to": "p_x", "candidate": {"candidate": "candidate:1", "sdpMid": "0",
                                             "sdpMLineIndex": 0, "usernameFragment": "ab"}},
    "media_state": {"audio": True, "video": False}, "chat": {"text": "ciao"},
    "leave": {}, "end": {},
}
FIELDS = sorted({k for v in VALID.values() for k in v} | {"id", "staff_id", "from", "x"})


@st.composite
def near_valid(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(sorted(VALID)))
    obj: dict[str, Any] = {"type": kind, **json.loads(json.dumps(VALID[kind]))}
    if draw(st.booleans()):
        obj["id"] = draw(texts)
    for _ in range(draw(st.integers(0, 3))):
        change = draw(st.integers(0, 3))
        if change == 0 and obj:
            del obj[draw(st.sampled_from(sorted(obj)))]
        elif change == 1 and obj:
            obj[draw(st.sampled_from(sorted(obj)))] = draw(values)
        elif change == 2:
            obj[draw(st.sampled_from(FIELDS))] = draw(values)
        elif isinstance(obj.get("candidate"), dict):
            key = draw(st.sampled_from(["candidate", "sdpMid", "sdpMLineIndex",
                                        "usernameFragment", "type", "x"]))
            obj["candidate"][key] = draw(values)
    items = draw(st.permutations(list(obj.items())))
    if items and draw(st.integers(0, 4)) == 0:
        items.insert(draw(st.integers(0, len(items))), (draw(st.sampled_from(items))[0],
                                                        draw(values)))
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in items) + "}"


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(near_valid())
def test_accepted_frames_re_encode_to_an_equal_message(text):
    try:
        msg = wire.parse(text)
    except ProtocolError:
        return
    again = wire.parse(msgspec.json.encode(msg).decode())
    assert again == msg and type(again) is type(msg)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from([*FIELDS, "type", "candidate"]) | st.text(max_size=5),
                      inner, max_size=4),
    max_leaves=12)
objects = st.dictionaries(st.sampled_from(["type", *FIELDS]) | st.text(max_size=5),
                          json_values, max_size=6)
with_type = st.builds(lambda obj, kind: {**obj, "type": kind}, objects,
                      st.sampled_from(sorted(TYPES)) | json_values)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(objects, with_type).map(json.dumps)
       | st.tuples(objects.map(json.dumps), st.text(max_size=3)).map("".join))
def test_any_json_object_is_parsed_or_refused_with_a_protocol_error(text):
    try:
        msg = wire.parse(text)
    except ProtocolError as exc:
        assert exc.kind.code in ("bad_json", "unknown_type", "invalid_field")
        if exc.kind.code == "invalid_field":
            assert isinstance(exc.details, dict) and isinstance(exc.details["field"], str)
    else:
        assert msg.TYPE in TYPES


def test_unpaired_surrogate_escapes_are_bad_json():
    # The one frame the decoder before msgspec took and this one refuses: "\ud800" alone is
    # no character (no UTF-8 encodes it), and a browser's textarea never produces one.
    for text in ('{"type":"chat","text":"a\\ud800"}', '{"type":"ping","id":"\\udc00"}'):
        with pytest.raises(ProtocolError) as caught:
            wire.parse(text)
        assert caught.value.kind.code == "bad_json"
    assert wire.parse('{"type":"chat","text":"\\ud83d\\ude00"}') == Chat(text="\U0001f600")
