"""One phone that stops reading stalls nobody else: 50 consultations relay steadily between two
instances while a peer on one of them stops reading and its partner on the other sends it large
offers. The others' relay latency stays as it was, and the stalled peer is disconnected with
its catalogued reason (``too_slow``, close 4010)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from server.staff import Role
from tests.conftest import SECRET_KEY
from tests.signaling.conftest import Visit, staff_session
from tests.signaling.crowd import Closed, Consultations, Sock
from tests.signaling.rawws import RawSocket
from tests.signaling.servers import ServerProcess

# Their timings would be distorted by another test process on the same cores: alone, after the
# parallel run (Makefile).
pytestmark = pytest.mark.serial

CONSULTATIONS = 50
CLINICIANS = 5
# Each of the 100 peers sends its partner a candidate this often: 500 relays a second, all
# crossing between the instances.
PERIOD_S = 0.2
PHASE_S = 2.5
# Large offers toward one peer, as a renegotiating phone would send them (under the 48 KiB
# SDP limit), fast enough to fill a stalled socket's buffers within a second.
BIG_SDP = "v=0\r\n" + "a=x-casa-padding:" + "p" * 40000 + "\r\n"
BIG_PER_S = 40
# Relays not arrived this long after their phase are lost (counted as infinitely late).
GRACE_S = 2.0
DISCONNECT_S = 20.0
CANDIDATE = {"candidate": "candidate:1 1 UDP 2122252543 192.0.2.1 54400 typ host",
             "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}


@pytest.fixture
async def instances(db_url: str, tmp_path: Path) -> AsyncIterator[list[ServerProcess]]:
    made = [ServerProcess(db_url, SECRET_KEY, tmp_path) for _ in range(2)]
    yield made
    for s in made:
        s.stop()



@dataclass
class Meter:
    """Send times and latencies of the steady relays, by phase."""

    phase: str = "setup"
    sent: dict[str, tuple[str, float]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=itertools.count)

    def stamp(self) -> str:
        msg_id = f"m{next(self.ids)}"
        self.sent[msg_id] = (self.phase, time.monotonic())
        return msg_id

    def arrived(self, msg_id: str) -> None:
        sent = self.sent.pop(msg_id, None)
        if sent is not None:
            self.latencies.setdefault(sent[0], []).append(time.monotonic() - sent[1])

    def p99(self, *phases: str) -> float:
        """The 99th percentile over these phases, a lost relay counting as infinitely late."""
        got = [x for p in phases for x in self.latencies.get(p, [])]
        lost = sum(1 for p, _ in self.sent.values() if p in phases)
        values = sorted(got) + [float("inf")] * lost
        assert values, f"no relays in {phases}"
        return values[min(len(values) - 1, int(0.99 * len(values)))]

    def count(self, *phases: str) -> tuple[int, int]:
        got = sum(len(self.latencies.get(p, [])) for p in phases)
        return got, sum(1 for p, _ in self.sent.values() if p in phases)


async def hello(sock: Sock, **fields: object) -> None:
    await sock.ws.send_str(sock.hello_text(**fields))
    frame = await sock.recv(10.0)
    assert frame.get("type") == "welcome", (sock.name, frame)


async def in_call(session: aiohttp.ClientSession, patient_url: str, doctor_url: str,
                  visit: Visit, staff: str, name: str) -> tuple[Sock, Sock]:
    """The patient on one instance, the clinician on the other, admitted."""
    patient = await Sock.open(session, patient_url, f"patient {name}")
    await hello(patient, credential=visit.token)
    doctor = await Sock.open(session, doctor_url, f"clinician {name}", staff_session=staff)
    await hello(doctor, room=visit.room_id)
    await doctor.send("admit", peer=patient.welcome["peer_id"])
    await patient.until({"admitted"}, time.monotonic() + 10.0)
    return patient, doctor


async def stalled_patient(instance: ServerProcess, visit: Visit) -> RawSocket:
    raw = await RawSocket.connect("127.0.0.1", instance.port)
    raw.send("hello", version=1, credential=visit.token)
    welcome = await raw.until("welcome", 10.0)
    assert welcome["state"] == "waiting", welcome
    return raw


async def steady(sock: Sock, to: str, meter: Meter, stop: asyncio.Event) -> None:
    """Send a candidate to ``to`` every PERIOD_S until ``stop``."""
    with contextlib.suppress(asyncio.CancelledError):
        while not stop.is_set():
            await sock.send("candidate", to=to, candidate=CANDIDATE, id=meter.stamp())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PERIOD_S)


async def listen(sock: Sock, meter: Meter) -> None:
    """Record when each steady relay arrives."""
    with contextlib.suppress(Closed, asyncio.CancelledError):
        while True:
            frame = await sock.recv(3600)
            sock.frames.clear()   # large offers pass here too: keep nothing
            if frame.get("type") == "candidate" and isinstance(frame.get("id"), str):
                meter.arrived(frame["id"])


async def big_offers(sender: Sock, to: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await sender.send("offer", to=to, sdp=BIG_SDP)
        except (ConnectionError, aiohttp.ClientError):
            return   # the sender's own socket is not what is measured
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / BIG_PER_S)


async def away(doctor: Sock, peer_id: str, until: float) -> bool:
    """Whether the clinician (whose frames a background reader keeps) has been told by
    ``until`` that ``peer_id`` dropped."""
    while True:
        if any(f.get("type") in ("peer_away", "peer_left") and f.get("peer_id") == peer_id
               for f in doctor.frames):
            return True
        if time.monotonic() >= until:
            return False
        await asyncio.sleep(0.05)


async def reason(raw: RawSocket) -> tuple[int | None, list[str]]:
    """Read the stalled socket again to its end: its close code and the error codes seen.

    Called once the partner was told the peer dropped (or DISCONNECT_S passed): reading
    earlier would end the stall the server is meant to notice. So the server announces the
    drop without waiting on the slow peer, and the close it wrote (behind what was already
    queued) is still there to read for a few seconds after; a socket reset with nothing
    readable shows no reason and fails."""
    raw.read_again()
    await raw.ended(5.0)
    return raw.close_code, [str(f.get("code")) for f in raw.frames if f.get("type") == "error"]


async def test_a_stalled_peer_delays_no_one_and_is_disconnected(instances, session,
                                                                 make_staff, db_url):
    staff = [(await make_staff(Role.GP)).id for _ in range(CLINICIANS)]
    sessions = {i: await staff_session(db_url, i) for i in staff}
    visits = await Consultations(db_url).make(staff, CONSULTATIONS + 4)
    a, b = instances
    await asyncio.gather(a.start(), b.start())

    # The 50 steady pairs, split over both instances so that every relay crosses the bus.
    pairs = []
    for i, v in enumerate(visits[:CONSULTATIONS]):
        here, there = (a, b) if i % 2 == 0 else (b, a)
        pairs.append(await in_call(session, here.ws, there.ws, v, sessions[v.clinician_id],
                                   str(i)))
    # Two targets of large offers on A, each sent them from B: one that reads (for the
    # baselines) and one that stops reading (per stalled phase).
    healthy = await in_call(session, a.ws, b.ws, visits[CONSULTATIONS],
                            sessions[visits[CONSULTATIONS].clinician_id], "healthy")
    stalls = []
    for v in visits[CONSULTATIONS + 1:CONSULTATIONS + 3]:
        raw = await stalled_patient(a, v)
        doctor = await Sock.open(session, b.ws, "clinician of a stalled peer",
                                 staff_session=sessions[v.clinician_id])
        await hello(doctor, room=v.room_id)
        await doctor.send("admit", peer=raw.welcome["peer_id"])
        await raw.until("admitted", 10.0)
        doctor.keep_reading()
        stalls.append((raw, doctor))

    meter = Meter()
    stop = asyncio.Event()
    tasks = []
    for patient, doctor in pairs:
        tasks += [asyncio.ensure_future(listen(patient, meter)),
                  asyncio.ensure_future(listen(doctor, meter)),
                  asyncio.ensure_future(steady(patient, doctor.welcome["peer_id"], meter,
                                               stop)),
                  asyncio.ensure_future(steady(doctor, patient.welcome["peer_id"], meter,
                                               stop))]
    tasks += [asyncio.ensure_future(listen(healthy[0], meter)),
              asyncio.ensure_future(listen(healthy[1], meter))]
    try:
        await asyncio.sleep(1.0)   # warm up

        async def phase(name: str, sender: Sock, to: str) -> None:
            meter.phase = name
            done = asyncio.Event()
            offers = asyncio.ensure_future(big_offers(sender, to, done))
            await asyncio.sleep(PHASE_S)
            done.set()
            await offers

        # Baseline and stalled phases interleave, so that a CI machine busy with something
        # else for a while weighs on both alike; and the baselines send the same large offers
        # to a peer that reads, so that the only difference is the stall, not the load.
        # Noise on two shared cores is tens of milliseconds of p99 whatever the server does
        # (one CI run beside other work: 26 ms without a stall, 43 ms with one), hence the
        # 25 ms beside the 50 %; a send awaited on the stalled socket would hold the relay
        # for the whole write deadline, seconds, far beyond either.
        disconnected = []
        for k, (raw, doctor) in enumerate(stalls):
            await phase(f"baseline {k}", healthy[1], healthy[0].welcome["peer_id"])
            raw.stop_reading()
            stalled_at = time.monotonic()
            await phase(f"stalled {k}", doctor, raw.welcome["peer_id"])
            gone = await away(doctor, raw.welcome["peer_id"], stalled_at + DISCONNECT_S)
            code, errors = await reason(raw)
            disconnected.append((gone, code, errors, time.monotonic() - stalled_at))
            if not gone:
                break
        meter.phase = "after"
        stop.set()
        await asyncio.sleep(GRACE_S)
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        for raw, doctor in stalls:
            raw.close()
            await doctor.stop_reading()

    baselines = [f"baseline {k}" for k in range(len(disconnected))]
    stalled = [f"stalled {k}" for k in range(len(disconnected))]
    base_p99, stalled_p99 = meter.p99(*baselines), meter.p99(*stalled)
    summary = (f"relay p99 {base_p99 * 1000:.1f} ms without a stall "
               f"({meter.count(*baselines)[0]} arrived, {meter.count(*baselines)[1]} lost), "
               f"{stalled_p99 * 1000:.1f} ms with one ({meter.count(*stalled)[0]} arrived, "
               f"{meter.count(*stalled)[1]} lost); stalled peers: " + "; ".join(
                   f"{'dropped' if gone else 'not dropped'} within {took:.1f} s, close "
                   f"{code}, errors {errs}" for gone, code, errs, took in disconnected))
    assert stalled_p99 <= 1.5 * base_p99 + 0.025, summary
    for gone, code, errs, _took in disconnected:
        assert gone and (code == 4010 or "too_slow" in errs), summary
    assert len(disconnected) == len(stalls), summary
