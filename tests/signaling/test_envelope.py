"""Bus payloads sealed in sequence: what opens, what is refused and why, with time injected."""

from __future__ import annotations

import itertools

import pytest

from signaling import envelope, events
from signaling.envelope import MAX_AGE_S, MAX_BODY_BYTES, MAX_PAYLOAD_BYTES, Envelope
from tests.conftest import SECRET_KEY

CHANNEL = "casa_signal"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def _pair(clock: Clock) -> tuple[Envelope, Envelope]:
    return (Envelope(SECRET_KEY, CHANNEL, "i_sender", clock),
            Envelope(SECRET_KEY, CHANNEL, "i_reader", clock))


def _reason(opener: Envelope, payload: str) -> str:
    with pytest.raises(envelope.EnvelopeError) as refused:
        opener.open(payload)
    return refused.value.reason


def test_an_event_and_its_relayed_frame_open_as_they_were_sent():
    sender, reader = _pair(Clock())
    frame = '{"type":"chat","text":"riga\\ndue \\u00e8","from":"p_1"}\n'
    event = events.Relay(room="7", to=None, text=frame, from_="p_1")
    payload = sender.seal(events.encode(event))
    assert "riga" not in payload and "relay" not in payload
    assert payload.startswith("i_sender.1.")
    opened = reader.open(payload)
    assert opened is not None and opened[0] == "i_sender"
    assert events.decode(opened[1]) == event
    assert sender.open(payload) is None   # its own: skipped, not an error
    # The frame is carried as it is, not escaped again: the body is its size plus the head.
    assert len(events.encode(event)) < len(frame) + 60


def test_a_payload_is_refused_when_replayed_late_or_early():
    clock = Clock()
    sender, reader = _pair(clock)
    first, second = sender.seal(b'{"k":"a"}'), sender.seal(b'{"k":"b"}')
    assert reader.open(second) is not None
    assert _reason(reader, second) == "replayed"
    assert _reason(reader, first) == "replayed"    # an earlier one, once a later one came
    late = sender.seal(b'{"k":"c"}')
    clock.now += MAX_AGE_S + 1
    assert _reason(reader, late) == "stale"
    early = sender.seal(b'{"k":"d"}')
    clock.now -= 2 * MAX_AGE_S + 2
    assert _reason(reader, early) == "stale"
    # Its age is counted to its arrival: a backlog in the reader does not make it stale.
    arrived = clock.now
    queued = sender.seal(b'{"k":"e"}')
    clock.now += 10 * MAX_AGE_S
    assert reader.open(queued, received_at=arrived) is not None


def test_a_new_reader_refuses_an_old_payload_and_forgets_silent_senders():
    clock = Clock()
    sender, reader = _pair(clock)
    old = sender.seal(b'{"k":"a"}')
    assert reader.open(old) is not None
    clock.now += 10 * MAX_AGE_S
    # A reader started since (no sequence known for that sender) still refuses it: too old.
    fresh_reader = Envelope(SECRET_KEY, CHANNEL, "i_fresh", clock)
    assert _reason(fresh_reader, old) == "stale"
    # A sender silent for that long is forgotten when another appears.
    other = Envelope(SECRET_KEY, CHANNEL, "i_other", clock)
    assert reader.open(other.seal(b"{}")) is not None
    assert set(reader._last) == {"i_other"}


def test_altered_or_foreign_payloads_do_not_open():
    clock = Clock()
    sender, reader = _pair(clock)
    payload = sender.seal(b'{"k":"a"}')
    header, sealed = payload.rsplit(".", 1)
    name, seq, sent = header.split(".")
    for bad in (f"{header}.{sealed[:-4]}AAAA",
                f"{name}.{seq}.{int(sent) + 1}.{sealed}",
                f"i_else.{seq}.{sent}.{sealed}",
                Envelope(SECRET_KEY, "other_channel", "i_sender", clock).seal(b'{"k":"a"}'),
                Envelope(SECRET_KEY + "!", CHANNEL, "i_sender", clock).seal(b'{"k":"a"}')):
        assert _reason(reader, bad) == "forged"
    for bad in ("", "garbage", "a.b.c.d", f"{name}.-1.{sent}.{sealed}", f"{payload}.x",
                f"{header}.!!!!"):
        assert _reason(reader, bad) == "malformed"
    assert reader.open(payload) is not None   # the original still opens


def test_the_largest_body_fits_one_notify_even_with_the_longest_header():
    sender = Envelope(SECRET_KEY, CHANNEL, "i_" + "x" * 38, Clock())
    sender._seq = itertools.count(10**20 - 1)   # a 20-digit sequence
    payload = sender.seal(b"x" * MAX_BODY_BYTES)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    with pytest.raises(ValueError):
        sender.seal(b"x" * (MAX_BODY_BYTES + 1))
