"""Thousands of random messages (hypothesis): the server keeps serving, and nothing reaches
another consultation."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.staff import Role
from signaling import messages, wire
from signaling.errors import ProtocolError

TYPES = [*messages.TYPES, "from", "", "OFFER"]
FIELDS = ["to", "sdp", "candidate", "text", "audio", "video", "peer", "code", "minutes",
          "staff_id", "guest", "label", "id", "from", "version", "room", "credential", "x"]
scalar = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20)
          | st.floats(allow_nan=False))
values = scalar | st.lists(scalar, max_size=2) | st.dictionaries(
    st.sampled_from(["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment", "x"]),
    scalar, max_size=3)
message = st.fixed_dictionaries({"type": st.sampled_from(TYPES)},
                                optional={f: values for f in FIELDS})
frames = st.one_of(message.map(json.dumps), st.text(max_size=40))
# hypothesis caps one example's size, so thousands of frames come as many batches.
batches = st.lists(frames, min_size=20, max_size=40)


def draw_frames(examples: int) -> list[str]:
    out: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(batches)
    def collect(batch: list[str]) -> None:
        out.extend(batch)

    collect()
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches)
def test_parse_raises_only_protocol_errors(batch):
    for frame in batch:
        try:
            wire.parse(frame)
        except ProtocolError:
            pass


async def test_random_messages_never_reach_another_consultation(clients, visits, gp,
                                                                make_staff):
    other = await make_staff(Role.GP)
    a = await visits(gp.id)
    b = await visits(other.id)
    pa = await clients.patient(a)
    da = await clients.staff(gp.id, a.room_id)
    pb = await clients.patient(b)
    db_ = await clients.staff(other.id, b.room_id)
    await da.send("admit", peer=pa.welcome["peer_id"])
    await db_.send("admit", peer=pb.welcome["peer_id"])
    await pa.expect("admitted", 2)
    await pb.expect("admitted", 2)
    ours = {pa.welcome["peer_id"], da.welcome["peer_id"]}

    drawn = draw_frames(80)
    assert len(drawn) >= 1600
    # Aim some at the other consultation's peers, and at our own clinician.
    for i, victim in enumerate([pb.welcome["peer_id"], db_.welcome["peer_id"]] * 20):
        drawn.insert(i * 37, json.dumps({"type": "offer", "to": victim, "sdp": "v=0"}))
        drawn.insert(i * 41, json.dumps({"type": "candidate", "to": victim,
                                         "candidate": None}))
    sender = pa
    for n, frame in enumerate(drawn):
        if sender.ws.closed:   # too_many_errors or leave: the patient comes back
            sender = await clients.patient(a)
        await sender.send_raw(frame)
        if n % 50 == 49:       # keep under the rate limit: this is not the flood test
            await sender.send("ping", id=f"p{n}")
            try:
                while (await sender.recv(3)).get("id") != f"p{n}":
                    pass
            except ConnectionError:
                pass
    # The other consultation saw nothing from ours; its own traffic still flows.
    await pb.send("chat", text="still fine")
    got = await db_.expect("chat", 3)
    assert got["from"] == pb.welcome["peer_id"]
    for victim in (pb, db_):
        seen = list(victim.backlog)
        victim.backlog.clear()
        try:
            while True:
                seen.append(await victim.recv(0.3))
        except TimeoutError:
            pass
        assert not [m for m in seen if m.get("from") in ours]
    # And the server still serves.
    again = await clients.staff(gp.id, a.room_id)
    await again.send("ping", id="alive")
    assert (await again.expect("pong", 2))["id"] == "alive"
